namespace Switchboard.Cli;

/// <summary>
/// The runtime's switch for running socket completions on its epoll thread instead of hopping to the thread pool
/// (docs/architecture.md, "Inline I/O"). Read by the socket engine when it starts, so set before the first socket.
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
