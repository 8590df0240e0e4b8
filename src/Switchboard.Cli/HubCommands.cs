using System.CommandLine;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Text.Json;
using Switchboard.Client;
using Switchboard.Hub.Messages;
using Switchboard.WebSockets;

namespace Switchboard.Cli;

/// <summary>`switchboard send` and `switchboard listen`: one-shot publish and a pipe-friendly subscriber.</summary>
internal static class HubCommands
{
    private static readonly JsonSerializerOptions Json = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static (Option<string> Name, Option<string> Token, Option<bool> Insecure) Identity() => (
        new Option<string>("--name") { Description = "Display name (without authentication)", DefaultValueFactory = _ => Environment.UserName },
        new Option<string>("--token") { Description = "JWT when the server requires one (default: $SWITCHBOARD_TOKEN)" },
        new Option<bool>("--insecure") { Description = "wss://: accept any server certificate (development only)" });

    private static SwitchboardClientOptions Options(ParseResult parse, (Option<string> Name, Option<string> Token, Option<bool> Insecure) id, ReconnectPolicy reconnect) => new()
    {
        Name = parse.GetValue(id.Name)!,
        Token = parse.GetValue(id.Token) ?? Environment.GetEnvironmentVariable("SWITCHBOARD_TOKEN"),
        Reconnect = reconnect,
        WebSocket = new WebSocketClientOptions { DangerousAcceptAnyServerCertificate = parse.GetValue(id.Insecure), ConnectTimeout = TimeSpan.FromSeconds(10) },
    };

    internal static bool TryUrl(string? text, out Uri url)
    {
        url = null!;
        if (Uri.TryCreate(text, UriKind.Absolute, out Uri? u) && u.Scheme is "ws" or "wss")
        {
            url = u;
            return true;
        }

        Console.Error.WriteLine($"switchboard: '{text}' is not a ws:// or wss:// address.");
        return false;
    }

    private static int Report(Exception ex, string url)
    {
        Console.Error.WriteLine("switchboard: " + ex switch
        {
            HubErrorException h => $"refused ({h.Code}): {h.Message}",
            NotAHubException => ex.Message,
            WebSocketHandshakeException h => $"{url} refused the connection: {h.Message}",
            SocketException or TimeoutException or AuthenticationException or IOException => $"cannot reach {url}: {ex.Message}",
            _ => ex.Message,
        });
        return 1;
    }

