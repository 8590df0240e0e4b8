using System.Text;
using Switchboard.Protocol.Extensions;

namespace Switchboard.Protocol.Handshake;

/// <summary>Why a client refused the server's handshake response.</summary>
public enum ClientHandshakeError
{
    /// <summary>The response is acceptable.</summary>
    None,
    /// <summary>The status is not 101 (§4.1, client step 1).</summary>
    UnexpectedStatus,
    /// <summary>Upgrade is missing or is not "websocket" (§4.1, step 2).</summary>
    InvalidUpgradeHeader,
    /// <summary>Connection is missing or does not contain "Upgrade" (§4.1, step 3).</summary>
    InvalidConnectionHeader,
    /// <summary>Sec-WebSocket-Accept is missing or wrong (§4.1, step 4).</summary>
    InvalidAccept,
    /// <summary>The server selected an extension the client did not offer (§4.1, step 5).</summary>
    UnexpectedExtension,
    /// <summary>The server selected a subprotocol the client did not offer (§4.1, step 6).</summary>
    UnexpectedSubProtocol,
}

/// <summary>Client-side settings for the opening handshake.</summary>
public sealed class ClientHandshakeOptions
{
    /// <summary>Subprotocols to offer, in order of preference.</summary>
    public IReadOnlyList<string> SubProtocols { get; init; } = [];

    /// <summary>Extra request headers (e.g. Authorization, Origin, Cookie).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];

    /// <summary>
    /// Offer permessage-deflate (RFC 7692) with <c>client_max_window_bits</c> (the server may limit our window).
    /// Ignored where the system zlib is missing. Default false.
    /// </summary>
    public bool OfferCompression { get; init; }
}

/// <summary>The outcome of <see cref="ClientHandshake.Validate"/>.</summary>
public readonly record struct ClientHandshakeResult(ClientHandshakeError Error, string Message, string? SubProtocol)
{
    /// <summary>The permessage-deflate parameters the server accepted, or null (no compression).</summary>
    public DeflateParameters? Compression { get; init; }

    /// <summary>True when the connection is open.</summary>
    public bool IsAccepted => Error == ClientHandshakeError.None;
}

/// <summary>
/// The client's half of the opening handshake (RFC 6455 §4.1), sans-I/O: builds the request and validates
/// the response. Mirrors <see cref="ServerHandshake"/>.
/// </summary>
public sealed class ClientHandshake
{
    private readonly Uri _uri;
    private readonly ClientHandshakeOptions _options;

    /// <summary>Creates a handshake for <paramref name="uri"/> (ws:// or wss://) with a nonce from <paramref name="random"/>.</summary>
    public ClientHandshake(Uri uri, ClientHandshakeOptions options, IWebSocketRandom random)
    {
        if (!uri.IsAbsoluteUri || (uri.Scheme != "ws" && uri.Scheme != "wss"))
        {
            throw new ArgumentException("A WebSocket URI must be absolute with scheme ws or wss.", nameof(uri));
        }

        if (uri.Fragment.Length > 0)
        {
            throw new ArgumentException("A WebSocket URI must not have a fragment (RFC 6455 §3).", nameof(uri));
        }

        foreach (string p in options.SubProtocols)
        {
            if (p.Length == 0 || p.Any(c => c <= 0x20 || c >= 0x7F || "()<>@,;:\\\"/[]?={}".Contains(c)))
            {
                throw new ArgumentException($"Invalid subprotocol name '{p}' (RFC 6455 §4.1: a token).", nameof(options));
            }
        }

        _uri = uri;
        _options = options;
        Span<byte> nonce = stackalloc byte[16];
        random.Fill(nonce);
        Key = Convert.ToBase64String(nonce);
        ExpectedAccept = WebSocketAccept.Compute(Key);
    }

    /// <summary>The Sec-WebSocket-Key sent.</summary>
    public string Key { get; }

    /// <summary>The Sec-WebSocket-Accept the server must answer with.</summary>
    public string ExpectedAccept { get; }

