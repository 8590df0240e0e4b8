using Microsoft.Extensions.Configuration;

namespace Switchboard.Server;

/// <summary>
/// Server settings, bound from configuration section "Switchboard" (appsettings.json, environment variables,
/// command-line flags; see <see cref="Load"/>). Every problem found by <see cref="Validate"/> names its setting.
/// </summary>
public sealed class SwitchboardServerOptions
{
    /// <summary>The default listen address: loopback, port 8000 (what the classic chat page expects).</summary>
    public const string DefaultUrls = "http://127.0.0.1:8000";

    /// <summary>Addresses to listen on, separated by ';'.</summary>
    public string Urls { get; set; } = DefaultUrls;

    /// <summary>
    /// The clock for every deadline the server keeps (handshake, keepalive, closing handshake, token expiry, refusal log
    /// lines): its connections share one heartbeat on it. Tests pass a fake one; not bound from configuration.
    /// </summary>
    public TimeProvider Time { get; set; } = TimeProvider.System;

    /// <summary>Opening handshake timeout: a client must send its whole upgrade request within this time.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Most TCP connections held at once (HTTP and WebSocket); beyond it new connections get 503 and are closed. Default
    /// (null): the process's descriptor limit less those open at start-up and a reserve of 256 — e.g. 565 under
    /// <c>ulimit -n 1024</c> — so the process never runs out of descriptors.
    /// </summary>
    public int? MaxConnections { get; set; }

    /// <summary>The "Kestrel" configuration section (Kestrel:Limits:* is applied to the server), when loaded from configuration.</summary>
    public IConfiguration? Kestrel { get; set; }

    /// <summary>Largest WebSocket message accepted (bytes).</summary>
    public long MaxMessageSize { get; set; } = 16 * 1024 * 1024;

    /// <summary>Keepalive ping interval; zero disables keepalive.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Keepalive pong timeout.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Closing handshake timeout.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Take WebSocket upgrades at the connection level, before Kestrel's HTTP layer (cheaper per connection and per
    /// message). Default true; false routes every upgrade through the HTTP pipeline.
    /// </summary>
    public bool FastUpgrade { get; set; } = true;

    /// <summary>
    /// Accept permessage-deflate (RFC 7692) from clients that offer it. Default true. Messages below
    /// <see cref="CompressionThreshold"/> bytes, and messages that would not shrink, are still sent as is.
    /// </summary>
    public bool Compression { get; set; } = true;

    /// <summary>zlib level for permessage-deflate: 1 (fastest) to 9 (smallest). Default 6.</summary>
    public int CompressionLevel { get; set; } = 6;

    /// <summary>Messages shorter than this (bytes) are sent uncompressed. Default 128.</summary>
    public int CompressionThreshold { get; set; } = 128;

    /// <summary>
    /// Keep compression contexts between messages (context takeover, both directions): better ratios on streams of
    /// similar messages, but each connection then holds its own zlib state (about 300 KiB once it has compressed
    /// something) and every broadcast is compressed once per member instead of once. Default false: no context
    /// takeover, no per-connection zlib state, one compressed frame shared by all members.
    /// </summary>
    public bool CompressionContextTakeover { get; set; }

    /// <summary>
    /// Run socket I/O continuations inline (Kestrel's <c>UnsafePreferInlineScheduling</c>): a received message is
    /// decoded, handled and answered on the thread that completed the receive, without hopping through the thread
    /// pool. Default true.
    /// </summary>
    public bool InlineIo { get; set; } = true;

    /// <summary>
    /// The socket transport under Kestrel: "switchboard" (default; no pipes or I/O loops per connection, a receive
    /// buffer only while data is read — about 2 KB less per idle WebSocket connection) or "kestrel" (Kestrel's own).
    /// </summary>
    public string Transport { get; set; } = "switchboard";

    /// <summary>Where history is kept: "sqlite" (default), "postgres" or "memory".</summary>
    public string Store { get; set; } = "sqlite";

