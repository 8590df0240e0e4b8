using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.FileProviders;

namespace Switchboard.Server;

/// <summary>
/// Finds a configuration file watch that covers the SQLite database. A host that reloads its appsettings.json when it
/// changes (ASP.NET Core's default) watches its content root and every directory under it; with the database there,
/// each write to SQLite's log wakes the watcher's thread — 17–30% of the server's CPU when publishing over 100 rooms
/// (docs/benchmarks.md). <c>serve</c> turns the watch off; an app that hosts Switchboard is told at start.
/// </summary>
internal static class WatchedDatabase
{
    /// <summary>The watched directory that holds <paramref name="databasePath"/>, or null when no watch covers it.</summary>
    public static string? WatchedRoot(IConfiguration configuration, string databasePath)
    {
        string database = Path.GetFullPath(databasePath);
        return configuration is IConfigurationRoot root ? Find(root, database) : null;
    }

    private static string? Find(IConfigurationRoot root, string database)
    {
        foreach (IConfigurationProvider provider in root.Providers)
        {
            switch (provider)
            {
                // A polling provider looks at the one file now and then: no watch on the directory.
                case FileConfigurationProvider { Source: { ReloadOnChange: true, FileProvider: PhysicalFileProvider { UsePollingFileWatcher: false } files } }
                    when database.StartsWith(Path.TrimEndingDirectorySeparator(files.Root) + Path.DirectorySeparatorChar, StringComparison.Ordinal):
                    return files.Root;
                case ChainedConfigurationProvider { Configuration: IConfigurationRoot chained } when Find(chained, database) is { } found:
                    return found;
            }
        }

        return null;
    }
}
