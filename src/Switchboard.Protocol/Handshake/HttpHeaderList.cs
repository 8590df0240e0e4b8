namespace Switchboard.Protocol.Handshake;

/// <summary>Read access to request or response headers, by case-insensitive name.</summary>
public interface IHeaderSource
{
    /// <summary>All values of <paramref name="name"/> joined with ", " (RFC 9110 §5.3), or null when absent.</summary>
    string? Get(string name);
}

/// <summary>An ordered list of header fields as they appeared on the wire.</summary>
internal sealed class HttpHeaderList : IHeaderSource
{
    private readonly List<KeyValuePair<string, string>> _fields = new(12); // a browser's handshake has about a dozen

    /// <summary>The fields in wire order.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Fields => _fields;

    /// <summary>Adds a field.</summary>
    public void Add(string name, string value) => _fields.Add(new(name, value));

    /// <inheritdoc />
    public string? Get(string name)
    {
        string? result = null;
        foreach (var (key, value) in _fields)
        {
            if (string.Equals(key, name, StringComparison.OrdinalIgnoreCase))
            {
                result = result is null ? value : result + ", " + value;
            }
        }

        return result;
    }
}

/// <summary>Helpers for comma-separated header values (RFC 9110 §5.6.1).</summary>
public static class HeaderTokens
{
    /// <summary>Splits a comma-separated list into trimmed, non-empty elements.</summary>
    public static List<string> Split(string? value)
    {
        var list = new List<string>();
        if (value is null)
        {
            return list;
        }

        foreach (string part in value.Split(','))
        {
            string t = part.Trim(' ', '\t');
            if (t.Length > 0)
            {
                list.Add(t);
            }
        }

        return list;
    }

    /// <summary>True if the comma-separated list contains <paramref name="token"/> (case-insensitive).</summary>
    public static bool Contains(string? value, string token)
    {
        if (value is null)
        {
            return false;
        }

        foreach (Range part in value.AsSpan().Split(','))
        {
            if (value.AsSpan(part).Trim(" \t").Equals(token, StringComparison.OrdinalIgnoreCase))
            {
                return true;
            }
        }

        return false;
    }
}
