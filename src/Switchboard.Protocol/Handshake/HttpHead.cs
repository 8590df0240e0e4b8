using System.Buffers;
using System.Text;

namespace Switchboard.Protocol.Handshake;

/// <summary>Outcome of parsing an HTTP/1.1 message head.</summary>
public enum HttpHeadStatus
{
    /// <summary>The head was parsed; the reader is positioned after the blank line.</summary>
    Complete,
    /// <summary>The blank line ending the head has not arrived; the reader was not advanced.</summary>
    NeedMoreData,
    /// <summary>The head is not valid HTTP/1.1.</summary>
    Invalid,
    /// <summary>The head exceeds the size limit without ending.</summary>
    TooLarge,
    /// <summary>The head has more header fields than allowed (431, as Kestrel's MaxRequestHeaderCount).</summary>
    TooManyFields,
}

/// <summary>A parsed HTTP request head.</summary>
public sealed class HttpRequestHead
{
    /// <summary>The method, e.g. GET.</summary>
    public required string Method { get; init; }
    /// <summary>The request target, e.g. /echo?x=1.</summary>
    public required string Target { get; init; }
    /// <summary>The protocol version, e.g. HTTP/1.1.</summary>
    public required string Version { get; init; }
    /// <summary>The header fields.</summary>
    public required IHeaderSource Headers { get; init; }
}

/// <summary>A parsed HTTP response head.</summary>
public sealed class HttpResponseHead
{
    /// <summary>The protocol version, e.g. HTTP/1.1.</summary>
    public required string Version { get; init; }
    /// <summary>The status code.</summary>
    public required int StatusCode { get; init; }
    /// <summary>The reason phrase.</summary>
    public required string ReasonPhrase { get; init; }
    /// <summary>The header fields.</summary>
    public required IHeaderSource Headers { get; init; }
}

/// <summary>
/// A minimal, strict HTTP/1.1 head parser (RFC 9112 §2–§5) for the opening handshake: start line, then
/// header fields up to the empty line. Returns a status, never throws for short or malformed input.
/// </summary>
public static class HttpHeadParser
{
    /// <summary>Default limit for a whole head: 16 KiB.</summary>
    public const int DefaultMaxHeadSize = 16 * 1024;

    /// <summary>Default limit on header fields in a request: 100 (Kestrel's default too).</summary>
    public const int DefaultMaxFields = 100;

    private static ReadOnlySpan<byte> HeadEnd => "\r\n\r\n"u8;

    /// <summary>Parses a request head.</summary>
    public static HttpHeadStatus TryParseRequest(ref SequenceReader<byte> reader, out HttpRequestHead? head, int maxHeadSize = DefaultMaxHeadSize, int maxFields = DefaultMaxFields) =>
        TryParse(ref reader, maxHeadSize, maxFields, ParseRequest, out head);

    /// <summary>Parses a response head.</summary>
    public static HttpHeadStatus TryParseResponse(ref SequenceReader<byte> reader, out HttpResponseHead? head, int maxHeadSize = DefaultMaxHeadSize) =>
        TryParse(ref reader, maxHeadSize, int.MaxValue, ParseResponse, out head);

    private delegate HttpHeadStatus StartLineParser<T>(ReadOnlySpan<byte> startLine, ReadOnlySpan<byte> fields, int maxFields, out T? head);

