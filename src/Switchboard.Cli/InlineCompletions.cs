namespace Switchboard.Cli;

/// <summary>
/// The runtime's switch for running socket completions on its epoll thread instead of hopping to the thread pool
/// (docs/architecture.md, "Inline I/O"). It is a process setting, not a server's: the runtime reads it once, when its
/// socket engine starts, and it then applies to every socket in the process — every server, client and library.
/// That is why only the programs (`switchboard serve`, `switchboard bench`) set it, before their first socket, and
/// the libraries never do: an app hosting the hub decides for its own process. Kestrel's
/// <c>UnsafePreferInlineScheduling</c>, in contrast, is per server.
/// </summary>
internal static class InlineCompletions
{
    private const string Variable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Turns inline completions on, unless the environment already decided either way.</summary>
    public static void EnableUnlessSet()
    {
        if (Environment.GetEnvironmentVariable(Variable) is null)
        {
            Environment.SetEnvironmentVariable(Variable, "1");
        }
    }
}
