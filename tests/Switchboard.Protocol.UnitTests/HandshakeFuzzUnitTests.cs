using System.Buffers;
using System.Text;
using Switchboard.Protocol.Extensions;
using Switchboard.Protocol.Handshake;
using Switchboard.Tests.Shared;

namespace Switchboard.Protocol.UnitTests;

/// <summary>
/// Damaged opening handshakes, requests and responses: the head parser and both sides' checks never throw, the
/// parser reaches the same verdict however the bytes are split, and whatever the server's check accepts can be
/// answered.
/// </summary>
public class HandshakeFuzzUnitTests
{
    private static readonly string[] Extensions =
    [
        "permessage-deflate", "permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=10",
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover", "permessage-deflate; client_max_window_bits=7",
        "permessage-deflate; server_max_window_bits", "permessage-deflate; x=1, permessage-deflate", "x-webkit-deflate-frame",
        "permessage-deflate; client_max_window_bits=\"15\"", "permessage-deflate;;", ", ,", "permessage-deflate; server_max_window_bits=08",
    ];

    private static byte[] Request(Random random)
    {
        var lines = new List<string>
        {
            random.Next(10) == 0 ? "POST /echo HTTP/1.1" : $"GET /echo{(random.Next(2) == 0 ? "?a=1&b=%20" : "")} HTTP/1.1",
            "Host: 127.0.0.1:8000",
            "Upgrade: websocket",
            "Connection: keep-alive, Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        };
        if (random.Next(2) == 0)
        {
            lines.Add("Sec-WebSocket-Extensions: " + Extensions[random.Next(Extensions.Length)]);
        }

        if (random.Next(2) == 0)
        {
            lines.Add("Sec-WebSocket-Protocol: " + (random.Next(2) == 0 ? "chat, superchat" : "probe.v1,,x y"));
        }

        if (random.Next(3) == 0)
        {
            lines.Add("Origin: http://127.0.0.1:8000");
        }

        if (random.Next(4) == 0)
        {
            lines.RemoveAt(1 + random.Next(lines.Count - 1)); // a required header missing
        }

        var bytes = new List<byte>(Encoding.ASCII.GetBytes(string.Join("\r\n", lines) + "\r\n\r\n"));
        ByteMutations.Apply(bytes, random, maxMutations: 3);
        return [.. bytes];
    }

    [Fact]
    public void Damaged_requests_never_throw_and_parse_the_same_at_every_split()
    {
        var random = new Random(6455_7692);
        var withDeflate = new ServerHandshakeOptions { SubProtocols = ["chat"], Compression = new DeflateServerPolicy() };
        var plain = new ServerHandshakeOptions();
        int accepted = 0, refused = 0;
        int n = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_N"), out int k) ? k : 3_000;
        for (int i = 0; i < n; i++)
        {
            byte[] input = Request(random);
            var whole = new SequenceReader<byte>(new ReadOnlySequence<byte>(input));
            HttpHeadStatus status = HttpHeadParser.TryParseRequest(ref whole, out HttpRequestHead? head);
            int cut = random.Next(input.Length + 1);
            var split = new SequenceReader<byte>(TestSequence.Create(input[..cut], input[cut..]));
            Assert.Equal(status, HttpHeadParser.TryParseRequest(ref split, out _));
            Assert.Equal(whole.Consumed, split.Consumed);
            if (status != HttpHeadStatus.Complete)
            {
                refused++;
                continue;
            }

            foreach (ServerHandshakeOptions options in new[] { withDeflate, plain })
            {
                ServerHandshakeResult result = ServerHandshake.Validate(head!.Method, head.Version, head.Headers, options);
                if (result.IsAccepted)
                {
                    accepted++;
                    string response = Encoding.ASCII.GetString(ServerHandshake.FormatResponse(result));
                    Assert.StartsWith("HTTP/1.1 101 Switching Protocols\r\n", response);
                    Assert.EndsWith("\r\n\r\n", response);
                }
                else
                {
                    refused++;
                }
            }
        }

        Assert.True(accepted > n / 4 && refused > n / 10, $"{accepted} accepted, {refused} refused");
    }

    [Fact]
    public void Damaged_responses_never_throw_in_the_client_check()
    {
        var random = new Random(7692_6455);
        int accepted = 0, refused = 0;
        int n = int.TryParse(Environment.GetEnvironmentVariable("FUZZ_N"), out int k) ? k : 3_000;
        for (int i = 0; i < n; i++)
        {
            var handshake = new ClientHandshake(new Uri("ws://127.0.0.1:8000/echo"),
                new ClientHandshakeOptions { SubProtocols = ["chat"], OfferCompression = random.Next(2) == 0 }, new FixedRandom(i));
            string request = Encoding.ASCII.GetString(handshake.BuildRequest());
            string key = request.Split("\r\n").First(l => l.StartsWith("Sec-WebSocket-Key: ", StringComparison.Ordinal))[19..];
            var lines = new List<string>
            {
                random.Next(10) == 0 ? "HTTP/1.1 200 OK" : "HTTP/1.1 101 Switching Protocols",
                "Upgrade: websocket",
                "Connection: Upgrade",
                "Sec-WebSocket-Accept: " + WebSocketAccept.Compute(key),
            };
            if (random.Next(2) == 0)
            {
                lines.Add("Sec-WebSocket-Extensions: " + Extensions[random.Next(Extensions.Length)]);
            }

            if (random.Next(3) == 0)
            {
                lines.Add("Sec-WebSocket-Protocol: " + (random.Next(2) == 0 ? "chat" : "chat, other"));
            }

            var bytes = new List<byte>(Encoding.ASCII.GetBytes(string.Join("\r\n", lines) + "\r\n\r\n"));
            ByteMutations.Apply(bytes, random, maxMutations: 2);
            var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>([.. bytes]));
            if (HttpHeadParser.TryParseResponse(ref reader, out HttpResponseHead? head) != HttpHeadStatus.Complete)
            {
                refused++;
                continue;
            }

            ClientHandshakeResult result = handshake.Validate(head!);
            if (result.Error == ClientHandshakeError.None)
            {
                accepted++;
            }
            else
            {
                refused++;
                Assert.False(string.IsNullOrEmpty(result.Message));
            }
        }

        Assert.True(accepted > n / 10 && refused > n / 10, $"{accepted} accepted, {refused} refused");
    }

    private sealed class FixedRandom(int seed) : IWebSocketRandom
    {
        private readonly Random _random = new(seed);

        public void Fill(Span<byte> destination) => _random.NextBytes(destination);
    }
}