    /// <summary>The SQLite database file (Store = sqlite).</summary>
    public string Database { get; set; } = "switchboard.db";

    /// <summary>The PostgreSQL connection string (Store = postgres), e.g. "Host=127.0.0.1;Username=switchboard;Database=switchboard".</summary>
    public string? Postgres { get; set; }

    /// <summary>
    /// How committed messages reach the other servers of a deployment: "memory" (default: this server is the only one)
    /// or "redis" (several servers behind a load balancer, sharing the PostgreSQL store; see docs/deployment.md).
    /// </summary>
    public string Broker { get; set; } = "memory";

    /// <summary>
    /// With several servers: how soon the members of a server that died (kill -9, power loss, partition) leave every
    /// other server's member lists. Each server renews its liveness three times per timeout. Default 15 s.
    /// </summary>
    public TimeSpan NodeTimeout { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Redis for <see cref="Broker"/> = redis: "host:port", or several (a Redis Cluster's nodes) separated by ','.</summary>
    public string? Redis { get; set; }

    /// <summary>Log output: "text" (one line per event, default) or "json" (one JSON object per event, for log collectors).</summary>
    public string LogFormat { get; set; } = "text";

    /// <summary>Minimum log level: Trace, Debug, Information, Warning (default), Error.</summary>
    public Microsoft.Extensions.Logging.LogLevel LogLevel { get; set; } = Microsoft.Extensions.Logging.LogLevel.Warning;

    /// <summary>How often retention (Switchboard:Hub:Retention, Switchboard:Hub:RoomRetention) is applied. Default 1 minute.</summary>
    public TimeSpan RetentionInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// A secret for <c>/metrics</c>: when set, scrapes must send <c>Authorization: Bearer</c> it (Prometheus:
    /// <c>authorization: { credentials: ... }</c>). When not set, <c>/metrics</c> is public while authentication is off
    /// and refused (403) while it is on.
    /// </summary>
    public string? MetricsToken { get; set; }

    /// <summary>Authentication and the Origin allow-list.</summary>
    public AuthOptions Auth { get; set; } = new();

    /// <summary>Export of traces and metrics over OTLP (off until an endpoint is configured).</summary>
    public OtlpOptions Otlp { get; set; } = new();

    /// <summary>The server API for backends under <c>/api</c> (off until a key is configured).</summary>
    public ApiOptions Api { get; set; } = new();

    /// <summary>Hub settings (rooms, limits, retention).</summary>
    public Hub.HubOptions Hub { get; set; } = new();

    /// <summary>Overrides <see cref="Store"/>: creates the message store (tests, embedding).</summary>
    public Func<Hub.IMessageStore>? StoreFactory { get; set; }

    internal async Task<global::Switchboard.Hub.IBroker> ConnectBrokerAsync(Microsoft.Extensions.Logging.ILogger logger, System.Diagnostics.Metrics.IMeterFactory meterFactory)
    {
        if (!Broker.Equals("redis", StringComparison.OrdinalIgnoreCase))
        {
            return global::Switchboard.Hub.InMemoryBroker.Local;
        }

        try
        {
            return await Switchboard.Redis.RedisBroker.ConnectAsync(Redis!, TimeSpan.FromSeconds(10), logger, meterFactory).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is TimeoutException or StackExchange.Redis.RedisException or ArgumentException)
        {
            throw new ServerConfigurationException($"Switchboard:Redis: cannot connect to '{Redis}': {ex.Message}");
        }
    }

    internal static global::Switchboard.Hub.IPresence CreatePresence(global::Switchboard.Hub.IBroker broker, TimeSpan nodeTimeout, Microsoft.Extensions.Logging.ILogger logger) =>
        broker is Switchboard.Redis.RedisBroker redis
            ? new Switchboard.Redis.RedisPresence(redis, nodeTimeout, logger: logger)
            : global::Switchboard.Hub.InMemoryPresence.Local;

    internal async Task<Hub.IMessageStore> OpenStoreAsync(CancellationToken cancellationToken) => StoreFactory?.Invoke() ?? Store.ToLowerInvariant() switch
    {
        "memory" => new Hub.InMemoryMessageStore(),
        "postgres" => await OpenPostgresAsync(cancellationToken).ConfigureAwait(false),
        _ => await OpenSqliteAsync(cancellationToken).ConfigureAwait(false),
    };

    private async Task<Hub.IMessageStore> OpenPostgresAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await Stores.Postgres.PostgresMessageStore.OpenAsync(Postgres!, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ArgumentException or Npgsql.NpgsqlException or System.Net.Sockets.SocketException or TimeoutException)
        {
            throw new ServerConfigurationException($"Switchboard:Postgres: cannot connect: {ex.Message}");
        }
    }

    private async Task<Hub.IMessageStore> OpenSqliteAsync(CancellationToken cancellationToken)
    {
        try
        {
            return await Stores.Sqlite.SqliteMessageStore.OpenAsync(Database, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or Microsoft.Data.Sqlite.SqliteException)
        {
            throw new ServerConfigurationException($"Switchboard:Database: cannot open '{Database}': {ex.Message}");
        }
    }

    /// <summary>
    /// Loads settings. Later sources win: defaults; <c>appsettings.json</c> in the working directory (or
    /// <paramref name="configFile"/>), section "Switchboard"; environment variables (<c>Switchboard__Urls</c> or
    /// <c>SWITCHBOARD_URLS</c>); then <paramref name="overrides"/> (the command-line flags that were given).
    /// </summary>
    public static SwitchboardServerOptions Load(IReadOnlyDictionary<string, string?>? overrides = null, string? configFile = null)
    {
        if (configFile is not null && !File.Exists(configFile))
        {
            throw new ServerConfigurationException($"--config: file '{configFile}' does not exist.");
        }

        IConfigurationRoot sectioned = new ConfigurationBuilder()
            .AddJsonFile(Path.GetFullPath(configFile ?? "appsettings.json"), optional: configFile is null)
            .AddEnvironmentVariables()
            .Build();
        IConfigurationRoot flat = new ConfigurationBuilder()
            .AddEnvironmentVariables("SWITCHBOARD_")
            .AddInMemoryCollection(overrides ?? new Dictionary<string, string?>())
            .Build();
        string[] unknown = [.. UnknownKeys(sectioned.GetSection("Switchboard"), typeof(SwitchboardServerOptions), "Switchboard"),
            .. UnknownKeys(flat, typeof(SwitchboardServerOptions), "SWITCHBOARD_")];
        if (unknown.Length > 0)
        {
            // A misspelled key would otherwise be ignored silently: "Auth": {"Enabld": true} would leave authentication off.
            throw new ServerConfigurationException(string.Join(Environment.NewLine, unknown));
        }

        var options = new SwitchboardServerOptions();
        try
        {
            sectioned.GetSection("Switchboard").Bind(options);
            flat.Bind(options);
            options.Kestrel = sectioned.GetSection("Kestrel");
        }
        catch (InvalidOperationException ex)
        {
            throw new ServerConfigurationException(ex.Message.Replace("'", "", StringComparison.Ordinal));
        }

        return options;
    }

    /// <summary>Keys in <paramref name="section"/> that name no setting of <paramref name="type"/> (recursively), as messages.</summary>
    private static IEnumerable<string> UnknownKeys(IConfiguration section, Type type, string path)
    {
        foreach (IConfigurationSection child in section.GetChildren())
        {
            string name = path.EndsWith('_') ? path + child.Key.Replace(":", "__", StringComparison.Ordinal) : $"{path}:{child.Key}";
            System.Reflection.PropertyInfo? property = type.GetProperty(child.Key,
                System.Reflection.BindingFlags.Public | System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.IgnoreCase);
            if (property is null || !property.CanWrite || property.PropertyType == typeof(IConfiguration) || typeof(Delegate).IsAssignableFrom(property.PropertyType))
            {
                string[] known = [.. type.GetProperties().Where(p => p.CanWrite && p.PropertyType != typeof(IConfiguration) && !typeof(Delegate).IsAssignableFrom(p.PropertyType) && p.PropertyType != typeof(TimeProvider)).Select(p => p.Name)];
                yield return $"{name}: not a setting (misspelled?). The settings here are: {string.Join(", ", known)}.";
                continue;
            }

            Type t = property.PropertyType;
            if (t.IsGenericType && t.GetGenericTypeDefinition() == typeof(Dictionary<,>) && IsSettingsClass(t.GetGenericArguments()[1]))
            {
                foreach (IConfigurationSection entry in child.GetChildren())
                {
                    foreach (string problem in UnknownKeys(entry, t.GetGenericArguments()[1], $"{name}:{entry.Key}"))
                    {
                        yield return problem;
                    }
                }
            }
            else if (IsSettingsClass(t))
            {
                foreach (string problem in UnknownKeys(child, t, name))
                {
                    yield return problem;
                }
            }
        }
    }

    private static bool IsSettingsClass(Type t) =>
        t.IsClass && t != typeof(string) && !typeof(System.Collections.IEnumerable).IsAssignableFrom(t) && t != typeof(TimeProvider);

    /// <summary>Validates the settings; returns one message per problem, naming the setting.</summary>
    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Urls))
        {
            yield return "Switchboard:Urls: at least one address is required.";
        }

