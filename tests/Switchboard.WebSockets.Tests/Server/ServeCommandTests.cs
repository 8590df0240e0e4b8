using System.Net;
using System.Net.Sockets;
using Switchboard.WebSockets.Tests.Interop;

namespace Switchboard.WebSockets.Tests.Server;

/// <summary>`switchboard serve` as a real process.</summary>
public class ServeCommandTests
{
    /// <summary>Starts `switchboard serve` on a free loopback port and waits until it listens.</summary>
    internal static async Task<(PeerProcess Process, int Port)> StartServerAsync(params string[] extraArgs)
    {
        int port = FreePort();
        PeerProcess server = PeerProcess.Start("dotnet", AppContext.BaseDirectory, [SwitchboardDll, "serve", "--urls", $"http://127.0.0.1:{port}", .. extraArgs]);
        await server.ReadLineAsync("info: Microsoft.Hosting.Lifetime[0] Application started");
        return (server, port);
    }

    /// <summary>The CLI from its own build output (same configuration as the tests).</summary>
    private static string SwitchboardDll
    {
        get
        {
            string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            return Repo.Path("src", "Switchboard.Cli", "bin", configuration, "net10.0", "switchboard.dll");
        }
    }

    internal static int FreePort()
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