    /// <summary>Finds the head, takes its start line and hands both parts to <paramref name="parse"/>.</summary>
    private static HttpHeadStatus TryParse<T>(ref SequenceReader<byte> reader, int maxHeadSize, int maxFields, StartLineParser<T> parse, out T? head)
        where T : class
    {
        head = null;
        HttpHeadStatus status = TryReadHead(ref reader, maxHeadSize, out ReadOnlySequence<byte> bytes);
        if (status != HttpHeadStatus.Complete)
        {
            return status;
        }

        byte[]? rented = null;
        try
        {
            ReadOnlySpan<byte> text = Contiguous(bytes, ref rented);
            return TryTakeLine(ref text, out ReadOnlySpan<byte> line) ? parse(line, text, maxFields, out head) : HttpHeadStatus.Invalid;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>request-line = method SP request-target SP HTTP-version (RFC 9112 §3), exactly two spaces; then the fields.</summary>
    private static HttpHeadStatus ParseRequest(ReadOnlySpan<byte> line, ReadOnlySpan<byte> fields, int maxFields, out HttpRequestHead? head)
    {
        head = null;
        int sp1 = line.IndexOf((byte)' ');
        int sp2 = sp1 < 0 ? -1 : line[(sp1 + 1)..].IndexOf((byte)' ');
        if (sp1 <= 0 || sp2 <= 0)
        {
            return HttpHeadStatus.Invalid;
        }

        sp2 += sp1 + 1;
        ReadOnlySpan<byte> version = line[(sp2 + 1)..];
        if (version.IndexOf((byte)' ') >= 0 || !version.StartsWith("HTTP/"u8))
        {
            return HttpHeadStatus.Invalid;
        }

        if (CountLines(fields) > maxFields)
        {
            return HttpHeadStatus.TooManyFields;
        }

        if (!TryParseFields(fields, out HttpHeaderList? headers))
        {
            return HttpHeadStatus.Invalid;
        }

        ReadOnlySpan<byte> method = line[..sp1];
        head = new HttpRequestHead
        {
            Method = method.SequenceEqual("GET"u8) ? "GET" : Encoding.Latin1.GetString(method),
            Target = Encoding.Latin1.GetString(line[(sp1 + 1)..sp2]),
            Version = version.SequenceEqual("HTTP/1.1"u8) ? "HTTP/1.1" : Encoding.Latin1.GetString(version),
            Headers = headers!,
        };
        return HttpHeadStatus.Complete;
    }

    /// <summary>status-line = HTTP-version SP status-code SP [ reason-phrase ] (RFC 9112 §4); then the fields.</summary>
    private static HttpHeadStatus ParseResponse(ReadOnlySpan<byte> line, ReadOnlySpan<byte> fields, int maxFields, out HttpResponseHead? head)
    {
        head = null;
        int sp1 = line.IndexOf((byte)' ');
        if (sp1 <= 0 || !line.StartsWith("HTTP/"u8))
        {
            return HttpHeadStatus.Invalid;
        }

        ReadOnlySpan<byte> rest = line[(sp1 + 1)..];
        int sp2 = rest.IndexOf((byte)' ');
        ReadOnlySpan<byte> codeText = sp2 < 0 ? rest : rest[..sp2];
        if (codeText.Length != 3 || !int.TryParse(codeText, System.Globalization.NumberStyles.None, null, out int code))
        {
            return HttpHeadStatus.Invalid;
        }

        if (!TryParseFields(fields, out HttpHeaderList? headers))
        {
            return HttpHeadStatus.Invalid;
        }

        head = new HttpResponseHead
        {
            Version = Encoding.Latin1.GetString(line[..sp1]),
            StatusCode = code,
            ReasonPhrase = sp2 < 0 ? string.Empty : Encoding.Latin1.GetString(rest[(sp2 + 1)..]),
            Headers = headers!,
        };
        return HttpHeadStatus.Complete;
    }

    /// <summary>Finds the head (without its final empty line) and checks its size; the reader moves past it when complete.</summary>
    private static HttpHeadStatus TryReadHead(ref SequenceReader<byte> reader, int maxHeadSize, out ReadOnlySequence<byte> head)
    {
        SequenceReader<byte> start = reader;
        if (!reader.TryReadTo(out head, HeadEnd, advancePastDelimiter: true))
        {
            reader = start;
            if (HasBareLineFeed(reader.UnreadSequence))
            {
                return HttpHeadStatus.Invalid; // lines end with CRLF (RFC 9112 §2.2): a bare LF would never end this head
            }

            return reader.Remaining > maxHeadSize ? HttpHeadStatus.TooLarge : HttpHeadStatus.NeedMoreData;
        }

        if (head.Length + 4 > maxHeadSize)
        {
            reader = start;
            return HttpHeadStatus.TooLarge;
        }

        return HttpHeadStatus.Complete;
    }

    /// <summary>The head as one span: the segment itself when it is one (the usual case), else a pooled copy.</summary>
    private static ReadOnlySpan<byte> Contiguous(ReadOnlySequence<byte> head, ref byte[]? rented)
    {
        if (head.IsSingleSegment)
        {
            return head.FirstSpan;
        }

        rented = ArrayPool<byte>.Shared.Rent((int)head.Length);
        head.CopyTo(rented);
        return rented.AsSpan(0, (int)head.Length);
    }

    /// <summary>
    /// Takes the next line (up to CRLF, or the rest). False for a bare CR or LF, or a NUL, anywhere in it
    /// (RFC 9112 §2.2), and for an empty first line.
    /// </summary>
    private static bool TryTakeLine(ref ReadOnlySpan<byte> text, out ReadOnlySpan<byte> line)
    {
        int end = text.IndexOf("\r\n"u8);
        if (end < 0)
        {
            line = text;
            text = default;
        }
        else
        {
            line = text[..end];
            text = text[(end + 2)..];
        }

        return line.IndexOfAny((byte)'\r', (byte)'\n', (byte)0) < 0;
    }

    /// <summary>Lines left in the head (0 when it had only its start line).</summary>
    private static int CountLines(ReadOnlySpan<byte> text) => text.IsEmpty ? 0 : text.Count("\r\n"u8) + 1;

    /// <summary>True when an LF not preceded by CR appears (in the first <see cref="DefaultMaxHeadSize"/> bytes).</summary>
    private static bool HasBareLineFeed(ReadOnlySequence<byte> data)
    {
        byte previous = 0;
        long seen = 0;
        foreach (ReadOnlyMemory<byte> segment in data)
        {
            foreach (byte b in segment.Span)
            {
                if (b == (byte)'\n' && previous != (byte)'\r')
                {
                    return true;
                }

                previous = b;
                if (++seen > DefaultMaxHeadSize)
                {
                    return false;
                }
            }
        }

        return false;
    }

    /// <summary>A field name is a token (RFC 9110 §5.1, §5.6.2): visible ASCII except delimiters.</summary>
    private static bool IsToken(ReadOnlySpan<byte> name)
    {
        foreach (byte c in name)
        {
            if (c is <= (byte)' ' or >= 0x7F or (byte)'"' or (byte)'(' or (byte)')' or (byte)',' or (byte)'/' or (byte)':' or (byte)';'
                or (byte)'<' or (byte)'=' or (byte)'>' or (byte)'?' or (byte)'@' or (byte)'[' or (byte)'\\' or (byte)']' or (byte)'{' or (byte)'}')
            {
                return false;
            }
        }

        return name.Length > 0;
    }

    /// <summary>The field lines after the start line (text without it; empty when there are none).</summary>
    private static bool TryParseFields(ReadOnlySpan<byte> text, out HttpHeaderList? headers)
    {
        headers = new HttpHeaderList();
        while (!text.IsEmpty)
        {
            if (!TryTakeLine(ref text, out ReadOnlySpan<byte> l))
            {
                return false;
            }

            if (l.Length == 0 || l[0] == (byte)' ' || l[0] == (byte)'\t')
            {
                return false; // obsolete line folding is rejected (RFC 9112 §5.2)
            }

            int colon = l.IndexOf((byte)':');
            if (colon <= 0 || l[colon - 1] == (byte)' ' || l[colon - 1] == (byte)'\t')
            {
                return false; // no whitespace between name and colon (RFC 9112 §5.1)
            }

            ReadOnlySpan<byte> name = l[..colon];
            if (!IsToken(name))
            {
                return false; // e.g. non-ASCII bytes in a field name
            }

            ReadOnlySpan<byte> value = l[(colon + 1)..].Trim(" \t"u8);
            headers.Add(KnownText.NameOf(name), KnownText.ValueOf(value));
        }

        return true;
    }

    /// <summary>
    /// The strings of a handshake's usual field names and values, spelled as clients send them: taken instead of new
    /// ones, so a handshake allocates strings only for what varies (its key, host, origin, ...).
    /// </summary>
    private static class KnownText
    {
        private static readonly string[] Names =
        [
            "Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions",
            "Sec-WebSocket-Protocol", "Origin", "User-Agent", "Authorization", "Cookie", "Accept", "Accept-Encoding",
            "Accept-Language", "Cache-Control", "Pragma", "Sec-WebSocket-Accept", "Content-Length", "Content-Type",
            "host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions",
            "sec-websocket-protocol", "origin", "user-agent", "authorization",
        ];

        private static readonly string[] Values =
        [
            "websocket", "Upgrade", "upgrade", "13", "keep-alive, Upgrade", "Upgrade, keep-alive", "no-cache",
            "permessage-deflate; client_max_window_bits", "permessage-deflate",
        ];

        private static readonly byte[][] NameBytes = [.. Names.Select(Encoding.Latin1.GetBytes)];
        private static readonly byte[][] ValueBytes = [.. Values.Select(Encoding.Latin1.GetBytes)];

        public static string NameOf(ReadOnlySpan<byte> name) => Find(name, Names, NameBytes);

        public static string ValueOf(ReadOnlySpan<byte> value) => value.IsEmpty ? string.Empty : Find(value, Values, ValueBytes);

        private static string Find(ReadOnlySpan<byte> text, string[] strings, byte[][] bytes)
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                if (text.SequenceEqual(bytes[i]))
                {
                    return strings[i];
                }
            }

            return Encoding.Latin1.GetString(text);
        }
    }
}
