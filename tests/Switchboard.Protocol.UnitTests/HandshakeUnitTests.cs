using System.Buffers;
using System.Text;
using Switchboard.Protocol.Handshake;

namespace Switchboard.Protocol.UnitTests;

public class ServerHandshakeUnitTests
{
    private static HttpHeaderList Headers(params string[] lines)
    {
        var h = new HttpHeaderList();
        foreach (string l in lines)
        {
            int c = l.IndexOf(':');
            h.Add(l[..c], l[(c + 1)..].Trim());
        }

        return h;
    }

    private static readonly string[] Good =
    [
        "Host: server.example.com", "Upgrade: websocket", "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13",
    ];

    private static string[] With(string name, string? value) =>
        [.. Good.Where(l => !l.StartsWith(name + ":", StringComparison.OrdinalIgnoreCase)), .. value is null ? Array.Empty<string>() : [$"{name}: {value}"]];

    [Fact]
    public void Rfc_1_3_accept_key() =>
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", WebSocketAccept.Compute("dGhlIHNhbXBsZSBub25jZQ=="));

    [Fact]
    public void Accepts_a_valid_request_and_answers_101()
    {
        var r = ServerHandshake.Validate("GET", "HTTP/1.1", Headers(Good), new());
        Assert.True(r.IsAccepted);
        Assert.Equal(101, r.StatusCode);
        Assert.Equal("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", r.AcceptKey);
        Assert.Contains(new KeyValuePair<string, string>("Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), r.ResponseHeaders);
        Assert.Null(r.SubProtocol);
    }

    [Fact]
    public void Upgrade_and_connection_are_case_insensitive_token_lists()
    {
        var r = ServerHandshake.Validate("GET", "HTTP/1.1", Headers([.. With("Upgrade", "foo, WebSocket"), "Connection: keep-alive, UPGRADE"]), new());
        Assert.True(r.IsAccepted, r.Message);
    }

    [Theory]
    [InlineData("POST", "HTTP/1.1", null, null, HandshakeRejection.MethodNotGet, 405)]
    [InlineData("GET", "HTTP/1.0", null, null, HandshakeRejection.HttpVersionTooOld, 400)]
    [InlineData("GET", "HTTP/1.1", "Host", null, HandshakeRejection.MissingHost, 400)]
    [InlineData("GET", "HTTP/1.1", "Upgrade", null, HandshakeRejection.NotWebSocketRequest, 426)]
    [InlineData("GET", "HTTP/1.1", "Upgrade", "h2c", HandshakeRejection.InvalidUpgradeHeader, 400)]
    [InlineData("GET", "HTTP/1.1", "Connection", "keep-alive", HandshakeRejection.InvalidConnectionHeader, 400)]
    [InlineData("GET", "HTTP/1.1", "Connection", null, HandshakeRejection.InvalidConnectionHeader, 400)]
    [InlineData("GET", "HTTP/1.1", "Sec-WebSocket-Key", null, HandshakeRejection.InvalidKey, 400)]
    [InlineData("GET", "HTTP/1.1", "Sec-WebSocket-Key", "not base64!", HandshakeRejection.InvalidKey, 400)]
    [InlineData("GET", "HTTP/1.1", "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAAAAAAAAA=", HandshakeRejection.InvalidKey, 400)] // 20 bytes
    [InlineData("GET", "HTTP/1.1", "Sec-WebSocket-Key", "AAAAAAAAAAAAAAAAAAAA", HandshakeRejection.InvalidKey, 400)] // 15 bytes
    [InlineData("GET", "HTTP/1.1", "Sec-WebSocket-Version", "8", HandshakeRejection.UnsupportedVersion, 426)]
    [InlineData("GET", "HTTP/1.1", "Sec-WebSocket-Version", null, HandshakeRejection.UnsupportedVersion, 426)]
    [InlineData("GET", "HTTP/2.0", null, null, HandshakeRejection.HttpVersionNotSupported, 505)]
    [InlineData("GET", "HTTP/2", null, null, HandshakeRejection.HttpVersionNotSupported, 505)]
    [InlineData("GET", "HTTP/3.0", null, null, HandshakeRejection.HttpVersionNotSupported, 505)]
    [InlineData("GET", "HTTP/0.9", null, null, HandshakeRejection.HttpVersionTooOld, 400)]
    [InlineData("GET", "HTTP/1.1", "Host", "a.example, b.example", HandshakeRejection.DuplicateHost, 400)] // two Host fields, as joined by the header list
    public void Refuses_bad_requests_with_a_reason_and_status(string method, string version, string? header, string? value, HandshakeRejection reason, int status)
    {
        string[] lines = header is null ? Good : With(header, value);
        var r = ServerHandshake.Validate(method, version, Headers(lines), new());
        Assert.False(r.IsAccepted);
        Assert.Equal(reason, r.Rejection);
        Assert.Equal(status, r.StatusCode);
        Assert.False(string.IsNullOrEmpty(r.Message));
    }

    [Fact]
    public void Transfer_encoding_with_content_length_is_refused()
    {
        var r = ServerHandshake.Validate("GET", "HTTP/1.1", Headers([.. Good, "Transfer-Encoding: chunked", "Content-Length: 5"]), new());
        Assert.Equal((HandshakeRejection.AmbiguousMessageLength, 400), (r.Rejection, r.StatusCode));
        Assert.True(ServerHandshake.Validate("GET", "HTTP/1.1", Headers([.. Good, "Content-Length: 0"]), new()).IsAccepted);
    }

    [Fact]
    public void Unsupported_version_answers_with_the_supported_version()
    {
        var r = ServerHandshake.Validate("GET", "HTTP/1.1", Headers(With("Sec-WebSocket-Version", "8")), new());
        Assert.Contains(new KeyValuePair<string, string>("Sec-WebSocket-Version", "13"), r.ResponseHeaders);
        string raw = Encoding.UTF8.GetString(ServerHandshake.FormatResponse(r));
        Assert.StartsWith("HTTP/1.1 426 Upgrade Required\r\n", raw);
        Assert.Contains("\r\nSec-WebSocket-Version: 13\r\n", raw);
    }

    [Fact]
    public void Origin_policy_hook_decides()
    {
        var opts = new ServerHandshakeOptions { OriginPolicy = o => o == "https://good.example" };
        Assert.True(ServerHandshake.Validate("GET", "HTTP/1.1", Headers([.. Good, "Origin: https://good.example"]), opts).IsAccepted);
        var bad = ServerHandshake.Validate("GET", "HTTP/1.1", Headers([.. Good, "Origin: https://evil.example"]), opts);
        Assert.Equal(HandshakeRejection.OriginNotAllowed, bad.Rejection);
        Assert.Equal(403, bad.StatusCode);
    }

    [Fact]
    public void Subprotocol_is_the_servers_first_preference_among_those_offered()
    {
        var opts = new ServerHandshakeOptions { SubProtocols = ["v2.chat", "chat"] };
        var r = ServerHandshake.Validate("GET", "HTTP/1.1", Headers([.. Good, "Sec-WebSocket-Protocol: chat, v2.chat"]), opts);
        Assert.Equal("v2.chat", r.SubProtocol);
        Assert.Contains(new KeyValuePair<string, string>("Sec-WebSocket-Protocol", "v2.chat"), r.ResponseHeaders);
        var none = ServerHandshake.Validate("GET", "HTTP/1.1", Headers([.. Good, "Sec-WebSocket-Protocol: other"]), opts);
        Assert.True(none.IsAccepted);
        Assert.Null(none.SubProtocol);
        Assert.DoesNotContain(none.ResponseHeaders, h => h.Key == "Sec-WebSocket-Protocol");
    }
}

public class ClientHandshakeUnitTests
{
    private sealed class FixedRandom(byte value) : IWebSocketRandom
    {
        public void Fill(Span<byte> destination) => destination.Fill(value);
    }

    private static HttpResponseHead Parse(string text)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes(text)));
        Assert.Equal(HttpHeadStatus.Complete, HttpHeadParser.TryParseResponse(ref reader, out HttpResponseHead? head));
        return head!;
    }

    [Fact]
    public void Builds_the_request_with_a_nonce_from_the_injected_source()
    {
        var hs = new ClientHandshake(new Uri("ws://example.com:9001/chat?x=1"), new() { SubProtocols = ["chat", "superchat"], Headers = [new("Origin", "http://example.com")] }, new FixedRandom(0));
        Assert.Equal("AAAAAAAAAAAAAAAAAAAAAA==", hs.Key);
        string req = Encoding.ASCII.GetString(hs.BuildRequest());
        Assert.StartsWith("GET /chat?x=1 HTTP/1.1\r\nHost: example.com:9001\r\n", req);
        Assert.Contains("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: AAAAAAAAAAAAAAAAAAAAAA==\r\nSec-WebSocket-Version: 13\r\n", req);
        Assert.Contains("\r\nSec-WebSocket-Protocol: chat, superchat\r\n", req);
        Assert.Contains("\r\nOrigin: http://example.com\r\n", req);
        Assert.EndsWith("\r\n\r\n", req);

        // The server side accepts exactly what the client builds (mirrored pair).
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(hs.BuildRequest()));
        Assert.Equal(HttpHeadStatus.Complete, HttpHeadParser.TryParseRequest(ref reader, out HttpRequestHead? head));
        var server = ServerHandshake.Validate(head!.Method, head.Version, head.Headers, new() { SubProtocols = ["superchat"] });
        Assert.True(server.IsAccepted);
        Assert.Equal(hs.ExpectedAccept, server.AcceptKey);
    }

    [Fact]
    public void Default_port_is_not_written_in_host()
    {
        string req = Encoding.ASCII.GetString(new ClientHandshake(new Uri("wss://example.com/"), new(), new FixedRandom(1)).BuildRequest());
        Assert.Contains("\r\nHost: example.com\r\n", req);
    }

    [Fact]
    public void Rejects_fragment_and_bad_scheme()
    {
        Assert.Throws<ArgumentException>(() => new ClientHandshake(new Uri("http://example.com/"), new(), new FixedRandom(1)));
        Assert.Throws<ArgumentException>(() => new ClientHandshake(new Uri("ws://example.com/#frag"), new(), new FixedRandom(1)));
    }

    private static string Response(ClientHandshake hs, string extra = "", string? accept = null, string upgrade = "websocket", string connection = "Upgrade") =>
        $"HTTP/1.1 101 Switching Protocols\r\nUpgrade: {upgrade}\r\nConnection: {connection}\r\nSec-WebSocket-Accept: {accept ?? hs.ExpectedAccept}\r\n{extra}\r\n";

    [Fact]
    public void Validates_the_response()
    {
        var hs = new ClientHandshake(new Uri("ws://h/"), new() { SubProtocols = ["chat"] }, new FixedRandom(7));
        Assert.True(hs.Validate(Parse(Response(hs))).IsAccepted);
        Assert.Equal("chat", hs.Validate(Parse(Response(hs, "Sec-WebSocket-Protocol: chat\r\n"))).SubProtocol);
        Assert.Equal(ClientHandshakeError.UnexpectedStatus, hs.Validate(Parse("HTTP/1.1 200 OK\r\n\r\n")).Error);
        Assert.Equal(ClientHandshakeError.InvalidAccept, hs.Validate(Parse(Response(hs, accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))).Error);
        Assert.Equal(ClientHandshakeError.InvalidUpgradeHeader, hs.Validate(Parse(Response(hs, upgrade: "h2c"))).Error);
        Assert.Equal(ClientHandshakeError.InvalidConnectionHeader, hs.Validate(Parse(Response(hs, connection: "close"))).Error);
        Assert.Equal(ClientHandshakeError.UnexpectedSubProtocol, hs.Validate(Parse(Response(hs, "Sec-WebSocket-Protocol: other\r\n"))).Error);
        Assert.Equal(ClientHandshakeError.UnexpectedExtension, hs.Validate(Parse(Response(hs, "Sec-WebSocket-Extensions: permessage-deflate\r\n"))).Error);
    }
}

