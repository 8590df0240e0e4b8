namespace Switchboard.Protocol.Handshake;

/// <summary>Why a server refused an opening handshake. Each maps to one HTTP status and text.</summary>
public enum HandshakeRejection
{
    /// <summary>Not refused.</summary>
    None,
    /// <summary>The method is not GET (§4.2.1 item 1): 405.</summary>
    MethodNotGet,
    /// <summary>The request is older than HTTP/1.1 (§4.2.1 item 1): 400.</summary>
    HttpVersionTooOld,
    /// <summary>No Host header (§4.2.1 item 2): 400.</summary>
    MissingHost,
    /// <summary>A plain HTTP request (no Upgrade header at all) to a WebSocket endpoint: 426.</summary>
    NotWebSocketRequest,
    /// <summary>Upgrade does not list "websocket" (§4.2.1 item 3): 400.</summary>
    InvalidUpgradeHeader,
    /// <summary>Connection does not list "Upgrade" (§4.2.1 item 4): 400.</summary>
    InvalidConnectionHeader,
    /// <summary>Sec-WebSocket-Key missing or not base64 of 16 bytes (§4.2.1 item 5): 400.</summary>
    InvalidKey,
    /// <summary>Sec-WebSocket-Version is not 13 (§4.2.1 item 6, §4.4): 426 with Sec-WebSocket-Version: 13.</summary>
    UnsupportedVersion,
    /// <summary>The Origin policy refused the request (§4.2.2 item 4, §10.2): 403.</summary>
    OriginNotAllowed,
    /// <summary>A major HTTP version other than 1 in an HTTP/1 request line (RFC 9110 §15.6.6): 505.</summary>
    HttpVersionNotSupported,
    /// <summary>More than one Host header field (RFC 9112 §3.2): 400.</summary>
    DuplicateHost,
    /// <summary>Both Transfer-Encoding and Content-Length (RFC 9112 §6.1, request smuggling): 400.</summary>
    AmbiguousMessageLength,
    /// <summary>The request head is not valid HTTP/1.1 (bare LF line ends, a field name that is not a token, ...): 400.</summary>
    MalformedRequest,
    /// <summary>The request head has too many header fields, or is too large: 431.</summary>
    RequestHeadersTooLarge,
}

/// <summary>Server-side settings for the opening handshake.</summary>
public sealed class ServerHandshakeOptions
{
    /// <summary>Subprotocols this server speaks, in order of preference.</summary>
    public IReadOnlyList<string> SubProtocols { get; init; } = [];

    /// <summary>
    /// Decides on the request's Origin (null when the request had none: not a browser).
    /// Return false to refuse with 403. Null accepts every origin.
    /// </summary>
    public Func<string?, bool>? OriginPolicy { get; init; }

    /// <summary>
    /// permessage-deflate (RFC 7692): what the server accepts; null disables it (offers are declined by answering
    /// without the extension). Ignored where the system zlib is missing.
    /// </summary>
    public Extensions.DeflateServerPolicy? Compression { get; init; }
}

/// <summary>The outcome of <see cref="ServerHandshake.Validate"/>.</summary>
public sealed class ServerHandshakeResult
{
    /// <summary>True when the upgrade may proceed with a 101 response.</summary>
    public bool IsAccepted => Rejection == HandshakeRejection.None;
    /// <summary>Why the request was refused.</summary>
    public HandshakeRejection Rejection { get; init; }
    /// <summary>101 when accepted, otherwise the error status.</summary>
    public int StatusCode { get; init; }
    /// <summary>The HTTP reason phrase for <see cref="StatusCode"/>.</summary>
    public required string ReasonPhrase { get; init; }
    /// <summary>A one-line explanation for the response body.</summary>
    public required string Message { get; init; }
    /// <summary>Sec-WebSocket-Accept for the 101 response.</summary>
    public string? AcceptKey { get; init; }
    /// <summary>The selected subprotocol, if any.</summary>
    public string? SubProtocol { get; init; }
    /// <summary>The permessage-deflate parameters agreed, or null (no compression).</summary>
    public Extensions.DeflateParameters? Compression { get; init; }
    /// <summary>Headers the response must carry (for 101: Upgrade, Connection, Sec-WebSocket-Accept, ...).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> ResponseHeaders { get; init; } = [];
}

