using System.Diagnostics;

namespace Switchboard.Tests.Shared;

/// <summary>Runs a command-line tool the tests need (initdb, redis-server, redis-cli, npm, tsc, ...) to its end.</summary>
public static class Tool
{
    /// <summary>Runs <paramref name="file"/> with <paramref name="args"/>; its standard output, or an exception with its error output when it fails.</summary>
    public static Task<string> RunAsync(string file, params string[] args) => RunInAsync(null, file, args);

    /// <summary>As <see cref="RunAsync"/>, in <paramref name="directory"/>.</summary>
    public static async Task<string> RunInAsync(string? directory, string file, params string[] args)
    {
        var (exitCode, output, error) = await TryRunAsync(directory, file, args);
        if (exitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({exitCode}): {error} {output}");
        }

        return output;
    }

    /// <summary>Runs <paramref name="file"/> in <paramref name="directory"/> (null: the current one) and returns how it ended, whatever the exit code.</summary>
    public static async Task<(int ExitCode, string Output, string Error)> TryRunAsync(string? directory, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        if (directory is not null)
        {
            psi.WorkingDirectory = directory;
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        Task<string> output = p.StandardOutput.ReadToEndAsync();
        Task<string> err = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await output, await err);
    }
}
