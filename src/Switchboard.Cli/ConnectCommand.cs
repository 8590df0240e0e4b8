using System.CommandLine;
using System.Net.Sockets;
using System.Security.Authentication;
using Switchboard.Protocol;
using Switchboard.WebSockets;

namespace Switchboard.Cli;

/// <summary>
/// `switchboard connect URL`: a generic WebSocket client for any server (like wscat). Each line typed (or piped)
/// is sent as a message; every message that arrives is printed on its own line, while you type. When input ends
/// the connection is closed with --close (default 1000). Status goes to stderr, messages to stdout.
/// </summary>
internal static class ConnectCommand
{
    public static Command Create()
    {
        var url = new Argument<string>("url") { Description = "ws:// or wss:// address" };
        var subprotocols = new Option<string[]>("--subprotocol") { Description = "Subprotocol to offer (repeatable)", AllowMultipleArgumentsPerToken = true };
        var headers = new Option<string[]>("--header", "-H") { Description = "Extra request header, \"Name: value\" (repeatable)" };
        var binaryFormat = new Option<string>("--binary-format") { Description = "How binary messages are printed and (with --send-binary) read: hex or base64", DefaultValueFactory = _ => "hex" };
        var sendBinary = new Option<bool>("--send-binary") { Description = "Send each input line as a binary message, decoded with --binary-format" };
        var closeCode = new Option<int>("--close") { Description = "Close code to send when input ends", DefaultValueFactory = _ => 1000 };
        var wait = new Option<double?>("--wait", "-w")
        {
            Description = "After input ends, keep receiving until the server has been quiet this many seconds (or closes), then close. " +
                          "Default: 2 when input is piped (replies still arrive), 0 when typed (Ctrl-D means done)",
        };
        var insecure = new Option<bool>("--insecure") { Description = "wss://: accept any server certificate (development only)" };
        var timeout = new Option<double>("--connect-timeout") { Description = "Seconds allowed for connecting", DefaultValueFactory = _ => 10 };
        var deflate = new Option<bool>("--deflate") { Description = "Offer permessage-deflate (compression, RFC 7692)" };
        var command = new Command("connect", "Connect to any WebSocket server: send lines, print what arrives")
        {
            url, subprotocols, headers, binaryFormat, sendBinary, closeCode, wait, insecure, timeout, deflate,
        };

        command.SetAction(async (parse, ct) =>
        {
            string format = parse.GetValue(binaryFormat)!.ToLowerInvariant();
            if (format is not ("hex" or "base64"))
            {
                return Fail("--binary-format must be hex or base64.", 2);
            }

            int code = parse.GetValue(closeCode);
            if (!WebSocketCloseCode.IsValidOnWire(code))
            {
                return Fail($"--close {code} is not a close code that may be sent (1000-1003, 1007-1014, 3000-4999).", 2);
            }

            var headerList = new List<KeyValuePair<string, string>>();
            foreach (string h in parse.GetValue(headers) ?? [])
            {
                int colon = h.IndexOf(':', StringComparison.Ordinal);
                if (colon <= 0)
                {
                    return Fail($"--header '{h}' is not \"Name: value\".", 2);
                }

                headerList.Add(new(h[..colon].Trim(), h[(colon + 1)..].Trim()));
            }

            if (!HubCommands.TryUrl(parse.GetValue(url), out Uri target))
            {
                return 2;
            }

            var printer = new Printer(format);
            WebSocketConnection connection;
            try
            {
                connection = await WebSocketClient.ConnectAsync(target, new WebSocketClientOptions
                {
                    SubProtocols = parse.GetValue(subprotocols) ?? [],
                    Headers = headerList,
                    Handler = printer,
                    DangerousAcceptAnyServerCertificate = parse.GetValue(insecure),
                    ConnectTimeout = TimeSpan.FromSeconds(parse.GetValue(timeout)),
                    Connection = new WebSocketConnectionOptions { MaxMessageSize = 64L * 1024 * 1024 },
                    Compression = parse.GetValue(deflate),
                }, ct);
            }
            catch (Exception ex) when (ex is SocketException or TimeoutException or AuthenticationException or IOException or WebSocketHandshakeException or ArgumentException)
            {
                return Fail(ex switch
                {
                    WebSocketHandshakeException h => $"{Redaction.Redact(target)} refused the WebSocket handshake: {h.Message}",
                    _ => $"cannot connect to {Redaction.Redact(target)}: {ex.Message}",
                }, 1);
            }

            Console.Error.WriteLine($"connected to {Redaction.Redact(target)}" + (connection.SubProtocol is null ? "" : $" (subprotocol {connection.SubProtocol})")
                + (connection.Compression is null ? "" : $" ({connection.Compression.ToResponseHeader()})"));
            // Console.In reads synchronously; a background reader keeps the loop free to notice the server closing.
            static Task<string?> ReadLine() => Task.Factory.StartNew(Console.In.ReadLine, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
            Task<string?> nextLine = ReadLine();
            while (true)
            {
                Task finished = await Task.WhenAny(nextLine, connection.Completion);
                if (finished == connection.Completion)
                {
                    break;
                }

                string? line = await nextLine;
                if (line is null)
                {
                    double quiet = parse.GetValue(wait) ?? (Console.IsInputRedirected ? 2 : 0);
                    while (quiet > 0 && !connection.Completion.IsCompleted)
                    {
                        // Until a whole quiet period passes with nothing received (each message starts the period again).
                        long seen = printer.Received;
                        await Task.WhenAny(Task.Delay(TimeSpan.FromSeconds(quiet), ct), connection.Completion);
                        if (printer.Received == seen)
                        {
                            break;
                        }
                    }

                    connection.Close((ushort)code);
                    break;
                }

                if (parse.GetValue(sendBinary))
                {
                    byte[] bytes;
                    try
                    {
                        bytes = format == "hex" ? Convert.FromHexString(line.Trim()) : Convert.FromBase64String(line.Trim());
                    }
                    catch (FormatException)
                    {
                        Console.Error.WriteLine($"switchboard: not {format}: {line}");
                        nextLine = ReadLine();
                        continue;
                    }

                    connection.Send(MessageType.Binary, bytes);
                }
                else
                {
                    connection.SendText(line);
                }

                nextLine = ReadLine();
            }

            WebSocketCloseStatus status = await connection.Completion;
            Console.Error.WriteLine($"closed {status.Code}{(status.Reason.Length > 0 ? " " + status.Reason : "")}{(status.WasClean ? "" : " (not clean)")}");
            return status.WasClean ? 0 : 1;
        });
        return command;
    }

    private static int Fail(string message, int code)
    {
        Console.Error.WriteLine("switchboard: " + message);
        return code;
    }

    /// <summary>Prints every message on its own line as it arrives (text as is, binary as hex or base64).</summary>
    private sealed class Printer(string format) : WebSocketHandler
    {
        private readonly object _lock = new();
        private long _received;

        /// <summary>Messages received so far.</summary>
        public long Received => Interlocked.Read(ref _received);

        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            string line = message.Type == MessageType.Text ? message.GetText()
                : format == "hex" ? Convert.ToHexString(message.ToArray()).ToLowerInvariant() : Convert.ToBase64String(message.ToArray());
            lock (_lock)
            {
                Console.Out.WriteLine(line);
                Console.Out.Flush();
            }

            Interlocked.Increment(ref _received);
            return ValueTask.CompletedTask;
        }
    }
}