public class HttpHeadParserUnitTests
{
    [Fact]
    public void Parses_a_request_at_every_split_and_leaves_the_rest()
    {
        byte[] bytes = Encoding.ASCII.GetBytes("GET /echo HTTP/1.1\r\nHost: a\r\nX-Multi: 1\r\nx-multi: 2\r\n\r\n\x81\x00");
        for (int k = 0; k < bytes.Length - 2; k++)
        {
            var partial = new SequenceReader<byte>(new ReadOnlySequence<byte>(bytes, 0, k));
            Assert.Equal(HttpHeadStatus.NeedMoreData, HttpHeadParser.TryParseRequest(ref partial, out _));
            Assert.Equal(0, partial.Consumed);
            var seg = new SequenceReader<byte>(TestSequence.Create(bytes[..k], bytes[k..]));
            Assert.Equal(HttpHeadStatus.Complete, HttpHeadParser.TryParseRequest(ref seg, out HttpRequestHead? head));
            Assert.Equal("GET", head!.Method);
            Assert.Equal("/echo", head.Target);
            Assert.Equal("1, 2", head.Headers.Get("X-MULTI"));
            Assert.Equal(2, seg.Remaining);
        }
    }

    [Theory]
    [InlineData("garbage\r\n\r\n")]
    [InlineData("GET /\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nNoColon\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nName : v\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nA: b\nC: d\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\r\nX-\u00e9t\u00e9: v\r\n\r\n")] // a field name that is not a token
    [InlineData("GET / HTTP/1.1\r\nX(y): v\r\n\r\n")]
    [InlineData("GET / HTTP/1.1\nHost: a\n\n")] // bare LF line ends: invalid at once, not "need more data" forever
    [InlineData("GET / HTTP/1.1\nHost: a\n")]
    public void Malformed_heads_are_invalid(string text)
    {
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encoding.Latin1.GetBytes(text)));
        Assert.Equal(HttpHeadStatus.Invalid, HttpHeadParser.TryParseRequest(ref reader, out _));
    }

    [Fact]
    public void More_than_100_header_fields_are_too_many()
    {
        string fields = string.Concat(Enumerable.Range(0, 100).Select(i => $"X-{i}: v\r\n"));
        var ok = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\n{fields}\r\n")));
        Assert.Equal(HttpHeadStatus.Complete, HttpHeadParser.TryParseRequest(ref ok, out _));
        var many = new SequenceReader<byte>(new ReadOnlySequence<byte>(Encoding.ASCII.GetBytes($"GET / HTTP/1.1\r\nHost: a\r\n{fields}\r\n")));
        Assert.Equal(HttpHeadStatus.TooManyFields, HttpHeadParser.TryParseRequest(ref many, out _));
        Assert.Equal(431, ServerHandshake.RejectHead(HttpHeadStatus.TooManyFields).StatusCode);
        Assert.Equal(400, ServerHandshake.RejectHead(HttpHeadStatus.Invalid).StatusCode);
    }

    [Fact]
    public void Oversized_heads_are_refused()
    {
        byte[] big = Encoding.ASCII.GetBytes("GET / HTTP/1.1\r\nX: " + new string('a', 20000));
        var reader = new SequenceReader<byte>(new ReadOnlySequence<byte>(big));
        Assert.Equal(HttpHeadStatus.TooLarge, HttpHeadParser.TryParseRequest(ref reader, out _));
    }
}