/// <summary>
/// The server's half of the opening handshake (RFC 6455 §4.2), sans-I/O: validates a request and tells
/// the host what to answer. Mirrors <see cref="ClientHandshake"/>.
/// </summary>
public static class ServerHandshake
{
    /// <summary>Validates an upgrade request.</summary>
    /// <param name="method">The request method.</param>
    /// <param name="httpVersion">The protocol, e.g. "HTTP/1.1".</param>
    /// <param name="headers">The request headers.</param>
    /// <param name="options">Subprotocols and Origin policy.</param>
    public static ServerHandshakeResult Validate(string method, string httpVersion, IHeaderSource headers, ServerHandshakeOptions options)
    {
        if (!string.Equals(method, "GET", StringComparison.Ordinal))
        {
            return Reject(HandshakeRejection.MethodNotGet, 405, "Method Not Allowed", "A WebSocket handshake must use GET.", [new("Allow", "GET")]);
        }

        if (IsOtherMajorVersion(httpVersion))
        {
            return Reject(HandshakeRejection.HttpVersionNotSupported, 505, "HTTP Version Not Supported", "This server speaks HTTP/1.1; a WebSocket handshake is an HTTP/1.1 GET.");
        }

        if (!IsHttp11OrLater(httpVersion))
        {
            return Reject(HandshakeRejection.HttpVersionTooOld, 400, "Bad Request", "A WebSocket handshake requires HTTP/1.1 or later.");
        }

        string? host = headers.Get("Host");
        if (string.IsNullOrWhiteSpace(host))
        {
            return Reject(HandshakeRejection.MissingHost, 400, "Bad Request", "Missing Host header.");
        }

        if (host.Contains(',', StringComparison.Ordinal))
        {
            return Reject(HandshakeRejection.DuplicateHost, 400, "Bad Request", "More than one Host header.");
        }

        if (headers.Get("Transfer-Encoding") is not null && headers.Get("Content-Length") is not null)
        {
            return Reject(HandshakeRejection.AmbiguousMessageLength, 400, "Bad Request", "Transfer-Encoding and Content-Length together.");
        }

        string? upgrade = headers.Get("Upgrade");
        if (upgrade is null)
        {
            return Reject(HandshakeRejection.NotWebSocketRequest, 426, "Upgrade Required",
                "This endpoint speaks WebSocket only: send a WebSocket upgrade request.",
                [new("Upgrade", "websocket"), new("Connection", "Upgrade"), new("Sec-WebSocket-Version", "13")]);
        }

        if (!HeaderTokens.Contains(upgrade, "websocket"))
        {
            return Reject(HandshakeRejection.InvalidUpgradeHeader, 400, "Bad Request", "The Upgrade header must contain \"websocket\".");
        }

        if (!HeaderTokens.Contains(headers.Get("Connection"), "Upgrade"))
        {
            return Reject(HandshakeRejection.InvalidConnectionHeader, 400, "Bad Request", "The Connection header must contain \"Upgrade\".");
        }

        string? key = headers.Get("Sec-WebSocket-Key");
        if (!WebSocketAccept.IsValidKey(key))
        {
            return Reject(HandshakeRejection.InvalidKey, 400, "Bad Request",
                key is null ? "Missing Sec-WebSocket-Key header." : "Sec-WebSocket-Key must be base64 of 16 bytes.");
        }

        if (headers.Get("Sec-WebSocket-Version")?.Trim() != "13")
        {
            return Reject(HandshakeRejection.UnsupportedVersion, 426, "Upgrade Required",
                "Unsupported Sec-WebSocket-Version: this server speaks version 13.", [new("Sec-WebSocket-Version", "13")]);
        }

        if (options.OriginPolicy is { } policy && !policy(headers.Get("Origin")))
        {
            return Reject(HandshakeRejection.OriginNotAllowed, 403, "Forbidden", "Origin not allowed.");
        }

        string? subProtocol = SelectSubProtocol(headers.Get("Sec-WebSocket-Protocol"), options.SubProtocols);
        string accept = WebSocketAccept.Compute(key!);
        var response = new List<KeyValuePair<string, string>>(4)
        {
            new("Upgrade", "websocket"),
            new("Connection", "Upgrade"),
            new("Sec-WebSocket-Accept", accept),
        };
        if (subProtocol is not null)
        {
            response.Add(new("Sec-WebSocket-Protocol", subProtocol));
        }

        Extensions.DeflateParameters? compression = null;
        if (options.Compression is { } deflate && Extensions.DeflateStreams.IsSupported)
        {
            compression = Extensions.PerMessageDeflateNegotiation.Negotiate(headers.Get("Sec-WebSocket-Extensions"), deflate);
            if (compression is not null)
            {
                response.Add(new("Sec-WebSocket-Extensions", compression.ToResponseHeader()));
            }
        }

        return new ServerHandshakeResult
        {
            StatusCode = 101,
            ReasonPhrase = "Switching Protocols",
            Message = string.Empty,
            AcceptKey = accept,
            SubProtocol = subProtocol,
            Compression = compression,
            ResponseHeaders = response,
        };
    }

