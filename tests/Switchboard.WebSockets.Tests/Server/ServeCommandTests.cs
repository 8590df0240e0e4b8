using System.Net;
using System.Net.Sockets;
using Switchboard.WebSockets.Tests.Interop;

namespace Switchboard.WebSockets.Tests.Server;

/// <summary>`switchboard serve` as a real process.</summary>
public class ServeCommandTests
{
    /// <summary>The CLI from its own build output (same configuration as the tests).</summary>
    private static string SwitchboardDll
    {
        get
        {
            string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            return Repo.Path("src", "Switchboard.Cli", "bin", configuration, "net10.0", "switchboard.dll");
        }
    }

    private static int FreePort()
    {
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        int port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    [Fact]
    public async Task Serve_runs_an_echo_server_on_the_given_urls()
    {
        int port = FreePort();
        await using var server = PeerProcess.Start("dotnet", AppContext.BaseDirectory, SwitchboardDll, "serve", "--urls", $"http://127.0.0.1:{port}");
        await server.ReadLineAsync("info: Microsoft.Hosting.Lifetime[0] Application started");
        WebSocketConnection ws = await WebSocketClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}/echo"));
        ws.SendText("hello switchboard");
        Assert.Equal("hello switchboard", (await ws.ReceiveAsync())!.Text);
        ws.Send(Protocol.MessageType.Binary, [1, 2, 3]);
        ReceivedMessage? m = await ws.ReceiveAsync();
        Assert.Equal(Protocol.MessageType.Binary, m!.Type);
        Assert.Equal(new byte[] { 1, 2, 3 }, m.Data);
        Assert.True((await ws.CloseAsync()).WasClean);
        using var http = new HttpClient();
        Assert.Equal("ok\n", await http.GetStringAsync($"http://127.0.0.1:{port}/healthz"));
    }

    [Fact]
    public async Task Invalid_configuration_stops_start_up_naming_the_setting()
    {
        await using var server = PeerProcess.Start("dotnet", AppContext.BaseDirectory, SwitchboardDll, "serve", "--urls", "ftp://nowhere");
        Assert.Equal(2, await server.WaitForExitAsync());
        Assert.Contains("Switchboard:Urls", server.Stderr);
    }
}