public class ClosePayloadUnitTests
{
    [Fact]
    public void Writes_and_reads_code_and_reason()
    {
        byte[] buf = new byte[125];
        int n = ClosePayload.Write(buf, 4000, "bye κόσμε");
        Assert.Equal(ClosePayloadError.None, ClosePayload.TryParse(buf.AsSpan(0, n), out ushort code, out string reason));
        Assert.Equal(4000, code);
        Assert.Equal("bye κόσμε", reason);
        Assert.Equal(0, ClosePayload.Write(buf, WebSocketCloseCode.NoStatusReceived, null));
    }

    [Theory]
    [InlineData(1005)]
    [InlineData(1006)]
    [InlineData(1015)]
    [InlineData(999)]
    [InlineData(2000)]
    [InlineData(5000)]
    public void Sending_a_reserved_code_is_misuse(int code) =>
        Assert.Throws<ArgumentOutOfRangeException>(() => ClosePayload.Validate((ushort)code, null));

    [Fact]
    public void Reason_over_123_bytes_is_misuse_and_truncate_respects_characters()
    {
        Assert.Throws<ArgumentException>(() => ClosePayload.Validate(1000, new string('a', 124)));
        string t = ClosePayload.Truncate(new string('€', 100));
        Assert.True(Encoding.UTF8.GetByteCount(t) <= 123);
        Assert.Equal(41, t.Length);
    }
}