    /// <summary>The request bytes.</summary>
    public byte[] BuildRequest()
    {
        var sb = new StringBuilder(256);
        string target = string.IsNullOrEmpty(_uri.PathAndQuery) ? "/" : _uri.PathAndQuery;
        sb.Append("GET ").Append(target).Append(" HTTP/1.1\r\n");
        bool defaultPort = _uri.IsDefaultPort || (_uri.Scheme == "ws" && _uri.Port == 80) || (_uri.Scheme == "wss" && _uri.Port == 443);
        string host = _uri.HostNameType == UriHostNameType.IPv6 ? $"[{_uri.IdnHost.Trim('[', ']')}]" : _uri.IdnHost;
        sb.Append("Host: ").Append(host);
        if (!defaultPort)
        {
            sb.Append(':').Append(_uri.Port);
        }

        sb.Append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ").Append(Key)
          .Append("\r\nSec-WebSocket-Version: 13\r\n");
        if (OffersCompression)
        {
            sb.Append("Sec-WebSocket-Extensions: ").Append(PerMessageDeflateNegotiation.BuildOffer()).Append("\r\n");
        }

        if (_options.SubProtocols.Count > 0)
        {
            sb.Append("Sec-WebSocket-Protocol: ").AppendJoin(", ", _options.SubProtocols).Append("\r\n");
        }

        foreach (var (name, value) in _options.Headers)
        {
            if (name.Any(c => c <= 0x20 || c >= 0x7F || c == ':') || value.Contains('\r') || value.Contains('\n'))
            {
                throw new ArgumentException($"Invalid header '{name}'.");
            }

            sb.Append(name).Append(": ").Append(value).Append("\r\n");
        }

        sb.Append("\r\n");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }

    /// <summary>Validates the server's response head.</summary>
    public ClientHandshakeResult Validate(HttpResponseHead response)
    {
        if (response.StatusCode != 101)
        {
            // A refused token says why in its challenge (RFC 6750 §3): show that, not only the status.
            string? why = ErrorDescription(response.Headers.Get("WWW-Authenticate"));
            return Fail(ClientHandshakeError.UnexpectedStatus, $"Server answered {response.StatusCode} {response.ReasonPhrase} instead of 101 Switching Protocols" +
                (why is null ? "." : $": {why}"));
        }

        if (!HeaderTokens.Contains(response.Headers.Get("Upgrade"), "websocket"))
        {
            return Fail(ClientHandshakeError.InvalidUpgradeHeader, "Response lacks \"Upgrade: websocket\".");
        }

        if (!HeaderTokens.Contains(response.Headers.Get("Connection"), "Upgrade"))
        {
            return Fail(ClientHandshakeError.InvalidConnectionHeader, "Response lacks \"Connection: Upgrade\".");
        }

        if (response.Headers.Get("Sec-WebSocket-Accept")?.Trim() != ExpectedAccept)
        {
            return Fail(ClientHandshakeError.InvalidAccept, "Sec-WebSocket-Accept does not match the key sent.");
        }

        DeflateParameters? compression = null;
        string? extensions = response.Headers.Get("Sec-WebSocket-Extensions");
        if (!string.IsNullOrWhiteSpace(extensions))
        {
            if (!OffersCompression)
            {
                return Fail(ClientHandshakeError.UnexpectedExtension, "Server selected an extension that was not offered.");
            }

            if (!PerMessageDeflateNegotiation.TryAcceptResponse(extensions, offeredClientNoContextTakeover: false, out compression, out string? error))
            {
                return Fail(ClientHandshakeError.UnexpectedExtension, error!);
            }
        }

        string? protocol = response.Headers.Get("Sec-WebSocket-Protocol")?.Trim();
        if (!string.IsNullOrEmpty(protocol) && !_options.SubProtocols.Contains(protocol, StringComparer.Ordinal))
        {
            return Fail(ClientHandshakeError.UnexpectedSubProtocol, $"Server selected subprotocol '{protocol}' that was not offered.");
        }

        return new ClientHandshakeResult(ClientHandshakeError.None, string.Empty, string.IsNullOrEmpty(protocol) ? null : protocol) { Compression = compression };
    }

    private bool OffersCompression => _options.OfferCompression && DeflateStreams.IsSupported;

    /// <summary>The <c>error_description</c> of a Bearer challenge, if any.</summary>
    private static string? ErrorDescription(string? challenge)
    {
        if (challenge is null)
        {
            return null;
        }

        const string Key = "error_description=\"";
        int start = challenge.IndexOf(Key, StringComparison.OrdinalIgnoreCase);
        if (start < 0)
        {
            return null;
        }

        start += Key.Length;
        int end = challenge.IndexOf('"', start);
        return end > start ? challenge[start..end] : null;
    }

    private static ClientHandshakeResult Fail(ClientHandshakeError error, string message) => new(error, message, null);
}
