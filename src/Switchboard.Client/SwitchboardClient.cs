using System.Buffers;
using System.Text.Json;
using Switchboard.Hub.Messages;
using System.Threading.Channels;
using Switchboard.Protocol;
using Switchboard.WebSockets;

namespace Switchboard.Client;

/// <summary>
/// A client of the Switchboard hub (<c>/hub</c>). It reconnects by itself (exponential backoff with jitter),
/// rejoins every joined room from the last offset it delivered, and re-sends unacknowledged publishes with the
/// same ids — so after any number of disconnects every message arrives once, in order, and every publish is
/// stored once.
/// </summary>
/// <example>
/// <code>
/// await using var client = await SwitchboardClient.ConnectAsync(new Uri("ws://127.0.0.1:8000"), new() { Name = "Alice" });
/// await client.JoinAsync("general");
/// await client.PublishAsync("general", "hello");
/// await foreach (HubMessage m in client.Messages()) Console.WriteLine($"{m.Name}: {m.Text}");
/// </code>
/// </example>
public sealed class SwitchboardClient : IAsyncDisposable
{
    private readonly Uri _url;
    private readonly SwitchboardClientOptions _options;
    private readonly object _lock = new();
    private readonly Dictionary<string, RoomCursor> _rooms = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Pending> _publishes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, TaskCompletionSource<ServerReply>> _requests = new(StringComparer.Ordinal);
    private readonly Channel<HubMessage> _messages;
    private readonly Channel<HubEvent> _events = Channel.CreateUnbounded<HubEvent>();
    private readonly Channel<ConnectionState> _states = Channel.CreateUnbounded<ConnectionState>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Random _random = new();
    private readonly TaskCompletionSource _firstConnect = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private WebSocketConnection? _connection;
    private Task _loop = Task.CompletedTask;
    private long _nextRef;
    private ConnectionState _state = ConnectionState.Connecting;

    private sealed class RoomCursor
    {
        public string? Epoch;
        public long Offset = -1; // last offset delivered; -1: never joined (server default history)
        public long? RequestedSince;
        public Channel<HubMessage>? Stream;
    }

    private sealed record Pending(string Room, string Text, TaskCompletionSource<PublishResult> Done);

    private Microsoft.Extensions.Logging.ILogger _logger => _options.Logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;

    private SwitchboardClient(Uri url, SwitchboardClientOptions options)
    {
        _url = url;
        _options = options;
        _messages = Channel.CreateBounded<HubMessage>(new BoundedChannelOptions(Math.Max(1, options.MessageBuffer)) { SingleWriter = true });
    }

    /// <summary>The connection state now.</summary>
    public ConnectionState State => _state;

    /// <summary>When the next reconnect attempt happens (while <see cref="ConnectionState.Reconnecting"/>).</summary>
    public DateTimeOffset? NextRetry { get; private set; }

    /// <summary>Raised on every state change.</summary>
    public event Action<ConnectionState>? StateChanged;

    /// <summary>
    /// Connects to a hub. <paramref name="server"/> is the server's address (<c>ws://host:8000</c>) or the hub endpoint
    /// itself. Completes once the first connection is up; fails if that first attempt fails.
    /// </summary>
    public static async Task<SwitchboardClient> ConnectAsync(Uri server, SwitchboardClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new SwitchboardClientOptions();
        var builder = new UriBuilder(server);
        if (builder.Path is "" or "/")
        {
            builder.Path = "/hub";
        }

        string query = $"name={Uri.EscapeDataString(options.Name)}" + (options.User is null ? "" : $"&user={Uri.EscapeDataString(options.User)}");
        builder.Query = string.IsNullOrEmpty(builder.Query.TrimStart('?')) ? query : builder.Query.TrimStart('?') + "&" + query;
        var client = new SwitchboardClient(builder.Uri, options);
        await client.OpenAsync(cancellationToken).ConfigureAwait(false);
        client._loop = client.SuperviseAsync();
        return client;
    }

    /// <summary>All messages of the joined rooms, in order per room, each exactly once.</summary>
    public IAsyncEnumerable<HubMessage> Messages(CancellationToken cancellationToken = default) => _messages.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Presence, gap and reset events of the joined rooms.</summary>
    public IAsyncEnumerable<HubEvent> Events(CancellationToken cancellationToken = default) => _events.Reader.ReadAllAsync(cancellationToken);

    /// <summary>Every state change, as a stream.</summary>
    public IAsyncEnumerable<ConnectionState> StateChanges(CancellationToken cancellationToken = default) => _states.Reader.ReadAllAsync(cancellationToken);

