using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Microsoft.Extensions.Options;

namespace Switchboard.Server;

/// <summary>
/// The console logger for the text format, without support for logging scopes. The text format never prints
/// scopes, yet a provider that supports them makes the logger factory keep a scope stack, and Kestrel opens a scope
/// for every connection it runs: a scope object, the connection's scope state and an execution context holding them,
/// about 150 bytes kept for the life of every connection. The JSON format keeps scopes (it prints them).
/// </summary>
internal sealed class ScopelessLoggerProvider(ILoggerProvider inner) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => inner.CreateLogger(categoryName);

    public void Dispose() => inner.Dispose();

    /// <summary>Replaces the console provider that <c>AddSimpleConsole</c> registered with this wrapper around it.</summary>
    public static void WrapConsole(IServiceCollection services)
    {
        ServiceDescriptor? console = services.FirstOrDefault(d => d.ServiceType == typeof(ILoggerProvider) && d.ImplementationType == typeof(ConsoleLoggerProvider));
        if (console is null)
        {
            return;
        }

        services.Remove(console);
        services.AddSingleton<ILoggerProvider>(sp => new ScopelessLoggerProvider(
            new ConsoleLoggerProvider(sp.GetRequiredService<IOptionsMonitor<ConsoleLoggerOptions>>(), sp.GetServices<ConsoleFormatter>())));
    }
}
