using System.Diagnostics;
using System.Threading.Channels;

namespace Switchboard.Tests.Shared;

public static class Repo
{
    public static string Root { get; } = FindRoot();

    public static string Path(params string[] parts) => System.IO.Path.Combine([Root, .. parts]);

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(System.IO.Path.Combine(dir.FullName, "Switchboard.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Cannot find the repository root (Switchboard.slnx).");
    }
}

/// <summary>An external peer program (Node, Python): started by a test, ended by its PID when the test ends.</summary>
public sealed class PeerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
    private readonly List<string> _stderr = [];
    private readonly List<(string Text, TaskCompletionSource Seen)> _stderrWaiters = [];

    private PeerProcess(Process process)
    {
        _process = process;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                _lines.Writer.TryComplete();
            }
            else
            {
                _lines.Writer.TryWrite(e.Data);
            }
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is not null)
            {
                lock (_stderr)
                {
                    _stderr.Add(e.Data);
                    foreach (var (text, seen) in _stderrWaiters)
                    {
                        if (e.Data.Contains(text, StringComparison.Ordinal))
                        {
                            seen.TrySetResult();
                        }
                    }
                }
            }
        };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public static PeerProcess Start(string fileName, string workingDirectory, params string[] args) => Start(fileName, workingDirectory, null, args);

    public static PeerProcess Start(string fileName, string workingDirectory, IReadOnlyDictionary<string, string>? environment, params string[] args)
    {
        var psi = new ProcessStartInfo(fileName)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in environment ?? new Dictionary<string, string>())
        {
            psi.Environment[k] = v;
        }

        foreach (string a in args)
        {
            psi.ArgumentList.Add(a);
        }

        return new PeerProcess(Process.Start(psi) ?? throw new InvalidOperationException($"cannot start {fileName}"));
    }

    public int Pid => _process.Id;

    /// <summary>Types a line on the process's standard input.</summary>
    public async Task WriteLineAsync(string line)
    {
        await _process.StandardInput.WriteLineAsync(line);
        await _process.StandardInput.FlushAsync();
    }

    /// <summary>Ends the process's standard input (end of file).</summary>
    public void CloseInput() => _process.StandardInput.Close();

    /// <summary>SIGKILL: the process gets no chance to clean up.</summary>
    public void KillHard() => _process.Kill(entireProcessTree: true);

    /// <summary>SIGTERM: the process is asked to shut down gracefully.</summary>
    public void Terminate()
    {
        using Process kill = Process.Start("kill", ["-TERM", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
        kill.WaitForExit();
    }

    /// <summary>Resident set size of the process, from /proc.</summary>
    public long ResidentBytes()
    {
        foreach (string line in File.ReadLines($"/proc/{Pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
            }
        }

        throw new InvalidOperationException("no VmRSS");
    }

    public string Stderr
    {
        get
        {
            lock (_stderr)
            {
                return string.Join("\n", _stderr);
            }
        }
    }

    /// <summary>Completes when a standard-error line contains <paramref name="text"/> (e.g. "connected to"): at most 90 s.</summary>
    public async Task WaitForStderrAsync(string text)
    {
        Task seen;
        lock (_stderr)
        {
            if (_stderr.Exists(line => line.Contains(text, StringComparison.Ordinal)))
            {
                return;
            }

            var tcs = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _stderrWaiters.Add((text, tcs));
            seen = tcs.Task;
        }

        try
        {
            await seen.WaitAsync(TimeSpan.FromSeconds(90));
        }
        catch (TimeoutException)
        {
            throw new InvalidOperationException($"peer did not print '{text}' on stderr. stderr:\n{Stderr}");
        }
    }

    /// <summary>The next stdout line that starts with <paramref name="prefix"/>.</summary>
    /// <summary>A line of standard output already printed and not yet read, if any.</summary>
    public bool TryReadLine(out string? line) => _lines.Reader.TryRead(out line);

    public async Task<string> ReadLineAsync(string prefix = "")
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        try
        {
            while (true)
            {
                string line = await _lines.Reader.ReadAsync(cts.Token);
                if (line.StartsWith(prefix, StringComparison.Ordinal))
                {
                    return line;
                }
            }
        }
        catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
        {
            throw new InvalidOperationException($"peer ended or timed out before printing '{prefix}'. stderr:\n{Stderr}");
        }
    }

    public async Task<int> WaitForExitAsync()
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    public ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill(entireProcessTree: true);
            }
        }
        catch (InvalidOperationException)
        {
            // already exited
        }

        _process.Dispose();
        return ValueTask.CompletedTask;
    }
}

/// <summary>`switchboard serve` as a separate process (for crash, shutdown and memory tests).</summary>
public static class ServerProcess
{
    /// <summary>The CLI from its own build output (same configuration as the tests).</summary>
    public static string SwitchboardDll
    {
        get
        {
            string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
            return Repo.Path("src", "Switchboard.Cli", "bin", configuration, "net10.0", "switchboard.dll");
        }
    }

    public static int FreePort()
    {
        var l = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        l.Start();
        int port = ((System.Net.IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();
        return port;
    }

    /// <summary>
    /// Starts `switchboard serve` with its defaults, except the per-connection publish rate limit (off): these tests publish
    /// thousands of messages a second from one connection, as no person does. The limit has tests of its own.
    /// </summary>
    public static Task<(PeerProcess Process, int Port)> StartAsync(int port = 0, params string[] args) =>
        StartAsync(new Dictionary<string, string> { ["Switchboard__Hub__PublishRateLimit"] = "0" }, port, args);

    /// <summary>Starts `switchboard serve` on <paramref name="port"/> (a free one when 0) with exactly these extra environment variables (settings like <c>Switchboard__Hub__...</c>) and waits until it listens.</summary>
    public static Task<(PeerProcess Process, int Port)> StartAsync(IReadOnlyDictionary<string, string>? environment, int port = 0, params string[] args) =>
        StartInAsync(AppContext.BaseDirectory, environment, port, args);

    /// <summary>As <see cref="StartAsync(IReadOnlyDictionary{string, string}?, int, string[])"/>, in <paramref name="workingDirectory"/> (where its default database goes).</summary>
    public static async Task<(PeerProcess Process, int Port)> StartInAsync(string workingDirectory, IReadOnlyDictionary<string, string>? environment, int port = 0, params string[] args)
    {
        for (int attempt = 1; ; attempt++)
        {
            int chosen = port == 0 ? FreePort() : port;
            PeerProcess server = PeerProcess.Start("dotnet", workingDirectory, environment, [SwitchboardDll, "serve", "--urls", $"http://127.0.0.1:{chosen}", .. args]);
            try
            {
                await server.ReadLineAsync("info: Microsoft.Hosting.Lifetime[0] Application started");
                return (server, chosen);
            }
            catch (InvalidOperationException ex) when (port == 0 && attempt < 5 && ex.Message.Contains("address already in use", StringComparison.Ordinal))
            {
                // The free port was taken between choosing it and the server binding it (another test's outgoing
                // connection may get it as its ephemeral port): choose another.
                await server.DisposeAsync();
            }
        }
    }
}