    /// <summary>
    /// Joins a room: messages after <paramref name="since"/> (or the server's recent history when null) and then
    /// live messages arrive on <see cref="Messages"/>. Stays joined across reconnects.
    /// </summary>
    public async Task<JoinedRoom> JoinAsync(string room, long? since = null, CancellationToken cancellationToken = default)
    {
        lock (_lock)
        {
            if (!_rooms.TryGetValue(room, out RoomCursor? cursor))
            {
                cursor = new RoomCursor();
                _rooms[room] = cursor;
            }

            cursor.RequestedSince = since;
            if (since is long s)
            {
                cursor.Offset = s;
            }
        }

        JoinedMessage joined = await RequestAsync<JoinedMessage>(JoinCommand(room), cancellationToken).ConfigureAwait(false);
        return new JoinedRoom(room, joined.Epoch, joined.Offset, [.. joined.Members.Select(m => (m.User, m.Name))]);
    }

    /// <summary>A room as a stream of its messages and a sink for new ones (like a WebSocket channel).</summary>
    public async Task<RoomChannel> OpenChannelAsync(string room, long? since = null, CancellationToken cancellationToken = default)
    {
        var stream = Channel.CreateUnbounded<HubMessage>();
        lock (_lock)
        {
            if (!_rooms.TryGetValue(room, out RoomCursor? cursor))
            {
                cursor = new RoomCursor();
                _rooms[room] = cursor;
            }

            cursor.Stream = stream;
        }

        await JoinAsync(room, since, cancellationToken).ConfigureAwait(false);
        return new RoomChannel(this, room, stream.Reader);
    }

