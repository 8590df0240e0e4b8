namespace Switchboard.Client.Tests;

/// <summary>`dotnet pack` produces the switchboard .NET tool and the libraries; the tool installs and runs.</summary>
public class PackagingTests
{
    private static async Task<(int Code, string Output)> RunAsync(string file, params string[] args)
    {
        var (code, output, error) = await Tool.TryRunAsync(Repo.Root, file, args);
        return (code, output + error);
    }

    [Fact]
    public async Task Packed_tool_installs_into_a_tool_path_and_runs()
    {
        string configuration = AppContext.BaseDirectory.Contains("/Release/", StringComparison.Ordinal) ? "Release" : "Debug";
        string work = Directory.CreateTempSubdirectory("switchboard-pack-").FullName;
        string feed = Path.Combine(work, "feed"), tools = Path.Combine(work, "tools");

        // --no-build: package exactly what was built and tested.
        var (packed, packOutput) = await RunAsync("dotnet", "pack", "Switchboard.slnx", "-c", configuration, "--no-build", "-o", feed);
        Assert.True(packed == 0, packOutput);
        Assert.DoesNotContain("warning", packOutput, StringComparison.OrdinalIgnoreCase); // e.g. the benchmark baseline app is not a package
        string[] packages = [.. Directory.GetFiles(feed, "*.nupkg").Select(Path.GetFileName)!];
        Assert.Equal(
            ["Switchboard.Client.0.1.0.nupkg", "Switchboard.Hub.Messages.0.1.0.nupkg", "Switchboard.Protocol.0.1.0.nupkg", "Switchboard.Tool.0.1.0.nupkg", "Switchboard.WebSockets.0.1.0.nupkg", "Switchboard.WebSockets.AspNetCore.0.1.0.nupkg"],
            packages.Order());

        using (var zip = System.IO.Compression.ZipFile.OpenRead(Path.Combine(feed, "Switchboard.Client.0.1.0.nupkg")))
        {
            Assert.Contains(zip.Entries, e => e.FullName == "README.md");
            Assert.Contains(zip.Entries, e => e.FullName == "lib/net10.0/Switchboard.Client.xml"); // XML docs ship with the library
        }

        var (installed, installOutput) = await RunAsync("dotnet", "tool", "install", "--tool-path", tools, "--add-source", feed, "Switchboard.Tool", "--version", "0.1.0");
        Assert.True(installed == 0, installOutput);
        var (ran, version) = await RunAsync(Path.Combine(tools, "switchboard"), "--version");
        Assert.Equal(0, ran);
        Assert.StartsWith("0.1.0", version.Trim());

        // The installed tool serves the chat UI and the hub.
        int port = ServerProcess.FreePort();
        await using var server = PeerProcess.Start(Path.Combine(tools, "switchboard"), work, "serve", "--store", "memory", "--urls", $"http://127.0.0.1:{port}");
        await server.ReadLineAsync("info: Microsoft.Hosting.Lifetime[0] Application started");
        using var http = new HttpClient();
        Assert.Contains("<title>Switchboard</title>", await http.GetStringAsync($"http://127.0.0.1:{port}/"));
        await using var client = await SwitchboardClient.ConnectAsync(new Uri($"ws://127.0.0.1:{port}"), new() { Name = "packaged" });
        Assert.Equal(1, (await client.PublishAsync("general", "from the installed tool")).Offset);
    }
}
