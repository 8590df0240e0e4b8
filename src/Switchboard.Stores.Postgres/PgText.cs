namespace Switchboard.Stores.Postgres;

/// <summary>
/// PostgreSQL's text type cannot hold U+0000, which a client may well send (JSON "\u0000"). Strings are stored with a
/// reversible escape instead: U+0000 as U+E000 U+E001 and U+E000 itself as U+E000 U+E000 (a private-use character, so
/// real text almost never needs the second rule). Strings with neither character are stored as they are.
/// </summary>
internal static class PgText
{
    private const char Escape = '\uE000';

    public static string Encode(string value)
    {
        if (value.AsSpan().IndexOfAny('\0', Escape) < 0)
        {
            return value;
        }

        var sb = new System.Text.StringBuilder(value.Length + 8);
        foreach (char c in value)
        {
            _ = c switch
            {
                '\0' => sb.Append(Escape).Append('\uE001'),
                Escape => sb.Append(Escape).Append(Escape),
                _ => sb.Append(c),
            };
        }

        return sb.ToString();
    }

    public static string Decode(string stored)
    {
        if (stored.AsSpan().IndexOf(Escape) < 0)
        {
            return stored;
        }

        var sb = new System.Text.StringBuilder(stored.Length);
        for (int i = 0; i < stored.Length; i++)
        {
            if (stored[i] == Escape && i + 1 < stored.Length)
            {
                i++;
                sb.Append(stored[i] == '\uE001' ? '\0' : stored[i]);
            }
            else
            {
                sb.Append(stored[i]);
            }
        }

        return sb.ToString();
    }
}
