using System.Globalization;
using System.Text;
using Switchboard.Protocol.Handshake;

namespace Switchboard.Protocol.Extensions;

/// <summary>The agreed permessage-deflate parameters of one connection (RFC 7692 §7.1).</summary>
/// <param name="ServerNoContextTakeover">The server resets its compression context after every message.</param>
/// <param name="ClientNoContextTakeover">The client resets its compression context after every message.</param>
/// <param name="ServerMaxWindowBits">The largest LZ77 window the server compresses with (8–15).</param>
/// <param name="ClientMaxWindowBits">The largest LZ77 window the client compresses with (8–15).</param>
public sealed record DeflateParameters(bool ServerNoContextTakeover, bool ClientNoContextTakeover, int ServerMaxWindowBits, int ClientMaxWindowBits)
{
    /// <summary>The extension token.</summary>
    public const string ExtensionName = "permessage-deflate";

    /// <summary>Formats these parameters as a Sec-WebSocket-Extensions element (the server's response form).</summary>
    public string ToResponseHeader()
    {
        var sb = new StringBuilder(ExtensionName);
        if (ServerNoContextTakeover)
        {
            sb.Append("; server_no_context_takeover");
        }

        if (ClientNoContextTakeover)
        {
            sb.Append("; client_no_context_takeover");
        }

        if (ServerMaxWindowBits < 15)
        {
            sb.Append("; server_max_window_bits=").Append(ServerMaxWindowBits.ToString(CultureInfo.InvariantCulture));
        }

        if (ClientMaxWindowBits < 15)
        {
            sb.Append("; client_max_window_bits=").Append(ClientMaxWindowBits.ToString(CultureInfo.InvariantCulture));
        }

        return sb.ToString();
    }
}

/// <summary>What this server is willing to do; the negotiation picks the first client offer compatible with it.</summary>
public sealed class DeflateServerPolicy
{
    /// <summary>Always reset the server's context per message (lets one compressed frame be shared by every such connection). Default false.</summary>
    public bool ServerNoContextTakeover { get; init; }

    /// <summary>Ask clients to reset their context per message (less memory per connection on the server). Default false.</summary>
    public bool ClientNoContextTakeover { get; init; }

    /// <summary>Largest window the server compresses with (9–15; 8 is raised to 9, as zlib cannot produce raw 8-bit windows). Default 15.</summary>
    public int ServerMaxWindowBits { get; init; } = 15;

    /// <summary>Largest window the server asks clients to use, when they allow it to (9–15). Default 15.</summary>
    public int ClientMaxWindowBits { get; init; } = 15;
}

/// <summary>
/// permessage-deflate negotiation (RFC 7692 §5, §7.1), sans-I/O, both roles: the server picks the first acceptable
/// offer (declining — never failing on — offers it cannot accept); the client builds its offer and checks the
/// server's answer.
/// </summary>
public static class PerMessageDeflateNegotiation
{
    private enum Side { Offer, Response }

    /// <summary>One extension element of a Sec-WebSocket-Extensions list: a name and its parameters (value null when absent).</summary>
    public sealed record ExtensionElement(string Name, IReadOnlyList<KeyValuePair<string, string?>> Parameters);

    /// <summary>Parses a Sec-WebSocket-Extensions value (RFC 6455 §9.1 grammar; quoted values allowed). Null when malformed.</summary>
    public static List<ExtensionElement>? ParseExtensions(string? header)
    {
        var result = new List<ExtensionElement>();
        if (string.IsNullOrWhiteSpace(header))
        {
            return result;
        }

        foreach (string element in SplitOutsideQuotes(header, ','))
        {
            List<string> parts = SplitOutsideQuotes(element, ';');
            string name = parts[0].Trim();
            if (!IsToken(name))
            {
                return null;
            }

            var parameters = new List<KeyValuePair<string, string?>>();
            foreach (string p in parts.Skip(1))
            {
                int eq = p.IndexOf('=', StringComparison.Ordinal);
                string key = (eq < 0 ? p : p[..eq]).Trim();
                string? value = eq < 0 ? null : p[(eq + 1)..].Trim();
                if (value is { Length: >= 2 } && value[0] == '"' && value[^1] == '"')
                {
                    value = value[1..^1];
                }

                if (!IsToken(key) || (value is not null && !IsToken(value)))
                {
                    return null;
                }

                parameters.Add(new(key, value));
            }

            result.Add(new ExtensionElement(name, parameters));
        }

        return result;
    }

