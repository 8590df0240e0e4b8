namespace Switchboard.Stores.Tests;

[Collection(PostgresCollection.Name)]
public sealed class PostgresStoreContractTests(PostgresServer server) : MessageStoreContractTests
{
    private string? _connectionString;

    protected override async Task<Hub.IMessageStore> CreateAsync()
    {
        _connectionString = await server.CreateDatabaseAsync();
        return await Postgres.PostgresMessageStore.OpenAsync(_connectionString);
    }

    protected override async Task<Hub.IMessageStore?> ReopenAsync() => await Postgres.PostgresMessageStore.OpenAsync(_connectionString!);
}
