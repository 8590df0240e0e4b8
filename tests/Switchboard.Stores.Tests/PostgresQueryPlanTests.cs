using System.Text.Json;
using Npgsql;
using Switchboard.Hub;
using Switchboard.Stores.Postgres;

namespace Switchboard.Stores.Tests;

/// <summary>How PostgreSQL runs the store's statements on a room with a history (what the contract suite cannot see).</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresQueryPlanTests(PostgresServer server)
{
    [Fact]
    public async Task A_batchs_retry_lookup_probes_the_index_per_id_instead_of_reading_the_rooms_history()
    {
        string cs = await server.CreateDatabaseAsync();
        await using (PostgresMessageStore store = await PostgresMessageStore.OpenAsync(cs))
        {
            for (int b = 0; b < 20; b++)
            {
                await store.AppendAsync("r", [.. Enumerable.Range(0, 256).Select(i => new NewMessage($"{b}-{i}", "u", "n", "t", DateTimeOffset.UnixEpoch))]);
            }
        }

        await using NpgsqlDataSource data = NpgsqlDataSource.Create(cs);
        await using (NpgsqlCommand analyze = data.CreateCommand("ANALYZE switchboard_messages"))
        {
            await analyze.ExecuteNonQueryAsync(); // the statistics a long-running database has
        }

        await using NpgsqlCommand explain = data.CreateCommand("EXPLAIN (FORMAT JSON) " + PostgresAppendWriter.FindStoredSql);
        explain.Parameters.AddWithValue(Enumerable.Repeat("r", 256).ToArray());
        explain.Parameters.AddWithValue(Enumerable.Repeat("u", 256).ToArray());
        explain.Parameters.AddWithValue(Enumerable.Range(0, 256).Select(i => $"new-{i}").ToArray());
        using JsonDocument plan = JsonDocument.Parse((string)(await explain.ExecuteScalarAsync())!);

        var scans = new List<string>();
        Collect(plan.RootElement[0].GetProperty("Plan"), scans);
        Assert.NotEmpty(scans);
        Assert.All(scans, scan => Assert.Equal("Index Scan", scan));
    }

    /// <summary>The node types of every plan node that reads the messages table.</summary>
    private static void Collect(JsonElement node, List<string> scans)
    {
        if (node.TryGetProperty("Relation Name", out JsonElement relation) && relation.GetString() == "switchboard_messages")
        {
            scans.Add(node.GetProperty("Node Type").GetString()!);
        }

        if (node.TryGetProperty("Plans", out JsonElement children))
        {
            foreach (JsonElement child in children.EnumerateArray())
            {
                Collect(child, scans);
            }
        }
    }
}
