namespace Switchboard.Server;

/// <summary>Server settings. Each has a command-line flag and a configuration key (Switchboard:Xxx).</summary>
public sealed class SwitchboardServerOptions
{
    /// <summary>The default listen address: loopback, port 8000 (what the classic chat page expects).</summary>
    public const string DefaultUrls = "http://127.0.0.1:8000";

    /// <summary>Addresses to listen on, separated by ';'.</summary>
    public string Urls { get; set; } = DefaultUrls;

    /// <summary>Opening handshake timeout: a client must send its whole upgrade request within this time.</summary>
    public TimeSpan HandshakeTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Largest message accepted (bytes).</summary>
    public long MaxMessageSize { get; set; } = 16 * 1024 * 1024;

    /// <summary>Keepalive ping interval; zero disables keepalive.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Keepalive pong timeout.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Closing handshake timeout.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Hub settings (rooms, limits, retention).</summary>
    public Hub.HubOptions Hub { get; set; } = new();

    /// <summary>Creates the message store. Default: in memory (the SQLite store is configured with <see cref="StoreFactory"/>).</summary>
    public Func<Hub.IMessageStore>? StoreFactory { get; set; }

    internal Hub.IMessageStore CreateStore() => StoreFactory?.Invoke() ?? new Hub.InMemoryMessageStore();

    /// <summary>Validates the settings; returns one message per problem, naming the setting.</summary>
    public IEnumerable<string> Validate()
    {
        foreach (string url in Urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!Uri.TryCreate(url.Replace("*", "0.0.0.0", StringComparison.Ordinal).Replace("+", "0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out Uri? u) || u.Scheme != "http")
            {
                yield return $"Switchboard:Urls: '{url}' is not a valid http:// address (e.g. http://127.0.0.1:8000).";
            }
        }

        if (string.IsNullOrWhiteSpace(Urls))
        {
            yield return "Switchboard:Urls: at least one address is required.";
        }

        if (HandshakeTimeout <= TimeSpan.Zero)
        {
            yield return "Switchboard:HandshakeTimeout must be positive.";
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
    }
}

/// <summary>Invalid configuration: the server refuses to start.</summary>
public sealed class ServerConfigurationException(string message) : Exception(message);
