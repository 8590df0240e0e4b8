using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Switchboard.Protocol;
using Switchboard.Server;
using Switchboard.WebSockets;
using Switchboard.WebSockets.AspNetCore;

namespace Switchboard.Client.Tests;

/// <summary>
/// The .NET client against a scripted hub: every server message type is handled (lagging and gap become events), and
/// a message it does not know or cannot read is ignored with a log line — the connection stays up.
/// </summary>
public class ServerMessageToleranceTests
{
    private sealed class CollectingLogger : ILogger
    {
        public ConcurrentQueue<string> Lines { get; } = new();

        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Lines.Enqueue(formatter(state, exception));
    }

    /// <summary>Welcome, then on <c>join</c>: joined, and a script of odd and ordinary messages.</summary>
    private sealed class ScriptedHub : WebSocketHandler
    {
        public override ValueTask OnOpenAsync(WebSocketConnection connection)
        {
            connection.SendText("""{"type":"welcome","connectionId":"c1","user":"u1","name":"One","serverTime":"2026-11-30T12:00:00.000Z","protocol":1}""");
            return ValueTask.CompletedTask;
        }

        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            using JsonDocument command = JsonDocument.Parse(message.Data);
            if (command.RootElement.GetProperty("type").GetString() == "join")
            {
                string reference = command.RootElement.GetProperty("ref").GetString()!;
                connection.SendText($$"""{"type":"joined","ref":"{{reference}}","room":"r","epoch":"e1","offset":0,"from":0,"members":[]}""");
                connection.SendText("""{"type":"from_a_newer_server","x":1}""");
                connection.SendText("not json at all");
                connection.SendText("""{"type":"message","room":"r"}"""); // fields missing
                connection.SendText("""[1,2,3]""");
                connection.SendText("""{"type":"lagging","room":"r","offset":0}""");
                connection.SendText("""{"type":"gap","room":"r","from":1,"to":2,"reason":"retention"}""");
                connection.SendText("""{"type":"message","room":"r","offset":3,"id":"m3","from":"u2","name":"Two","text":"still here","time":"2026-11-30T12:00:01.000Z"}""");
            }

            return ValueTask.CompletedTask;
        }
    }

    [Fact]
    public async Task Unknown_or_unreadable_messages_are_logged_and_ignored_and_lagging_and_gap_are_events()
    {
        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using WebApplication app = builder.Build();
        app.MapWebSocket("/hub", _ => new ScriptedHub());
        await app.StartAsync();
        var url = new Uri(SwitchboardServer.GetAddresses(app)[0].Replace("http://", "ws://", StringComparison.Ordinal) + "/hub");

        var logger = new CollectingLogger();
        await using SwitchboardClient client = await SwitchboardClient.ConnectAsync(url, new() { Name = "One", Logger = logger, Reconnect = ReconnectPolicy.None });
        await client.JoinAsync("r");
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using IAsyncEnumerator<HubMessage> messages = client.Messages(timeout.Token).GetAsyncEnumerator(timeout.Token);
        Assert.True(await messages.MoveNextAsync());
        Assert.Equal(("still here", 3L), (messages.Current.Text, messages.Current.Offset));

        await using IAsyncEnumerator<HubEvent> events = client.Events(timeout.Token).GetAsyncEnumerator(timeout.Token);
        Assert.True(await events.MoveNextAsync());
        Assert.Equal(new CatchingUp("r", 0), events.Current);
        Assert.True(await events.MoveNextAsync());
        Assert.Equal(new MessagesLost("r", 1, 2), events.Current);

        Assert.Equal(ConnectionState.Connected, client.State); // never a 1011 failure
        string[] lines = [.. logger.Lines];
        Assert.Contains(lines, l => l.Contains("\"from_a_newer_server\"", StringComparison.Ordinal));
        Assert.Equal(3, lines.Count(l => l.StartsWith("Ignored a server message this client cannot read", StringComparison.Ordinal)));
        await client.DisposeAsync(); // before the server stops: it waits for open connections
    }
}
