using Microsoft.Extensions.Time.Testing;
using Switchboard.Hub.Messages;

namespace Switchboard.Hub.UnitTests;

/// <summary>Message ids sort by the time they were made (what keeps the stores' idempotency index appending).</summary>
public sealed class MessageIdsUnitTests
{
    private static long Milliseconds(string id) => Convert.ToInt64(id[..12], 16);

    [Fact]
    public void An_id_is_a_version_7_uuid_in_32_hex_digits_beginning_with_its_milliseconds()
    {
        var t = new DateTimeOffset(2026, 12, 1, 5, 0, 0, 123, TimeSpan.Zero);
        string id = MessageIds.New(t);
        Assert.Matches("^[0-9a-f]{12}7[0-9a-f]{3}[89ab][0-9a-f]{15}$", id);
        Assert.Equal(t.ToUnixTimeMilliseconds(), Milliseconds(id));
    }

    [Fact]
    public void Ids_sort_by_the_time_they_were_made_and_never_repeat()
    {
        var random = new Random(7);
        long start = new DateTimeOffset(2020, 1, 1, 0, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        var made = new List<(long Ms, string Id)>();
        for (int i = 0; i < 5_000; i++)
        {
            long ms = start + random.NextInt64(0, 20L * 365 * 24 * 3600 * 1000); // twenty years: every leading digit moves
            made.Add((ms, MessageIds.New(DateTimeOffset.FromUnixTimeMilliseconds(ms))));
        }

        for (int i = 0; i < 1_000; i++)
        {
            made.Add((start, MessageIds.New(DateTimeOffset.FromUnixTimeMilliseconds(start)))); // many in one millisecond
        }

        Assert.Equal(made.Count, made.Select(m => m.Id).Distinct().Count());
        long[] inIdOrder = [.. made.OrderBy(m => m.Id, StringComparer.Ordinal).Select(m => m.Ms)];
        long[] inTimeOrder = [.. made.Select(m => m.Ms).Order()];
        Assert.Equal(inTimeOrder, inIdOrder);
    }

    [Fact]
    public async Task A_message_published_without_an_id_gets_one_from_the_hubs_clock()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 12, 1, 5, 0, 0, TimeSpan.Zero));
        await using var hub = new Hub(new InMemoryMessageStore(), new HubOptions { Time = time });
        var from = new HubIdentity("api", "api");
        AppendResult first = await hub.PublishAsync("ids", from, "first");
        time.Advance(TimeSpan.FromMilliseconds(1));
        AppendResult second = await hub.PublishAsync("ids", from, "second");

        Assert.Equal(time.GetUtcNow().ToUnixTimeMilliseconds() - 1, Milliseconds(first.Message.Id));
        Assert.Equal(time.GetUtcNow().ToUnixTimeMilliseconds(), Milliseconds(second.Message.Id));
        Assert.True(string.CompareOrdinal(first.Message.Id, second.Message.Id) < 0);
    }
}
