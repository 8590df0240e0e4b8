namespace Switchboard.WebSockets.Tests.Interop;

/// <summary>Node's `ws` (npm), both directions.</summary>
public class NodeInteropTests
{
    private static string Dir => Repo.Path("tests", "interop", "node");

    [Fact]
    public async Task Node_ws_client_against_our_server()
    {
        Assert.True(Directory.Exists(Path.Combine(Dir, "node_modules", "ws")), "run ./test.sh (npm ci in tests/interop/node) first");
        var server = await TestServer.Shared;
        string tag = "node-" + Guid.NewGuid().ToString("N");
        await using var peer = PeerProcess.Start("node", Dir, "client.mjs", server.Url("/probe?tag=" + tag).ToString());
        string json = await peer.ReadLineAsync("{");
        await Scenario.AssertForeignClientResultAsync(server, tag, json, "node");
        Assert.Equal(0, await peer.WaitForExitAsync());
    }

    [Fact]
    public async Task Our_client_against_node_ws_server()
    {
        await using var peer = PeerProcess.Start("node", Dir, "server.mjs");
        string port = (await peer.ReadLineAsync("PORT ")).Split(' ')[1];
        await Scenario.RunOurClientAsync(new Uri($"ws://127.0.0.1:{port}/"));
        Assert.Equal("CLOSED 4001 bye from switchboard", await peer.ReadLineAsync("CLOSED"));
    }
}

/// <summary>Python `websockets` from Debian (python3-websockets), both directions.</summary>
public class PythonInteropTests
{
    private const string Python = "/usr/bin/python3";

    private static string Dir => Repo.Path("tests", "interop", "python");

    [Fact]
    public async Task Python_websockets_client_against_our_server()
    {
        var server = await TestServer.Shared;
        string tag = "python-" + Guid.NewGuid().ToString("N");
        await using var peer = PeerProcess.Start(Python, Dir, "client.py", server.Url("/probe?tag=" + tag).ToString());
        string json = await peer.ReadLineAsync("{");
        await Scenario.AssertForeignClientResultAsync(server, tag, json, "python");
        Assert.Equal(0, await peer.WaitForExitAsync());
    }

    [Fact]
    public async Task Our_client_against_python_websockets_server()
    {
        await using var peer = PeerProcess.Start(Python, Dir, "server.py");
        string port = (await peer.ReadLineAsync("PORT ")).Split(' ')[1];
        await Scenario.RunOurClientAsync(new Uri($"ws://127.0.0.1:{port}/"));
        Assert.Equal("CLOSED 4001 bye from switchboard", await peer.ReadLineAsync("CLOSED"));
    }
}