    /// <summary>
    /// Server side: the parameters to use for the first permessage-deflate offer in <paramref name="header"/> that is
    /// valid and compatible with <paramref name="policy"/>; null when there is none (the connection runs uncompressed).
    /// </summary>
    public static DeflateParameters? Negotiate(string? header, DeflateServerPolicy policy)
    {
        List<ExtensionElement>? offers = ParseExtensions(header);
        if (offers is null)
        {
            return null;
        }

        foreach (ExtensionElement offer in offers)
        {
            if (offer.Name != DeflateParameters.ExtensionName || !TryRead(offer, Side.Offer, out Parsed p))
            {
                continue; // another extension, or §5: decline this offer, consider the next
            }

            // The server's own window: at most what the client allows (server_max_window_bits), at most our policy.
            int serverBits = Math.Max(9, Math.Min(policy.ServerMaxWindowBits, p.ServerMaxWindowBits ?? 15));
            if (p.ServerMaxWindowBits is int requested && serverBits > requested)
            {
                continue; // the client asked for a window of 8, which zlib cannot honour for raw deflate: decline
            }

            // The client's window: we may only limit it if the client offered client_max_window_bits.
            int clientBits = 15;
            if (p.ClientMaxWindowBitsOffered)
            {
                clientBits = Math.Min(p.ClientMaxWindowBits ?? 15, Math.Max(9, policy.ClientMaxWindowBits));
            }

            return new DeflateParameters(
                ServerNoContextTakeover: p.ServerNoContextTakeover || policy.ServerNoContextTakeover,
                ClientNoContextTakeover: p.ClientNoContextTakeover || policy.ClientNoContextTakeover,
                ServerMaxWindowBits: serverBits,
                ClientMaxWindowBits: clientBits);
        }

        return null;
    }

    /// <summary>Client side: the offer to send. The "no value" client_max_window_bits says the client accepts a limit.</summary>
    public static string BuildOffer(bool clientNoContextTakeover = false) =>
        DeflateParameters.ExtensionName + "; client_max_window_bits" + (clientNoContextTakeover ? "; client_no_context_takeover" : string.Empty);

    /// <summary>
    /// Client side: validates the server's answer to <see cref="BuildOffer"/> (RFC 7692 §5, §7.1.1.2): only
    /// permessage-deflate, once, with valid response parameters. Returns the agreed parameters (null when the server
    /// declined), or an error to fail the connection with.
    /// </summary>
    public static bool TryAcceptResponse(string? header, bool offeredClientNoContextTakeover, out DeflateParameters? parameters, out string? error)
    {
        parameters = null;
        error = null;
        List<ExtensionElement>? elements = ParseExtensions(header);
        if (elements is null)
        {
            error = "Sec-WebSocket-Extensions in the response is malformed.";
            return false;
        }

        if (elements.Count == 0)
        {
            return true;
        }

        if (elements.Count > 1 || elements[0].Name != DeflateParameters.ExtensionName)
        {
            error = "The server selected an extension that was not offered.";
            return false;
        }

        if (!TryRead(elements[0], Side.Response, out Parsed p))
        {
            error = "The server's permessage-deflate parameters are invalid.";
            return false;
        }

        parameters = new DeflateParameters(p.ServerNoContextTakeover, p.ClientNoContextTakeover || offeredClientNoContextTakeover,
            p.ServerMaxWindowBits ?? 15, p.ClientMaxWindowBits ?? 15);
        return true;
    }

    private struct Parsed
    {
        public bool ServerNoContextTakeover;
        public bool ClientNoContextTakeover;
        public int? ServerMaxWindowBits;
        public int? ClientMaxWindowBits;
        public bool ClientMaxWindowBitsOffered;
    }

    private static bool TryRead(ExtensionElement element, Side side, out Parsed parsed)
    {
        parsed = default;
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, value) in element.Parameters)
        {
            if (!seen.Add(key))
            {
                return false; // duplicate parameter (§7)
            }

            switch (key)
            {
                case "server_no_context_takeover" when value is null:
                    parsed.ServerNoContextTakeover = true;
                    break;
                case "client_no_context_takeover" when value is null:
                    parsed.ClientNoContextTakeover = true;
                    break;
                case "server_max_window_bits" when TryBits(value, out int s):
                    parsed.ServerMaxWindowBits = s;
                    break;
                case "client_max_window_bits" when value is null && side == Side.Offer:
                    parsed.ClientMaxWindowBitsOffered = true; // "no value": the client accepts a limit (§7.1.2.2)
                    break;
                case "client_max_window_bits" when TryBits(value, out int c):
                    parsed.ClientMaxWindowBits = c;
                    parsed.ClientMaxWindowBitsOffered = true;
                    break;
                default:
                    return false; // unknown parameter, or a value where none is allowed (or the reverse)
            }
        }

        return true;
    }

    private static bool TryBits(string? value, out int bits)
    {
        bits = 0;
        return value is { Length: 1 or 2 } && value[0] != '0' && int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out bits) && bits is >= 8 and <= 15;
    }

    private static bool IsToken(string s) =>
        s.Length > 0 && s.All(c => c > 0x20 && c < 0x7F && "()<>@,;:\\\"/[]?={}".IndexOf(c) < 0);

    private static List<string> SplitOutsideQuotes(string s, char separator)
    {
        var parts = new List<string>();
        var current = new StringBuilder();
        bool quoted = false;
        foreach (char c in s)
        {
            if (c == '"')
            {
                quoted = !quoted;
            }

            if (c == separator && !quoted)
            {
                parts.Add(current.ToString());
                current.Clear();
            }
            else
            {
                current.Append(c);
            }
        }

        parts.Add(current.ToString());
        return parts;
    }

    /// <summary>The Sec-WebSocket-Extensions header of a request.</summary>
    public static string? OfferedBy(IHeaderSource request) => request.Get("Sec-WebSocket-Extensions");
}
