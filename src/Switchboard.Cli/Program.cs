using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Switchboard.Server;

var urls = new Option<string>("--urls") { Description = "Addresses to listen on, separated by ';' (default http://127.0.0.1:8000)" };
var store = new Option<string>("--store") { Description = "Where history is kept: sqlite (default), postgres or memory" };
var postgres = new Option<string>("--postgres") { Description = "PostgreSQL connection string (with --store postgres)" };
var database = new Option<string>("--db") { Description = "SQLite database file (default switchboard.db)" };
var handshakeTimeout = new Option<double?>("--handshake-timeout") { Description = "Seconds a client has to send its whole upgrade request (default 10)" };
var maxMessage = new Option<long?>("--max-message-size") { Description = "Largest WebSocket message accepted, in bytes (default 16777216)" };
var config = new Option<string>("--config") { Description = "A JSON settings file (section \"Switchboard\"); default ./appsettings.json if present" };

var serve = new Command("serve", "Run the Switchboard server: chat hub at /hub, seed chat at /ws, echo at /echo")
{
    urls, store, database, postgres, handshakeTimeout, maxMessage, config,
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
    Put("HandshakeTimeout", parse.GetValue(handshakeTimeout) is double s ? TimeSpan.FromSeconds(s).ToString() : null);
    Put("MaxMessageSize", parse.GetValue(maxMessage)?.ToString(System.Globalization.CultureInfo.InvariantCulture));
    try
    {
        SwitchboardServerOptions options = SwitchboardServerOptions.Load(overrides, parse.GetValue(config));
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
    catch (IOException ex)
    {
        Console.Error.WriteLine("switchboard: cannot start: " + ex.Message);
        return 1;
    }
});

var root = new RootCommand("Switchboard: real-time messaging over WebSockets") { serve };
return await root.Parse(args).InvokeAsync();