    /// <summary>
    /// Picks the first of the server's subprotocols (in its order of preference) that the client offered;
    /// null when none matches, in which case the response carries no Sec-WebSocket-Protocol (§4.2.2).
    /// </summary>
    public static string? SelectSubProtocol(string? offered, IReadOnlyList<string> supported)
    {
        if (offered is null || supported.Count == 0)
        {
            return null;
        }

        List<string> requested = HeaderTokens.Split(offered);
        foreach (string candidate in supported)
        {
            foreach (string r in requested)
            {
                if (string.Equals(r, candidate, StringComparison.Ordinal))
                {
                    return candidate; // subprotocol names are case-sensitive (§11.3.4)
                }
            }
        }

        return null;
    }

    /// <summary>Writes the raw HTTP/1.1 response for a result (for hosts that own the socket).</summary>
    public static byte[] FormatResponse(ServerHandshakeResult result)
    {
        // Measured first, then written once into an array of the exact size: a handshake is answered with one
        // allocation (the builder, its chunks and the intermediate string cost several kilobytes per connection).
        string? body = result.IsAccepted ? null : result.Message + "\n";
        bool addClose = body is not null && !result.ResponseHeaders.Any(h => h.Key.Equals("Connection", StringComparison.OrdinalIgnoreCase));
        int bodyLength = body is null ? 0 : System.Text.Encoding.UTF8.GetByteCount(body);
        var writer = new ResponseWriter(null);
        Write(ref writer, result, body, addClose, bodyLength);
        var bytes = new byte[writer.Length];
        writer = new ResponseWriter(bytes);
        Write(ref writer, result, body, addClose, bodyLength);
        return bytes;

        static void Write(ref ResponseWriter w, ServerHandshakeResult result, string? body, bool addClose, int bodyLength)
        {
            w.Append("HTTP/1.1 ");
            w.Append(result.StatusCode);
            w.Append(" ");
            w.Append(result.ReasonPhrase);
            w.Append("\r\n");
            IReadOnlyList<KeyValuePair<string, string>> headers = result.ResponseHeaders;
            for (int i = 0; i < headers.Count; i++) // by index: an interface's enumerator would be boxed
            {
                (string name, string value) = headers[i];
                w.Append(name);
                w.Append(": ");
                w.Append(value);
                w.Append("\r\n");
            }

            if (body is not null)
            {
                if (addClose)
                {
                    w.Append("Connection: close\r\n");
                }

                w.Append("Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
                w.Append(bodyLength);
                w.Append("\r\n\r\n");
                w.Append(body);
            }
            else
            {
                w.Append("\r\n");
            }
        }
    }

    /// <summary>Counts (no buffer) or writes UTF-8 (into a buffer of the counted size).</summary>
    private ref struct ResponseWriter(byte[]? buffer)
    {
        public int Length;

        public void Append(string text)
        {
            if (buffer is null)
            {
                Length += System.Text.Encoding.UTF8.GetByteCount(text);
            }
            else
            {
                Length += System.Text.Encoding.UTF8.GetBytes(text, buffer.AsSpan(Length));
            }
        }

        public void Append(int number)
        {
            Span<byte> digits = stackalloc byte[11];
            number.TryFormat(digits, out int n, default, System.Globalization.CultureInfo.InvariantCulture);
            if (buffer is not null)
            {
                digits[..n].CopyTo(buffer.AsSpan(Length));
            }

            Length += n;
        }
    }

    /// <summary>HTTP/1.1, or a later 1.x (RFC 9110 §2.5: a recipient treats a higher minor version as the highest it knows).</summary>
    private static bool IsHttp11OrLater(string version) =>
        version.Length == 8 && version.StartsWith("HTTP/1.", StringComparison.Ordinal) && version[7] is >= '1' and <= '9';

    /// <summary>HTTP/2, HTTP/3, ...: a request line this server does not speak (h2 and h3 WebSockets use CONNECT, RFC 8441/9220).</summary>
    private static bool IsOtherMajorVersion(string version) =>
        version.StartsWith("HTTP/", StringComparison.Ordinal) && version.Length > 5 && version[5] is >= '2' and <= '9';

    /// <summary>The refusal for a request head that could not be parsed (<see cref="HttpHeadParser"/>): 400, or 431 when too large.</summary>
    public static ServerHandshakeResult RejectHead(HttpHeadStatus status) => status is HttpHeadStatus.TooLarge or HttpHeadStatus.TooManyFields
        ? Reject(HandshakeRejection.RequestHeadersTooLarge, 431, "Request Header Fields Too Large",
            $"The request head is larger than {HttpHeadParser.DefaultMaxHeadSize} bytes or has more than {HttpHeadParser.DefaultMaxFields} header fields.")
        : Reject(HandshakeRejection.MalformedRequest, 400, "Bad Request", "Malformed HTTP/1.1 request head (lines must end with CRLF; header names must be tokens).");

    private static ServerHandshakeResult Reject(HandshakeRejection rejection, int status, string phrase, string message, KeyValuePair<string, string>[]? headers = null) =>
        new() { Rejection = rejection, StatusCode = status, ReasonPhrase = phrase, Message = message, ResponseHeaders = headers ?? [] };
}
