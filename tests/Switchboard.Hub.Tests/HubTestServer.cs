using System.Text;
using System.Text.Json;
using System.Threading.Channels;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Logging;
using Switchboard.Protocol;
using Switchboard.Server;
using Switchboard.WebSockets;

namespace Switchboard.Hub.Tests;

/// <summary>A real Switchboard server on a free loopback port, shared by the tests of this assembly.</summary>
public sealed class HubTestServer
{
    private static readonly Lazy<Task<HubTestServer>> s_shared = new(() => StartAsync(null));

    private HubTestServer(WebApplication app)
    {
        App = app;
        Ws = new Uri(SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal));
    }

    public static Task<HubTestServer> Shared => s_shared.Value;

    public WebApplication App { get; }

    public Uri Ws { get; }

    public Hub Hub => SwitchboardServer.GetHub(App);

    public static async Task<HubTestServer> StartAsync(Action<SwitchboardServerOptions>? configure)
    {
        var options = new SwitchboardServerOptions
        {
            Urls = "http://127.0.0.1:0",
            Database = Path.Combine(Directory.CreateTempSubdirectory("switchboard-hub-").FullName, "hub.db"),
            // These tests publish thousands of messages a second from one connection, into many rooms, and resume over
            // 100,000 messages: the default bounds (rate, new rooms, retention) have tests of their own.
            Hub = new HubOptions
            {
                PublishRateLimit = 0,
                NewRoomsPerConnectionPerMinute = 0,
                NewRoomsPerMinute = 0,
                Retention = RetentionPolicy.Unlimited,
                RoomRetention = new Dictionary<string, RetentionPolicy> { ["retained"] = new RetentionPolicy(10, null) },
            },
        };
        configure?.Invoke(options);
        WebApplication app = SwitchboardServer.Build(options, l => l.SetMinimumLevel(LogLevel.Warning));
        await app.StartAsync();
        return new HubTestServer(app);
    }

    /// <summary>A fresh room name, so tests running in parallel do not meet.</summary>
    public static string NewRoom(string prefix = "room") => $"{prefix}-{Guid.NewGuid():N}"[..Math.Min(64, prefix.Length + 33)];
}

/// <summary>A hub-protocol client for tests: our WebSocket client plus JSON helpers.</summary>
public sealed class HubClient : WebSocketHandler, IAsyncDisposable
{
    private readonly Channel<JsonElement> _inbox = Channel.CreateUnbounded<JsonElement>();
    private WebSocketConnection? _connection;
    private int _ref;

    public TaskCompletionSource<WebSocketCloseStatus> Closed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public JsonElement Welcome { get; private set; }

    public static async Task<HubClient> ConnectAsync(Uri server, string name, string? user = null, string path = "/hub",
        string? query = null, IReadOnlyList<KeyValuePair<string, string>>? headers = null)
    {
        var client = new HubClient();
        query ??= path == "/hub" ? $"?name={Uri.EscapeDataString(name)}" + (user is null ? "" : $"&user={Uri.EscapeDataString(user)}") : "";
        client._connection = await WebSocketClient.ConnectAsync(new Uri(server, path + query), new() { Handler = client, Headers = headers ?? [] });
        if (path == "/hub")
        {
            client.Welcome = await client.NextAsync();
            Assert.Equal("welcome", client.Welcome.GetProperty("type").GetString());
        }

        return client;
    }

    public WebSocketConnection Connection => _connection!;

    public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
    {
        JsonElement element;
        try
        {
            using JsonDocument doc = JsonDocument.Parse(message.Data);
            element = doc.RootElement.Clone();
        }
        catch (JsonException)
        {
            // Not JSON (e.g. seed 000's plain-text reply on /ws): handed over as {"plain": text}.
            element = JsonSerializer.SerializeToElement(new { plain = Encoding.UTF8.GetString(message.Data) });
        }

        _inbox.Writer.TryWrite(element);
        return ValueTask.CompletedTask;
    }

    public override ValueTask OnCloseAsync(WebSocketConnection connection, WebSocketCloseStatus status)
    {
        Closed.TrySetResult(status);
        _inbox.Writer.TryComplete();
        return ValueTask.CompletedTask;
    }

    public void SendRaw(string text) => _connection!.SendText(text);

    /// <summary>Sends a command (adds a fresh "ref") and returns the ref.</summary>
    public string Send(object command)
    {
        string reference = "r" + Interlocked.Increment(ref _ref);
        var node = JsonSerializer.SerializeToNode(command)!.AsObject();
        node["ref"] = reference;
        _connection!.SendText(node.ToJsonString());
        return reference;
    }

    public async Task<JsonElement> NextAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await _inbox.Reader.ReadAsync(cts.Token);
    }

    /// <summary>Skips messages until one of <paramref name="type"/> (that matches) arrives.</summary>
    public async Task<JsonElement> ExpectAsync(string type, Func<JsonElement, bool>? match = null)
    {
        while (true)
        {
            JsonElement e = await NextAsync();
            if (e.GetProperty("type").GetString() == type && (match is null || match(e)))
            {
                return e;
            }
        }
    }

    /// <summary>The reply to a command: the next message carrying its ref.</summary>
    public Task<JsonElement> ReplyAsync(string reference) =>
        ExpectAsync2(e => e.TryGetProperty("ref", out JsonElement r) && r.GetString() == reference);

    public async Task<JsonElement> ExpectAsync2(Func<JsonElement, bool> match)
    {
        while (true)
        {
            JsonElement e = await NextAsync();
            if (match(e))
            {
                return e;
            }
        }
    }

    /// <summary>Publishes and waits for the ack.</summary>
    public async Task<long> PublishAsync(string room, string text, string? id = null)
    {
        string r = Send(new { type = "publish", room, text, id = id ?? Guid.NewGuid().ToString("N") });
        JsonElement ack = await ReplyAsync(r);
        Assert.Equal("ack", ack.GetProperty("type").GetString());
        return ack.GetProperty("offset").GetInt64();
    }

    /// <summary>Closes with <paramref name="code"/> and waits until the connection has ended.</summary>
    public Task<WebSocketCloseStatus> CloseAsync(ushort code, string reason) => _connection!.CloseAsync(code, reason);

    public ValueTask DisposeAsync()
    {
        _connection?.Abort();
        return ValueTask.CompletedTask;
    }

    public static string Type(JsonElement e) => e.GetProperty("type").GetString()!;
}
