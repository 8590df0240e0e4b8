using System.Diagnostics;

namespace Switchboard.Tests.Shared;

/// <summary>Runs a command-line tool the tests need (initdb, redis-server, redis-cli, ...) to its end.</summary>
public static class Tool
{
    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>; its standard output, or an exception with its error output when it fails.</summary>
    public static async Task<string> RunAsync(string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync();
        Task<string> err = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await p.WaitForExitAsync(cts.Token);
        if (p.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {await err} {await output}");
        }

        return await output;
    }
}