        foreach (string url in Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out Uri? u) || u.Scheme != "http")
            {
                yield return $"Switchboard:Urls: '{url}' is not a valid http:// address (e.g. http://127.0.0.1:8000).";
            }
        }

        if (HandshakeTimeout <= TimeSpan.Zero)
        {
            yield return "Switchboard:HandshakeTimeout must be positive.";
        }

        if (MaxConnections is <= 0)
        {
            yield return "Switchboard:MaxConnections must be positive (or unset for the default from the descriptor limit).";
        }

        if (MaxMessageSize <= 0)
        {
            yield return "Switchboard:MaxMessageSize must be positive.";
        }

        if (KeepAliveInterval < TimeSpan.Zero || KeepAliveTimeout <= TimeSpan.Zero)
        {
            yield return "Switchboard:KeepAliveInterval must be zero or positive and Switchboard:KeepAliveTimeout positive.";
        }

        if (CloseTimeout <= TimeSpan.Zero)
        {
            yield return "Switchboard:CloseTimeout must be positive.";
        }

        if (CompressionLevel is < 1 or > 9)
        {
            yield return $"Switchboard:CompressionLevel: {CompressionLevel} is not a zlib level; use 1 (fastest) to 9 (smallest).";
        }

        if (CompressionThreshold < 0)
        {
            yield return "Switchboard:CompressionThreshold must be zero or positive.";
        }

        if (Transport.ToLowerInvariant() is not ("switchboard" or "kestrel"))
        {
            yield return $"Switchboard:Transport: '{Transport}' is not a transport; use switchboard or kestrel.";
        }

        if (StoreFactory is null && Store.ToLowerInvariant() is not ("sqlite" or "memory" or "postgres"))
        {
            yield return $"Switchboard:Store: '{Store}' is not a store; use sqlite, postgres or memory.";
        }

        if (Store.Equals("postgres", StringComparison.OrdinalIgnoreCase) && string.IsNullOrWhiteSpace(Postgres))
        {
            yield return "Switchboard:Postgres: a connection string is required for the postgres store.";
        }

        if (Store.Equals("sqlite", StringComparison.OrdinalIgnoreCase) && string.IsNullOrWhiteSpace(Database))
        {
            yield return "Switchboard:Database: a file path is required for the sqlite store.";
        }

        if (NodeTimeout <= TimeSpan.Zero)
        {
            yield return "Switchboard:NodeTimeout must be positive.";
        }

        if (Broker.ToLowerInvariant() is not ("memory" or "redis"))
        {
            yield return $"Switchboard:Broker: '{Broker}' is not a broker; use memory (one server) or redis (several).";
        }

        if (Broker.Equals("redis", StringComparison.OrdinalIgnoreCase))
        {
            if (string.IsNullOrWhiteSpace(Redis))
            {
                yield return "Switchboard:Redis: the broker redis needs Redis's address (host:port, or several separated by ',').";
            }

            if (StoreFactory is null && !Store.Equals("postgres", StringComparison.OrdinalIgnoreCase))
            {
                yield return $"Switchboard:Broker: redis needs the postgres store (several servers must share one history; with '{Store}' each would keep its own, and offsets would clash).";
            }
        }

        if (Auth.Enabled && System.Text.Encoding.UTF8.GetByteCount(Auth.SigningKey ?? "") < 32)
        {
            yield return "Switchboard:Auth:SigningKey must be at least 32 bytes when Switchboard:Auth:Enabled is true.";
        }

        foreach (string origin in Auth.AllowedOrigins)
        {
            if (!Uri.TryCreate(origin, UriKind.Absolute, out Uri? o) || o.AbsolutePath != "/" || (o.Scheme != "http" && o.Scheme != "https"))
            {
                yield return $"Switchboard:Auth:AllowedOrigins: '{origin}' is not an origin like https://chat.example.com.";
            }
        }

        if (LogFormat.ToLowerInvariant() is not ("text" or "json"))
        {
            yield return $"Switchboard:LogFormat: '{LogFormat}' is not a log format; use text or json.";
        }

        if (RetentionInterval <= TimeSpan.Zero)
        {
            yield return "Switchboard:RetentionInterval must be positive.";
        }

        foreach (var (room, policy) in Hub.RoomRetention.Append(new KeyValuePair<string, Hub.RetentionPolicy>("(default)", Hub.Retention)))
        {
            if (policy.MaxCount is <= 0 || policy.MaxAge is { } age && age <= TimeSpan.Zero)
            {
                yield return $"Switchboard:Hub retention for {room}: MaxCount and MaxAge must be positive when set.";
            }
        }

        if (Hub.MaxTextBytes <= 0 || Hub.HistoryOnJoin < 0 || Hub.MaxHistoryPage <= 0)
        {
            yield return "Switchboard:Hub: MaxTextBytes and MaxHistoryPage must be positive, HistoryOnJoin zero or more.";
        }

        if (Hub.MaxCommandBytes <= 0)
        {
            yield return "Switchboard:Hub:MaxCommandBytes must be positive.";
        }

        if (Hub.PublishRateLimit < 0 || Hub.PublishBurst < 1)
        {
            yield return "Switchboard:Hub: PublishRateLimit must be zero (no limit) or more, PublishBurst at least 1.";
        }

        if (Hub.MaxPendingPublishes <= 0 || Hub.MaxPendingPublishBytes <= 0 || Hub.MaxHistoryBytes <= 0)
        {
            yield return "Switchboard:Hub: MaxPendingPublishes, MaxPendingPublishBytes and MaxHistoryBytes must be positive.";
        }

        if (Hub.NewRoomsPerConnectionPerMinute < 0 || Hub.NewRoomsPerMinute < 0)
        {
            yield return "Switchboard:Hub: NewRoomsPerConnectionPerMinute and NewRoomsPerMinute must be zero (no limit) or more.";
        }

        if (Hub.MaxRoomsPerConnection <= 0)
        {
            yield return "Switchboard:Hub:MaxRoomsPerConnection must be positive.";
        }

        if (Hub.MaxRooms < 0)
        {
            yield return "Switchboard:Hub:MaxRooms must be zero (no limit) or more.";
        }

        if (Hub.RecentCacheSize < 0 || Hub.RecentCacheBytes < 0 || Hub.IdleRoomRelease < TimeSpan.Zero)
        {
            yield return "Switchboard:Hub: RecentCacheSize, RecentCacheBytes and IdleRoomRelease must be zero or more.";
        }
    }
}

/// <summary>Invalid configuration: the server refuses to start.</summary>
public sealed class ServerConfigurationException(string message) : Exception(message);
