using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Switchboard.Server;

var urls = new Option<string>("--urls") { Description = "Addresses to listen on, separated by ';' (default http://127.0.0.1:8000)" };
var store = new Option<string>("--store") { Description = "Where history is kept: sqlite (default), postgres or memory" };
var postgres = new Option<string>("--postgres") { Description = "PostgreSQL connection string (with --store postgres)" };
var database = new Option<string>("--db") { Description = "SQLite database file (default switchboard.db)" };
var handshakeTimeout = new Option<double?>("--handshake-timeout") { Description = "Seconds a client has to send its whole upgrade request (default 10)" };
var maxMessage = new Option<long?>("--max-message-size") { Description = "Largest WebSocket message accepted, in bytes (default 16777216)" };
var logFormat = new Option<string>("--log-format") { Description = "Log output: text (default) or json" };
var config = new Option<string>("--config") { Description = "A JSON settings file (section \"Switchboard\"); default ./appsettings.json if present" };
var noCompression = new Option<bool>("--no-compression") { Description = "Decline permessage-deflate (on by default for clients that offer it)" };
var broker = new Option<string>("--broker") { Description = "memory (default: one server) or redis (several servers sharing the postgres store)" };
var redis = new Option<string>("--redis") { Description = "Redis for --broker redis: host:port, or several cluster nodes separated by ','" };
var compressionLevel = new Option<int?>("--compression-level") { Description = "permessage-deflate zlib level, 1 (fastest) to 9 (smallest); default 6" };

var serve = new Command("serve", "Run the Switchboard server: chat hub at /hub, seed chat at /ws, echo at /echo")
{
    urls, store, database, postgres, handshakeTimeout, maxMessage, logFormat, config, noCompression, compressionLevel, broker, redis,
};
serve.SetAction(async (parse, cancellationToken) =>
{
    var overrides = new Dictionary<string, string?>();
    void Put(string key, string? value)
    {
        if (value is not null)
        {
            overrides[key] = value;
        }
    }

    Put("Urls", parse.GetValue(urls));
    Put("Store", parse.GetValue(store));
    Put("Database", parse.GetValue(database));
    Put("Postgres", parse.GetValue(postgres));
    Put("Broker", parse.GetValue(broker));
    Put("Redis", parse.GetValue(redis));
    Put("LogFormat", parse.GetValue(logFormat));
    Put("HandshakeTimeout", parse.GetValue(handshakeTimeout) is double s ? TimeSpan.FromSeconds(s).ToString() : null);
    Put("MaxMessageSize", parse.GetValue(maxMessage)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
    Put("Compression", parse.GetValue(noCompression) ? "false" : null);
    Put("CompressionLevel", parse.GetValue(compressionLevel)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
    try
    {
        SwitchboardServerOptions options = SwitchboardServerOptions.Load(overrides, parse.GetValue(config));
        if (options.InlineIo)
        {
            Switchboard.Cli.InlineCompletions.EnableUnlessSet(); // no socket exists yet
        }

        var app = SwitchboardServer.Build(options);
        await app.StartAsync(cancellationToken);
        await app.WaitForShutdownAsync(cancellationToken);
        return 0;
    }
    catch (ServerConfigurationException ex)
    {
        Console.Error.WriteLine("switchboard: invalid configuration: " + ex.Message);
        return 2;
    }
    catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
    {
        Console.Error.WriteLine($"switchboard: cannot start: {ex.Message.TrimEnd('.')} (is another server running there?); choose another address with --urls.");
        return 1;
    }
    catch (IOException ex)
    {
        Console.Error.WriteLine("switchboard: cannot start: " + ex.Message);
        return 1;
    }
});

var subject = new Option<string>("--sub") { Description = "The user id (JWT subject)", Required = true };
var displayName = new Option<string>("--name") { Description = "The display name" };
var ttl = new Option<double>("--ttl") { Description = "Lifetime in seconds (default 3600)", DefaultValueFactory = _ => 3600 };
var joinRooms = new Option<string[]>("--join") { Description = "Rooms the token may join (patterns like team-*); default: all", AllowMultipleArgumentsPerToken = true };
var publishRooms = new Option<string[]>("--publish") { Description = "Rooms the token may publish to; default: all", AllowMultipleArgumentsPerToken = true };
var key = new Option<string>("--key") { Description = "Signing key (default: Switchboard:Auth:SigningKey from the configuration)" };
var tokenConfig = new Option<string>("--config") { Description = "A JSON settings file (section \"Switchboard\")" };
var token = new Command("token", "Issue a JWT for development (HS256, signed with the server's key)")
{
    subject, displayName, ttl, joinRooms, publishRooms, key, tokenConfig,
};
token.SetAction(parse =>
{
    try
    {
        SwitchboardServerOptions options = SwitchboardServerOptions.Load(null, parse.GetValue(tokenConfig));
        AuthOptions auth = options.Auth;
        auth.SigningKey = parse.GetValue(key) ?? auth.SigningKey;
        if (System.Text.Encoding.UTF8.GetByteCount(auth.SigningKey ?? "") < 32)
        {
            Console.Error.WriteLine("switchboard: a signing key of at least 32 bytes is required (--key, or Switchboard:Auth:SigningKey)");
            return 2;
        }

        string[]? join = parse.GetValue(joinRooms);
        string[]? publish = parse.GetValue(publishRooms);
        Console.WriteLine(new TokenService(auth).Issue(parse.GetValue(subject)!, parse.GetValue(displayName), TimeSpan.FromSeconds(parse.GetValue(ttl)),
            join is { Length: > 0 } ? join : null, publish is { Length: > 0 } ? publish : null));
        return 0;
    }
    catch (ServerConfigurationException ex)
    {
        Console.Error.WriteLine("switchboard: invalid configuration: " + ex.Message);
        return 2;
    }
});

var root = new RootCommand("Switchboard: real-time messaging over WebSockets") 
{
    serve, token, Switchboard.Cli.ChatCommand.Create(), Switchboard.Cli.ConnectCommand.Create(), Switchboard.Cli.HubCommands.Send(), Switchboard.Cli.HubCommands.Listen(),
    Switchboard.Cli.Bench.BenchCommand.Create(),
};
return await root.Parse(args).InvokeAsync();
