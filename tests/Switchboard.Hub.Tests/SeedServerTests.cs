using System.Net.Sockets;
using System.Text.Json;

namespace Switchboard.Hub.Tests;

/// <summary>
/// Our command-line client (`switchboard connect`) against the seed articles' servers, run unmodified with
/// Debian's python3-websockets, python3-fastapi and python3-uvicorn.
/// </summary>
[Collection("seed servers")] // seeds 001 and 002 listen on fixed ports
public class SeedServerTests
{
    private const string Python = "/usr/bin/python3";

    private static string Code(string seed, string from, string until, bool includeUntilLine = false)
    {
        string text = File.ReadAllText(Directory.GetFiles(Repo.Path("..", "shared", "seeds"), seed + "_*.txt").Single());
        int start = text.IndexOf(from, StringComparison.Ordinal);
        Assert.True(start >= 0, $"seed {seed}: '{from}' not found");
        int end = text.IndexOf(until, start + from.Length, StringComparison.Ordinal);
        Assert.True(end >= 0, $"seed {seed}: '{until}' not found");
        if (includeUntilLine)
        {
            end = text.IndexOf('\n', end) + 1;
        }

        return text[start..end];
    }

    private static PeerProcess StartSeed(string code, string file, params string[] args)
    {
        string dir = Directory.CreateTempSubdirectory("switchboard-seed-").FullName;
        File.WriteAllText(Path.Combine(dir, file), code);
        return PeerProcess.Start(Python, dir, args.Length == 0 ? [file] : args);
    }

    private static async Task WaitForPortAsync(int port, PeerProcess server)
    {
        for (int i = 0; i < 200; i++)
        {
            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync("127.0.0.1", port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }

        throw new InvalidOperationException($"seed server did not listen on {port}: {server.Stderr}");
    }

    private static PeerProcess Connect(string url) =>
        PeerProcess.Start("dotnet", AppContext.BaseDirectory, ServerProcess.SwitchboardDll, "connect", url);

    [Fact]
    public async Task Seed_000_fastapi_echo()
    {
        int port = ServerProcess.FreePort();
        await using var server = StartSeed(Code("000", "from fastapi import FastAPI, WebSocket", "In this case, John"), "main.py",
            "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await WaitForPortAsync(port, server);
        await using var cli = Connect($"ws://127.0.0.1:{port}/ws");
        await cli.WriteLineAsync("hello FastAPI");
        Assert.Equal("Message text was: hello FastAPI", await cli.ReadLineAsync("Message"));
        cli.CloseInput();
        Assert.Equal(0, await cli.WaitForExitAsync());
        Assert.Contains("closed 1000", cli.Stderr);
    }

    [Fact]
    public async Task Seed_001_websockets_server()
    {
        await using var server = StartSeed(Code("001", "# server.py", "# client.py"), "server.py");
        await WaitForPortAsync(8765, server);
        await using var cli = Connect("ws://localhost:8765");
        await cli.WriteLineAsync("first");
        Assert.Equal("Server received your message: first", await cli.ReadLineAsync("Server"));
        await cli.WriteLineAsync("second");
        Assert.Equal("Server received your message: second", await cli.ReadLineAsync("Server"));
        cli.CloseInput();
        Assert.Equal(0, await cli.WaitForExitAsync());

        // The seed server runs websockets' default permessage-deflate: with --deflate the CLI negotiates it.
        await using var compressed = PeerProcess.Start("dotnet", AppContext.BaseDirectory, ServerProcess.SwitchboardDll, "connect", "--deflate", "ws://localhost:8765");
        string line = string.Concat(Enumerable.Repeat("compress me please, ", 100));
        await compressed.WriteLineAsync(line);
        Assert.Equal("Server received your message: " + line, await compressed.ReadLineAsync("Server"));
        compressed.CloseInput();
        Assert.Equal(0, await compressed.WaitForExitAsync());
        Assert.Contains("(permessage-deflate", compressed.Stderr);
    }

    [Fact]
    public async Task Seed_002_websockets_one_shot_server()
    {
        await using var server = StartSeed(Code("002", "import asyncio", "asyncio.get_event_loop().run_forever()", includeUntilLine: true), "server.py");
        await WaitForPortAsync(7000, server);
        await using var cli = Connect("ws://localhost:7000");
        await cli.WriteLineAsync("How are you?");
        Assert.Equal("Client:How are you?", await cli.ReadLineAsync("Client"));
        Assert.Equal("Server:I am fine, thanks!", await cli.ReadLineAsync("Server"));
        Assert.Equal(0, await cli.WaitForExitAsync()); // the server closes after its one reply
        Assert.Contains("closed 1000", cli.Stderr);
    }

    [Fact]
    public async Task Seed_003_fastapi_chat()
    {
        int port = ServerProcess.FreePort();
        await using var server = StartSeed(Code("003", "from fastapi import FastAPI, WebSocket, WebSocketDisconnect", "app.clients.remove(websocket)", includeUntilLine: true), "main.py",
            "-m", "uvicorn", "main:app", "--host", "127.0.0.1", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await WaitForPortAsync(port, server);
        await using var alice = Connect($"ws://127.0.0.1:{port}/ws");
        await using var bob = Connect($"ws://127.0.0.1:{port}/ws");
        // The seed server forwards a message to the clients connected at that moment: bob must be in before alice speaks.
        await bob.WaitForStderrAsync("connected to");
        await alice.WriteLineAsync("{\"name\": \"alice\", \"message\": \"hi from the CLI\"}");
        using JsonDocument own = JsonDocument.Parse(await alice.ReadLineAsync("{"));
        Assert.Equal(("alice", "hi from the CLI"), (own.RootElement.GetProperty("name").GetString(), own.RootElement.GetProperty("message").GetString()));
        Assert.Matches(@"^\d\d:\d\d:\d\d$", own.RootElement.GetProperty("time").GetString());
        using JsonDocument other = JsonDocument.Parse(await bob.ReadLineAsync("{"));
        Assert.Equal("hi from the CLI", other.RootElement.GetProperty("message").GetString());
        alice.CloseInput();
        bob.CloseInput();
        Assert.Equal(0, await alice.WaitForExitAsync());
    }
}

[CollectionDefinition("seed servers", DisableParallelization = true)]
public sealed class SeedServerCollection;