    /// <summary>Leaves a room.</summary>
    public async Task LeaveAsync(string room, CancellationToken cancellationToken = default)
    {
        RoomCursor? cursor;
        lock (_lock)
        {
            _rooms.Remove(room, out cursor);
        }

        cursor?.Stream?.Writer.TryComplete();
        await RequestAsync<LeftMessage>(new LeaveCommand(room), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Publishes and waits until the server has stored the message. If the connection drops first, the message is
    /// sent again with the same id after reconnecting; the server stores it once either way.
    /// </summary>
    public Task<PublishResult> PublishAsync(string room, string text, string? id = null, CancellationToken cancellationToken = default)
    {
        id ??= _options.NewMessageId();
        var done = new TaskCompletionSource<PublishResult>(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _publishes[id] = new Pending(room, text, done);
        }

        SendPublish(id, room, text);
        return cancellationToken.CanBeCanceled ? done.Task.WaitAsync(cancellationToken) : done.Task;
    }

    /// <summary>Messages before <paramref name="before"/> (newest when null), ascending, and whether older ones exist.</summary>
    public async Task<(IReadOnlyList<HubMessage> Messages, bool More)> HistoryAsync(string room, long? before = null, int limit = 50, CancellationToken cancellationToken = default)
    {
        HistoryMessage reply = await RequestAsync<HistoryMessage>(new HistoryCommand(room, before, limit), cancellationToken).ConfigureAwait(false);
        return ([.. reply.Messages.Select(m => new HubMessage(room, m.Offset, m.Id, m.From, m.Name, m.Text, m.Time))], reply.More);
    }

    // ------------------------------------------------------------------ connection management

    private async Task OpenAsync(CancellationToken cancellationToken)
    {
        WebSocketClientOptions ws = _options.WebSocket ?? new WebSocketClientOptions();
        var headers = new List<KeyValuePair<string, string>>(ws.Headers);
        if (_options.Token is not null)
        {
            headers.Add(new("Authorization", "Bearer " + _options.Token));
        }

        var handler = new Handler(this);
        WebSocketConnection connection = await WebSocketClient.ConnectAsync(_url, new WebSocketClientOptions
        {
            Handler = handler,
            Headers = headers,
            SubProtocols = ws.SubProtocols,
            ConnectTimeout = ws.ConnectTimeout,
            RemoteCertificateValidation = ws.RemoteCertificateValidation,
            DangerousAcceptAnyServerCertificate = ws.DangerousAcceptAnyServerCertificate,
            Connection = ws.Connection,
            Compression = _options.Compression,
        }, cancellationToken).ConfigureAwait(false);
        try
        {
            await handler.Welcomed.Task.WaitAsync(_options.WelcomeTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or NotAHubException)
        {
            connection.Abort();
            throw ex as NotAHubException ?? new NotAHubException(_url, $"no 'welcome' arrived within {_options.WelcomeTimeout.TotalSeconds:0.#} s");
        }

        lock (_lock)
        {
            _connection = connection;
        }

        SetState(ConnectionState.Connected);
        Resubscribe(connection);
    }

    /// <summary>After (re)connecting: rejoin every room from its last delivered offset, re-send unacknowledged publishes.</summary>
    private void Resubscribe(WebSocketConnection connection)
    {
        List<(string Room, JoinCommand Join)> joins;
        List<(string Id, Pending P)> publishes;
        lock (_lock)
        {
            joins = [.. _rooms.Select(r => (r.Key, JoinCommand(r.Key)))];
            publishes = [.. _publishes.Select(p => (p.Key, p.Value))];
        }

        foreach (var (_, join) in joins)
        {
            // The reply is not awaited here: a failure shows up as an error event.
            connection.Send(MessageType.Text, HubJson.Write(join with { Ref = NewRef() }));
        }

        foreach (var (id, p) in publishes)
        {
            SendPublish(id, p.Room, p.Text);
        }
    }

    private JoinCommand JoinCommand(string room)
    {
        lock (_lock)
        {
            return _rooms.TryGetValue(room, out RoomCursor? c) && c.Offset >= 0 ? new JoinCommand(room, c.Offset, c.Epoch) : new JoinCommand(room);
        }
    }

    private async Task SuperviseAsync()
    {
        int attempt = 0;
        while (!_stop.IsCancellationRequested)
        {
            WebSocketConnection? c = _connection;
            if (c is not null)
            {
                await c.Completion.ConfigureAwait(false);
                FailRequests(new IOException("The connection was lost."));
                if (_stop.IsCancellationRequested)
                {
                    break;
                }
            }

            attempt++;
            if (_options.Reconnect.MaxAttempts is int max && attempt > max)
            {
                break;
            }

            TimeSpan delay = _options.Reconnect.DelayFor(attempt, _random);
            NextRetry = DateTimeOffset.UtcNow + delay;
            SetState(ConnectionState.Reconnecting);
            try
            {
                await Task.Delay(delay, _stop.Token).ConfigureAwait(false);
                _connection = null;
                await OpenAsync(_stop.Token).ConfigureAwait(false);
                attempt = 0;
                NextRetry = null;
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                break;
            }
            catch (Exception)
            {
                _connection = null; // try again after the next delay
            }
        }

        SetState(ConnectionState.Closed);
        FailRequests(new ObjectDisposedException(nameof(SwitchboardClient)));
        lock (_lock)
        {
            foreach (Pending p in _publishes.Values)
            {
                p.Done.TrySetException(new IOException("The client closed before the message was acknowledged."));
            }

            _publishes.Clear();
        }

        _messages.Writer.TryComplete();
        _events.Writer.TryComplete();
        _states.Writer.TryComplete();
    }

    private void SetState(ConnectionState state)
    {
        lock (_lock)
        {
            // Closed is final, and each change is reported once even when two paths (dispose, the loop) race to it.
            if (_state == state || _state == ConnectionState.Closed)
            {
                return;
            }

            _state = state;
        }

        _states.Writer.TryWrite(state);
        StateChanged?.Invoke(state);
    }

    private const string PublishRefPrefix = "p:";

    private string NewRef() => "c" + Interlocked.Increment(ref _nextRef).ToString(System.Globalization.CultureInfo.InvariantCulture);

    private void SendPublish(string id, string room, string text)
    {
        WebSocketConnection? c = _connection;
        c?.Send(MessageType.Text, HubJson.Write(new PublishCommand(room, text, id) { Ref = PublishRefPrefix + id }));
    }

    private async Task<TReply> RequestAsync<TReply>(ClientCommand command, CancellationToken cancellationToken)
        where TReply : ServerReply
    {
        string reference = NewRef();
        byte[] utf8 = command switch
        {
            JoinCommand join => HubJson.Write(join with { Ref = reference }),
            LeaveCommand leave => HubJson.Write(leave with { Ref = reference }),
            HistoryCommand history => HubJson.Write(history with { Ref = reference }),
            _ => throw new ArgumentException($"Not a request: {command.Type}", nameof(command)),
        };
        var done = new TaskCompletionSource<ServerReply>(TaskCreationOptions.RunContinuationsAsynchronously);
        WebSocketConnection connection;
        lock (_lock)
        {
            connection = _connection ?? throw new IOException("Not connected (reconnecting).");
            _requests[reference] = done;
        }

        if (connection.Send(MessageType.Text, utf8) != SendResult.Enqueued)
        {
            lock (_lock)
            {
                _requests.Remove(reference);
            }

            throw new IOException("Not connected (reconnecting).");
        }

        ServerReply reply = await done.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
        return reply as TReply ?? throw new InvalidOperationException($"The server answered '{command.Type}' with '{reply.Type}'.");
    }

    private void FailRequests(Exception error)
    {
        List<TaskCompletionSource<ServerReply>> failed;
        lock (_lock)
        {
            failed = [.. _requests.Values];
            _requests.Clear();
        }

        foreach (var r in failed)
        {
            r.TrySetException(error);
        }
    }

    // ------------------------------------------------------------------ receiving

    private async ValueTask OnServerMessageAsync(string type, ReadOnlySequence<byte> utf8)
    {
        ServerReply? reply;
        switch (type)
        {
            case HubMessageTypes.Message:
            {
                MessageEvent e = HubJson.Read<MessageEvent>(utf8);
                var m = new HubMessage(e.Room, e.Offset, e.Id, e.From, e.Name, e.Text, e.Time);
                Channel<HubMessage>? stream;
                lock (_lock)
                {
                    if (!_rooms.TryGetValue(e.Room, out RoomCursor? cursor) || m.Offset <= cursor.Offset)
                    {
                        return; // not joined (any more), or already delivered before a reconnect
                    }

                    cursor.Offset = m.Offset;
                    stream = cursor.Stream;
                }

                if (stream is not null)
                {
                    stream.Writer.TryWrite(m);
                }
                else
                {
                    await _messages.Writer.WriteAsync(m).ConfigureAwait(false);
                }

                return;
            }

            case HubMessageTypes.Joined:
            {
                JoinedMessage e = HubJson.Read<JoinedMessage>(utf8);
                lock (_lock)
                {
                    if (_rooms.TryGetValue(e.Room, out RoomCursor? cursor))
                    {
                        cursor.Epoch = e.Epoch;
                        if (e.EpochChanged || cursor.Offset < 0)
                        {
                            cursor.Offset = e.From;
                        }
                    }
                }

                if (e.EpochChanged)
                {
                    _events.Writer.TryWrite(new HistoryReset(e.Room, e.Epoch));
                }

                reply = e;
                break;
            }

            case HubMessageTypes.Reset:
            {
                // The room's history was deleted: what follows is numbered from the new epoch's start.
                ResetMessage e = HubJson.Read<ResetMessage>(utf8);
                lock (_lock)
                {
                    if (_rooms.TryGetValue(e.Room, out RoomCursor? cursor))
                    {
                        cursor.Epoch = e.Epoch;
                        cursor.Offset = e.Offset;
                    }
                }

                _events.Writer.TryWrite(new HistoryReset(e.Room, e.Epoch));
                return;
            }

            case HubMessageTypes.Ack:
            {
                AckMessage e = HubJson.Read<AckMessage>(utf8);
                Pending? p;
                lock (_lock)
                {
                    _publishes.Remove(e.Id, out p);
                }

                p?.Done.TrySetResult(new PublishResult(e.Room, e.Id, e.Offset, e.Duplicate));
                return;
            }

            case HubMessageTypes.MemberJoined or HubMessageTypes.MemberLeft:
            {
                PresenceMessage e = HubJson.Read<PresenceMessage>(utf8);
                _events.Writer.TryWrite(type == HubMessageTypes.MemberJoined ? new MemberJoined(e.Room, e.User, e.Name) : new MemberLeft(e.Room, e.User, e.Name));
                return;
            }

            case HubMessageTypes.Left:
            {
                LeftMessage e = HubJson.Read<LeftMessage>(utf8);
                if (e.Ref is null)
                {
                    // Not asked for: the server took this connection out of the room (e.g. a refreshed token no longer allows it).
                    lock (_lock)
                    {
                        _rooms.Remove(e.Room);
                    }

                    _events.Writer.TryWrite(new RemovedFromRoom(e.Room, e.Reason ?? "", e.Message ?? ""));
                    return;
                }

                reply = e;
                break;
            }

            case HubMessageTypes.Gap:
            {
                GapMessage e = HubJson.Read<GapMessage>(utf8);
                _events.Writer.TryWrite(new MessagesLost(e.Room, e.From, e.To));
                return;
            }

            case HubMessageTypes.Lagging:
            {
                LaggingMessage e = HubJson.Read<LaggingMessage>(utf8);
                _events.Writer.TryWrite(new CatchingUp(e.Room, e.Offset));
                return;
            }

            case HubMessageTypes.Welcome:
                return;
            case HubMessageTypes.History:
                reply = HubJson.Read<HistoryMessage>(utf8);
                break;
            case HubMessageTypes.Pong:
                reply = HubJson.Read<PongMessage>(utf8);
                break;
            case HubMessageTypes.Refreshed:
                reply = HubJson.Read<RefreshedMessage>(utf8);
                break;
            case HubMessageTypes.Error:
                reply = HubJson.Read<ErrorMessage>(utf8);
                break;
            default:
                // A newer server's message: nothing here depends on it.
                Log.UnknownType(_logger, type);
                return;
        }

        if (reply.Ref is not string reference)
        {
            return;
        }

        if (reply is ErrorMessage refused && reference.StartsWith(PublishRefPrefix, StringComparison.Ordinal))
        {
            // A refused publish (invalid text, forbidden, storage failure): the caller decides whether to retry.
            Pending? failed;
            lock (_lock)
            {
                _publishes.Remove(reference[PublishRefPrefix.Length..], out failed);
            }

            failed?.Done.TrySetException(new HubErrorException(refused.Code, refused.Message));
            return;
        }

        TaskCompletionSource<ServerReply>? request;
        lock (_lock)
        {
            _requests.Remove(reference, out request);
        }

        if (reply is ErrorMessage error)
        {
            request?.TrySetException(new HubErrorException(error.Code, error.Message));
        }
        else
        {
            request?.TrySetResult(reply);
        }
    }

    private sealed class Handler(SwitchboardClient client) : WebSocketHandler
    {
        public TaskCompletionSource Welcomed { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            if (!Welcomed.Task.IsCompleted)
            {
                // A hub's first message is always "welcome"; anything else means the address is some other WebSocket server.
                if (IsWelcome(message))
                {
                    Welcomed.TrySetResult();
                }
                else
                {
                    string first = message.Type == MessageType.Text ? System.Text.EncodingExtensions.GetString(System.Text.Encoding.UTF8, message.Data) : $"{message.Data.Length} bytes of binary";
                    Welcomed.TrySetException(new NotAHubException(client._url, $"its first message was not 'welcome' but \"{(first.Length > 60 ? first[..60] + "…" : first)}\""));
                }

                return;
            }

            if (!HubJson.TryReadType(message.Data, out string? type))
            {
                Log.Unreadable(client._logger, "not a JSON object with a string \"type\"");
                return;
            }

            try
            {
                await client.OnServerMessageAsync(type, message.Data).ConfigureAwait(false);
            }
            catch (JsonException ex)
            {
                // A field missing or of another type than this client knows: ignore the message, keep the connection.
                Log.Unreadable(client._logger, $"'{type}': {ex.Message}");
            }
        }

        private static bool IsWelcome(WebSocketMessage message) =>
            HubJson.TryReadType(message.Data, out string? type) && type == HubMessageTypes.Welcome;
    }

    private int _disposed;

    /// <summary>Closes the connection and stops reconnecting. Safe to call more than once.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        await _stop.CancelAsync().ConfigureAwait(false);
        WebSocketConnection? c = _connection;
        if (c is not null)
        {
            await c.CloseAsync(WebSocketCloseCode.NormalClosure).WaitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false);
        }

        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}

/// <summary>One room as a stream of messages and a sink for new ones.</summary>
public sealed class RoomChannel
{
    private readonly SwitchboardClient _client;

    internal RoomChannel(SwitchboardClient client, string room, ChannelReader<HubMessage> stream)
    {
        _client = client;
        Room = room;
        Stream = stream;
    }

    /// <summary>The room.</summary>
    public string Room { get; }

    /// <summary>The room's messages, each once, in order.</summary>
    public ChannelReader<HubMessage> Stream { get; }

    /// <summary>Publishes text to the room (acknowledged; retried across reconnects).</summary>
    public Task<PublishResult> SendAsync(string text, CancellationToken cancellationToken = default) => _client.PublishAsync(Room, text, null, cancellationToken);
}

/// <summary>The client's log lines.</summary>
internal static partial class Log
{
    [Microsoft.Extensions.Logging.LoggerMessage(1, Microsoft.Extensions.Logging.LogLevel.Information, "Ignored a server message of unknown type \"{Type}\" (a newer server?)")]
    public static partial void UnknownType(Microsoft.Extensions.Logging.ILogger logger, string type);

    [Microsoft.Extensions.Logging.LoggerMessage(2, Microsoft.Extensions.Logging.LogLevel.Warning, "Ignored a server message this client cannot read: {Why}")]
    public static partial void Unreadable(Microsoft.Extensions.Logging.ILogger logger, string why);
}
