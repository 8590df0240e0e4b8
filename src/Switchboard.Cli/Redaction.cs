using System.Text.RegularExpressions;

namespace Switchboard.Cli;

/// <summary>Addresses as the command prints them: an access token in the query is never written to the terminal or logs.</summary>
internal static partial class Redaction
{
    public static string Redact(Uri url) => Redact(url.ToString());

    public static string Redact(string text) => AccessToken().Replace(text, "$1…");

    [GeneratedRegex("(access_token=)[^&\\s]*", RegexOptions.IgnoreCase)]
    private static partial Regex AccessToken();
}
