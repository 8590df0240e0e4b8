using System.CommandLine;
using Microsoft.Extensions.Hosting;
using Switchboard.Server;

var urls = new Option<string>("--urls")
{
    Description = "Addresses to listen on, separated by ';'",
    DefaultValueFactory = _ => Environment.GetEnvironmentVariable("SWITCHBOARD_URLS") ?? SwitchboardServerOptions.DefaultUrls,
};
var handshakeTimeout = new Option<double>("--handshake-timeout")
{
    Description = "Seconds a client has to send its whole upgrade request",
    DefaultValueFactory = _ => 10,
};
var maxMessage = new Option<long>("--max-message-size")
{
    Description = "Largest message accepted, in bytes",
    DefaultValueFactory = _ => 16 * 1024 * 1024,
};

var serve = new Command("serve", "Run the Switchboard server (WebSocket echo at /echo)") { urls, handshakeTimeout, maxMessage };
serve.SetAction(async (parse, cancellationToken) =>
{
    var options = new SwitchboardServerOptions
    {
        Urls = parse.GetValue(urls)!,
        HandshakeTimeout = TimeSpan.FromSeconds(parse.GetValue(handshakeTimeout)),
        MaxMessageSize = parse.GetValue(maxMessage),
    };
    try
    {
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
