namespace Switchboard.Hub.UnitTests;

public class RecentMessagesUnitTests
{
    private static readonly DateTimeOffset T0 = new(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);

    private static StoredMessage Msg(long offset, string text = "hi") => new(offset, "id" + offset, "user", "Name", text, T0.AddTicks(offset));

    private static long[] Offsets(RecentMessages cache, long after = 0) => [.. cache.After(after).Select(m => m.Offset)];

    [Fact]
    public void Messages_come_back_exactly_oldest_first_after_a_cursor()
    {
        var cache = new RecentMessages(256, 1 << 20);
        var odd = new StoredMessage(1, "id-κ", "user-λ", "Zoë 😀", "nul \0, a lone surrogate \ud800 and 你好", new DateTimeOffset(2026, 11, 30, 13, 4, 5, 678, TimeSpan.FromHours(-5)).AddTicks(1234));
        cache.Add(odd);
        for (long i = 2; i <= 10; i++)
        {
            cache.Add(Msg(i));
        }

        StoredMessage back = cache.After(0).First();
        Assert.Equal(odd, back);
        Assert.Equal(odd.Time.Offset, back.Time.Offset);
        Assert.Equal(odd.Time.Ticks, back.Time.Ticks);
        Assert.Equal([8L, 9, 10], Offsets(cache, 7));
        Assert.True(cache.TryGetOldest(out long oldest));
        Assert.Equal(1, oldest);
    }

    [Fact]
    public void The_count_bound_drops_the_oldest()
    {
        var cache = new RecentMessages(10, 1 << 20);
        for (long i = 1; i <= 1000; i++)
        {
            cache.Add(Msg(i));
        }

        Assert.Equal(10, cache.Count);
        Assert.Equal(Enumerable.Range(991, 10).Select(i => (long)i), Offsets(cache));
    }

    [Fact]
    public void The_byte_bound_holds_while_the_ring_wraps_with_messages_of_every_size()
    {
        const int Bound = 64 * 1024;
        var cache = new RecentMessages(100_000, Bound);
        var random = new Random(7);
        var texts = new Dictionary<long, string>();
        for (long i = 1; i <= 5000; i++)
        {
            string text = new((char)('a' + (i % 26)), random.Next(0, 3000));
            texts[i] = text;
            cache.Add(Msg(i, text));
            Assert.True(cache.Capacity <= Bound);

            // Whatever is held is the newest messages, contiguous, each exactly as added.
            StoredMessage[] held = [.. cache.After(0)];
            Assert.Equal(i, held[^1].Offset);
            Assert.Equal(Enumerable.Range(0, held.Length).Select(k => i - held.Length + 1 + k), held.Select(m => m.Offset));
            Assert.Equal(texts[held[0].Offset], held[0].Text);
            Assert.True(held.Sum(m => 28 + (2 * (m.Id.Length + m.UserId.Length + m.Name.Length + m.Text.Length))) <= Bound);
        }

        Assert.Equal(Bound, cache.Capacity); // it grew to the bound and no further
        Assert.True(cache.Count >= 10, $"{cache.Count} held"); // ~3 KB a message on average: the ring is not left mostly empty
    }

    [Fact]
    public void A_message_larger_than_the_byte_bound_empties_the_cache()
    {
        var cache = new RecentMessages(256, 10_000);
        cache.Add(Msg(1));
        cache.Add(Msg(2));
        cache.Add(Msg(3, new string('x', 6000))); // 12,000 bytes as UTF-16
        Assert.Equal(0, cache.Count);
        Assert.False(cache.TryGetOldest(out _));

        cache.Add(Msg(4));
        Assert.Equal([4L], Offsets(cache));
    }

    [Fact]
    public void Retention_drops_a_prefix_and_clearing_keeps_the_ring()
    {
        var cache = new RecentMessages(256, 1 << 20);
        for (long i = 1; i <= 20; i++)
        {
            cache.Add(Msg(i));
        }

        cache.DropBefore(15);
        Assert.Equal([15L, 16, 17, 18, 19, 20], Offsets(cache));
        int capacity = cache.Capacity;
        cache.Clear();
        Assert.Equal(0, cache.Count);
        Assert.Equal(capacity, cache.Capacity);
        cache.Add(Msg(1));
        Assert.Equal([1L], Offsets(cache));
    }

    [Fact]
    public void A_zero_bound_holds_nothing()
    {
        var none = new RecentMessages(0, 1 << 20);
        none.Add(Msg(1));
        Assert.Equal(0, none.Count);
        var noBytes = new RecentMessages(256, 0);
        noBytes.Add(Msg(1));
        Assert.Equal(0, noBytes.Count);
    }
}
