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
    public static HttpHeadStatus TryParseRequest(ref SequenceReader<byte> reader, out HttpRequestHead? head, int maxHeadSize = DefaultMaxHeadSize, int maxFields = DefaultMaxFields)
    {
        head = null;
        HttpHeadStatus status = TryReadHead(ref reader, maxHeadSize, out string[]? lines);
        if (status != HttpHeadStatus.Complete)
        {
            return status;
        }

        string[] start = lines![0].Split(' ');
        if (start.Length != 3 || start[0].Length == 0 || start[1].Length == 0 || !start[2].StartsWith("HTTP/", StringComparison.Ordinal))
        {
            return HttpHeadStatus.Invalid;
        }

        if (lines.Length - 1 > maxFields)
        {
            return HttpHeadStatus.TooManyFields;
        }

        if (!TryParseFields(lines, out HttpHeaderList? headers))
        {
            return HttpHeadStatus.Invalid;
        }

        head = new HttpRequestHead { Method = start[0], Target = start[1], Version = start[2], Headers = headers! };
        return HttpHeadStatus.Complete;
    }

    /// <summary>Parses a response head.</summary>
    public static HttpHeadStatus TryParseResponse(ref SequenceReader<byte> reader, out HttpResponseHead? head, int maxHeadSize = DefaultMaxHeadSize)
    {
        head = null;
        HttpHeadStatus status = TryReadHead(ref reader, maxHeadSize, out string[]? lines);
        if (status != HttpHeadStatus.Complete)
        {
            return status;
        }

        string line = lines![0];
        int sp1 = line.IndexOf(' ');
        if (sp1 <= 0 || !line.StartsWith("HTTP/", StringComparison.Ordinal))
        {
            return HttpHeadStatus.Invalid;
        }

        int sp2 = line.IndexOf(' ', sp1 + 1);
        string codeText = sp2 < 0 ? line[(sp1 + 1)..] : line[(sp1 + 1)..sp2];
        if (codeText.Length != 3 || !int.TryParse(codeText, System.Globalization.NumberStyles.None, null, out int code))
        {
            return HttpHeadStatus.Invalid;
        }

        if (!TryParseFields(lines, out HttpHeaderList? headers))
        {
            return HttpHeadStatus.Invalid;
        }

        head = new HttpResponseHead { Version = line[..sp1], StatusCode = code, ReasonPhrase = sp2 < 0 ? string.Empty : line[(sp2 + 1)..], Headers = headers! };
        return HttpHeadStatus.Complete;
    }

    private static HttpHeadStatus TryReadHead(ref SequenceReader<byte> reader, int maxHeadSize, out string[]? lines)
    {
        lines = null;
        SequenceReader<byte> start = reader;
        if (!reader.TryReadTo(out ReadOnlySequence<byte> head, HeadEnd, advancePastDelimiter: true))
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

        string text = Encoding.Latin1.GetString(head);
        lines = text.Split("\r\n");
        foreach (string l in lines)
        {
            if (l.Contains('\n') || l.Contains('\r') || l.Contains('\0'))
            {
                return HttpHeadStatus.Invalid; // bare CR or LF (RFC 9112 §2.2)
            }
        }

        return lines[0].Length == 0 ? HttpHeadStatus.Invalid : HttpHeadStatus.Complete;
    }

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
    private static bool IsToken(ReadOnlySpan<char> name)
    {
        foreach (char c in name)
        {
            if (c is <= ' ' or >= (char)0x7F or '"' or '(' or ')' or ',' or '/' or ':' or ';' or '<' or '=' or '>' or '?' or '@' or '[' or '\\' or ']' or '{' or '}')
            {
                return false;
            }
        }

        return name.Length > 0;
    }

    private static bool TryParseFields(string[] lines, out HttpHeaderList? headers)
    {
        headers = new HttpHeaderList();
        for (int i = 1; i < lines.Length; i++)
        {
            string l = lines[i];
            if (l.Length == 0 || l[0] == ' ' || l[0] == '\t')
            {
                return false; // obsolete line folding is rejected (RFC 9112 §5.2)
            }

            int colon = l.IndexOf(':');
            if (colon <= 0 || l[colon - 1] == ' ' || l[colon - 1] == '\t')
            {
                return false; // no whitespace between name and colon (RFC 9112 §5.1)
            }

            if (!IsToken(l.AsSpan(0, colon)))
            {
                return false; // e.g. non-ASCII bytes in a field name
            }

            headers.Add(l[..colon], l[(colon + 1)..].Trim(' ', '\t'));
        }

        return true;
    }
}