    public static Command Send()
    {
        var url = new Argument<string>("url") { Description = "The server (ws://host:8000) or its /hub endpoint" };
        var text = new Argument<string>("text") { Description = "The message" };
        var room = new Option<string>("--room") { Description = "The room", Required = true };
        var id = new Option<string>("--id") { Description = "Message id (a retry with the same id is stored once)" };
        var apiKey = new Option<string>("--api-key") { Description = "Publish through the server API (HTTP, no WebSocket) with this key (default: $SWITCHBOARD_API_KEY)" };
        var identity = Identity();
        var command = new Command("send", "Publish one message and wait until the server has stored it (exit 0 only then)")
        {
            url, text, room, id, apiKey, identity.Name, identity.Token, identity.Insecure,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (!TryUrl(parse.GetValue(url), out Uri target))
            {
                return 2;
            }

            if ((parse.GetValue(apiKey) ?? Environment.GetEnvironmentVariable("SWITCHBOARD_API_KEY")) is { Length: > 0 } key)
            {
                return await SendThroughApiAsync(target, key, parse.GetValue(room)!, parse.GetValue(text)!, parse.GetValue(id), parse.GetResult(identity.Name) is { Implicit: false } ? parse.GetValue(identity.Name) : null, parse.GetValue(identity.Insecure), ct);
            }

            try
            {
                await using SwitchboardClient client = await SwitchboardClient.ConnectAsync(target, Options(parse, identity, ReconnectPolicy.None), ct);
                PublishResult r = await client.PublishAsync(parse.GetValue(room)!, parse.GetValue(text)!, parse.GetValue(id), ct).WaitAsync(TimeSpan.FromSeconds(30), ct);
                Console.WriteLine(JsonSerializer.Serialize(new { room = r.Room, offset = r.Offset, id = r.Id, duplicate = r.Duplicate }, Json));
                return 0;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                return Report(ex, Redaction.Redact(target));
            }
        });
        return command;
    }

    /// <summary>
    /// One POST to the server API (<c>/api/rooms/{room}/messages</c>): for a backend's one-shot notification there is no
    /// WebSocket to open. Prints the same line as a WebSocket send.
    /// </summary>
    private static async Task<int> SendThroughApiAsync(Uri target, string key, string room, string text, string? id, string? name, bool insecure, CancellationToken ct)
    {
        var http = new UriBuilder(target) { Scheme = target.Scheme == "wss" ? "https" : "http", Path = "/api/rooms/" + Uri.EscapeDataString(room) + "/messages", Query = "" }.Uri;
        id ??= MessageIds.New(DateTimeOffset.UtcNow);
        using var handler = new HttpClientHandler();
        if (insecure)
        {
            handler.ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator;
        }

        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(30) };
        using var request = new HttpRequestMessage(HttpMethod.Post, http)
        {
            Content = System.Net.Http.Json.JsonContent.Create(new { text, id, name }),
        };
        request.Headers.Add("X-Api-Key", key);
        try
        {
            using HttpResponseMessage response = await client.SendAsync(request, ct);
            string body = await response.Content.ReadAsStringAsync(ct);
            if (!response.IsSuccessStatusCode)
            {
                string detail = body;
                try
                {
                    using JsonDocument problem = JsonDocument.Parse(body);
                    detail = problem.RootElement.TryGetProperty("detail", out JsonElement d) ? d.GetString() ?? body : body;
                }
                catch (JsonException)
                {
                    // not a ProblemDetails body: show it as it is
                }

                Console.Error.WriteLine($"switchboard: {http.GetLeftPart(UriPartial.Path)} answered {(int)response.StatusCode}: {(response.StatusCode == System.Net.HttpStatusCode.NotFound && detail.Length == 0 ? "the server API is off (no Switchboard:Api:Keys)" : detail)}");
                return 1;
            }

            using JsonDocument ok = JsonDocument.Parse(body);
            Console.WriteLine(JsonSerializer.Serialize(new { room, offset = ok.RootElement.GetProperty("offset").GetInt64(), id, duplicate = ok.RootElement.GetProperty("duplicate").GetBoolean() }, Json));
            return 0;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException && !ct.IsCancellationRequested)
        {
            Console.Error.WriteLine($"switchboard: cannot reach {http.GetLeftPart(UriPartial.Authority)}: {ex.Message}");
            return 1;
        }
    }

    public static Command Listen()
    {
        var url = new Argument<string>("url") { Description = "The server (ws://host:8000) or its /hub endpoint" };
        var room = new Option<string>("--room") { Description = "The room", Required = true };
        var since = new Option<long?>("--since") { Description = "Start after this offset (default: recent history)" };
        var count = new Option<int?>("--count") { Description = "Exit after this many messages" };
        var identity = Identity();
        var command = new Command("listen", "Print a room's messages as JSON lines (reconnects and resumes by itself)")
        {
            url, room, since, count, identity.Name, identity.Token, identity.Insecure,
        };
        command.SetAction(async (parse, ct) =>
        {
            if (!TryUrl(parse.GetValue(url), out Uri target))
            {
                return 2;
            }

            try
            {
                await using SwitchboardClient client = await SwitchboardClient.ConnectAsync(target, Options(parse, identity, new ReconnectPolicy()), ct);
                // Connection trouble is worth a line; the close that follows success (--count reached) is not.
                client.StateChanged += s =>
                {
                    if (s != ConnectionState.Closed)
                    {
                        Console.Error.WriteLine($"switchboard: {s.ToString().ToLowerInvariant()}");
                    }
                };
                await client.JoinAsync(parse.GetValue(room)!, parse.GetValue(since), ct);
                int left = parse.GetValue(count) ?? int.MaxValue;
                await foreach (HubMessage m in client.Messages(ct))
                {
                    Console.Out.WriteLine(JsonSerializer.Serialize(new { room = m.Room, offset = m.Offset, id = m.Id, from = m.From, name = m.Name, text = m.Text, time = m.Time }, Json));
                    Console.Out.Flush();
                    if (--left == 0)
                    {
                        break;
                    }
                }

                return 0;
            }
            catch (OperationCanceledException)
            {
                return 0; // Ctrl-C
            }
            catch (Exception ex)
            {
                return Report(ex, Redaction.Redact(target));
            }
        });
        return command;
    }
}
