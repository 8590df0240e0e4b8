using System.Net;
using System.Net.Sockets;
using Switchboard.Tests.Shared;

namespace Switchboard.WebSockets.Tests.Server;

/// <summary>`switchboard serve` as a real process.</summary>
public class ServeCommandTests
{
    internal static Task<(PeerProcess Process, int Port)> StartServerAsync(params string[] extraArgs) =>
        ServerProcess.StartAsync(0, ["--store", "memory", .. extraArgs]);

    private static string SwitchboardDll => ServerProcess.SwitchboardDll;

    [Fact]
    public async Task Serve_runs_an_echo_server_on_the_given_urls()
    {
        var (server, port) = await StartServerAsync();
        await using var _ = server;
        WebSocketConnection ws = await WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo"));
        ws.SendText("hello switchboard");
        Assert.Equal("hello switchboard", (await ws.ReceiveAsync())!.Text);
        ws.Send(Protocol.MessageType.Binary, [1, 2, 3]);
        ReceivedMessage? m = await ws.ReceiveAsync();
        Assert.Equal(Protocol.MessageType.Binary, m!.Type);
        Assert.Equal(new byte[] { 1, 2, 3 }, m.Data);
        Assert.True((await ws.CloseAsync()).WasClean);
        using var http = new HttpClient();
        Assert.StartsWith("ok\n", await http.GetStringAsync($"http://127.0.0.1:{port}/healthz"));
    }

    [Fact]
    public async Task Invalid_configuration_stops_start_up_naming_the_setting()
    {
        await using var server = PeerProcess.Start("dotnet", AppContext.BaseDirectory, SwitchboardDll, "serve", "--urls", "ftp://nowhere");
        Assert.Equal(2, await server.WaitForExitAsync());
        Assert.Contains("Switchboard:Urls", server.Stderr);
    }
}
