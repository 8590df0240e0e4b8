using Switchboard.Tests.Shared;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Npgsql;

namespace Switchboard.Stores.Tests;

/// <summary>
/// A throwaway PostgreSQL server: initdb into a temp directory, started on a free loopback port with its socket in
/// that directory, stopped and deleted at the end. Uses Debian's postgresql binaries (./test.sh installs them).
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private readonly string _dir = Directory.CreateTempSubdirectory("switchboard-pg-").FullName;
    private string _bin = "";

    public int Port { get; private set; }

    public string ConnectionString(string database) =>
        new NpgsqlConnectionStringBuilder { Host = "127.0.0.1", Port = Port, Username = "postgres", Database = database, Pooling = true }.ToString();

    /// <summary>A fresh, empty database.</summary>
    public async Task<string> CreateDatabaseAsync()
    {
        string name = "t_" + Guid.NewGuid().ToString("N");
        await using var c = new NpgsqlConnection(ConnectionString("postgres"));
        await c.OpenAsync();
        await using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", c);
        await cmd.ExecuteNonQueryAsync();
        return ConnectionString(name);
    }

    public async Task InitializeAsync()
    {
        string? root = Directory.Exists("/usr/lib/postgresql") ? Directory.GetDirectories("/usr/lib/postgresql").OrderDescending().FirstOrDefault() : null;
        if (root is null || !File.Exists(Path.Combine(root, "bin", "initdb")))
        {
            throw new InvalidOperationException("PostgreSQL is not installed (Debian package postgresql); ./test.sh installs it.");
        }

        _bin = Path.Combine(root, "bin");
        var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        Port = ((IPEndPoint)l.LocalEndpoint).Port;
        l.Stop();

        if (Environment.UserName == "root")
        {
            await Tool.RunAsync("chown", "-R", "postgres:postgres", _dir);
        }

        await RunAsPostgresAsync(Path.Combine(_bin, "initdb"), "-D", Path.Combine(_dir, "data"), "-A", "trust", "-U", "postgres", "--no-sync");
        await RunAsPostgresAsync(Path.Combine(_bin, "pg_ctl"), "-D", Path.Combine(_dir, "data"), "-w", "-l", Path.Combine(_dir, "log"),
            "-o", $"-p {Port} -k {_dir} -c listen_addresses=127.0.0.1 -c fsync=on", "start");
    }

    public async Task DisposeAsync()
    {
        try
        {
            await RunAsPostgresAsync(Path.Combine(_bin, "pg_ctl"), "-D", Path.Combine(_dir, "data"), "-m", "immediate", "-w", "stop");
        }
        finally
        {
            Directory.Delete(_dir, recursive: true);
        }
    }

    private Task RunAsPostgresAsync(string file, params string[] args) =>
        Environment.UserName == "root" ? Tool.RunAsync("runuser", ["-u", "postgres", "--", file, .. args]) : Tool.RunAsync(file, args);

}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
