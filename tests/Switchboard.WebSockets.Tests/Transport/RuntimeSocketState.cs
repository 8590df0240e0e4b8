using System.Net.Sockets;
using System.Reflection;

namespace Switchboard.WebSockets.Tests.Transport;

/// <summary>
/// Whether the runtime made its asynchronous state for a socket (on Unix: a <c>SocketAsyncContext</c> and its locks,
/// kept for the socket's life). It has no public view, so this reads the safe handle's field; if a runtime renames it,
/// the tests that use this fail here, saying so, rather than pass without looking.
/// </summary>
internal static class RuntimeSocketState
{
    private static readonly FieldInfo AsyncContext = typeof(SafeSocketHandle).GetField("_asyncContext", BindingFlags.NonPublic | BindingFlags.Instance)
        ?? throw new InvalidOperationException("SafeSocketHandle._asyncContext is gone: update RuntimeSocketState for this runtime.");

    public static bool HasAsyncContext(Socket socket) => AsyncContext.GetValue(socket.SafeHandle) is not null;
}
