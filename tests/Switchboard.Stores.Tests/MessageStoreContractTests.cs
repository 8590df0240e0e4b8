using Switchboard.Hub;

namespace Switchboard.Stores.Tests;

/// <summary>
/// The <see cref="IMessageStore"/> contract, run against every implementation (memory, SQLite, PostgreSQL).
/// </summary>
public abstract class MessageStoreContractTests : IAsyncLifetime
{
    protected IMessageStore Store { get; private set; } = null!;

    /// <summary>Creates a fresh, empty store.</summary>
    protected abstract Task<IMessageStore> CreateAsync();

    /// <summary>Reopens the same storage as a new instance (a restart); null for stores that do not persist.</summary>
    protected abstract Task<IMessageStore?> ReopenAsync();

    public async Task InitializeAsync() => Store = await CreateAsync();

    public async Task DisposeAsync() => await Store.DisposeAsync();

    private static readonly DateTimeOffset T0 = new(2026, 1, 1, 12, 0, 0, TimeSpan.Zero);

    private static NewMessage Msg(string id, string user = "u", string text = "t", DateTimeOffset? time = null) => new(id, user, "Name " + user, text + id, time ?? T0);

    [Fact]
    public async Task New_room_starts_empty_with_an_epoch()
    {
        RoomState s = await Store.OpenRoomAsync("r");
        Assert.Equal(0, s.Head);
        Assert.Equal(1, s.First);
        Assert.False(string.IsNullOrEmpty(s.Epoch));
        Assert.Equal(s, await Store.OpenRoomAsync("r"));
    }

    [Fact]
    public async Task Offsets_are_dense_and_increasing_per_room_across_batches()
    {
        await Store.AppendAsync("a", [Msg("1"), Msg("2")]);
        await Store.AppendAsync("b", [Msg("1")]);
        IReadOnlyList<AppendResult> r = await Store.AppendAsync("a", [Msg("3"), Msg("4"), Msg("5")]);
        Assert.Equal(new long[] { 3, 4, 5 }, r.Select(x => x.Message.Offset));
        Assert.All(r, x => Assert.False(x.Duplicate));
        Assert.Equal(5, (await Store.OpenRoomAsync("a")).Head);
        Assert.Equal(1, (await Store.OpenRoomAsync("b")).Head);
        IReadOnlyList<StoredMessage> all = await Store.ReadAfterAsync("a", 0, 100);
        Assert.Equal(new long[] { 1, 2, 3, 4, 5 }, all.Select(m => m.Offset));
        Assert.Equal(new[] { "t1", "t2", "t3", "t4", "t5" }, all.Select(m => m.Text));
    }

    [Fact]
    public async Task Fields_round_trip_including_unicode_and_millisecond_time()
    {
        DateTimeOffset time = new(2026, 11, 22, 3, 4, 5, 678, TimeSpan.Zero);
        await Store.AppendAsync("r", [new NewMessage("id-κ", "user-λ", "Zoë 😀", "text with 'quotes' and \"dq\" and 你好", time)]);
        StoredMessage m = (await Store.ReadAfterAsync("r", 0, 1))[0];
        Assert.Equal(new StoredMessage(1, "id-κ", "user-λ", "Zoë 😀", "text with 'quotes' and \"dq\" and 你好", time), m);
    }

    [Fact]
    public async Task Control_characters_including_nul_round_trip()
    {
        // Valid text a client can send (JSON "\u0000"): PostgreSQL's text type cannot hold NUL, SQLite's can. (U+E000 is
        // the character the PostgreSQL store escapes with: it must come back as itself, too.)
        string text = "a\0b\u0001\u001f\u007f\r\n\t\u2028\u200b\ufeff \ue000\ue001 \ue000\0\ue000\ue000 \0\0z\ue000";
        await Store.AppendAsync("r", [new NewMessage("id\0x", "user\0y", "Na\0me\ue000", text, T0)]);
        StoredMessage m = (await Store.ReadAfterAsync("r", 0, 1))[0];
        Assert.Equal(new StoredMessage(1, "id\0x", "user\0y", "Na\0me\ue000", text, T0), m);
        IReadOnlyList<AppendResult> again = await Store.AppendAsync("r", [new NewMessage("id\0x", "user\0y", "Na\0me", text, T0)]);
        Assert.True(again[0].Duplicate);
        Assert.Equal(m, again[0].Message); // the stored message, as stored
    }

    [Fact]
    public async Task Long_fields_round_trip_and_their_retry_is_recognised()
    {
        // Past any small buffer a store may encode into: fields mixing one-, two-, three- and four-byte UTF-8 (the last
        // as surrogate pairs) — the id at the hub's longest (128), user and name longer, the text at 60,000 characters.
        static string Mixed(string tag, int characters)
        {
            var text = new System.Text.StringBuilder(tag);
            while (text.Length < characters)
            {
                text.Append("aé€😀");
            }

            text.Length = characters;
            if (char.IsHighSurrogate(text[^1]))
            {
                text[^1] = 'z'; // a pair cut in two is not text
            }

            return text.ToString();
        }

        var message = new NewMessage(Mixed("id", 128), Mixed("user", 300), Mixed("name", 2_000), Mixed("text", 60_000), T0);
        await Store.AppendAsync("r", [message]);
        StoredMessage m = (await Store.ReadAfterAsync("r", 0, 1))[0];
        Assert.Equal(new StoredMessage(1, message.Id, message.UserId, message.Name, message.Text, T0), m);
        IReadOnlyList<AppendResult> again = await Store.AppendAsync("r", [message with { Text = "retry" }]);
        Assert.True(again[0].Duplicate);
        Assert.Equal(m, again[0].Message);
    }

    [Fact]
    public async Task Appends_are_idempotent_per_room_user_and_id()
    {
        AppendResult first = (await Store.AppendAsync("r", [Msg("x", text: "original")]))[0];
        IReadOnlyList<AppendResult> again = await Store.AppendAsync("r", [Msg("y"), Msg("x", text: "retry"), Msg("x", user: "other")]);
        Assert.Equal((2L, false), (again[0].Message.Offset, again[0].Duplicate));
        Assert.True(again[1].Duplicate);
        Assert.Equal(first.Message, again[1].Message);
        Assert.Equal((3L, false), (again[2].Message.Offset, again[2].Duplicate)); // another user's id is another message
        Assert.False((await Store.AppendAsync("other-room", [Msg("x")]))[0].Duplicate);
        IReadOnlyList<AppendResult> inOneBatch = await Store.AppendAsync("r", [Msg("z"), Msg("z")]);
        Assert.False(inOneBatch[0].Duplicate);
        Assert.True(inOneBatch[1].Duplicate);
        Assert.Equal(inOneBatch[0].Message.Offset, inOneBatch[1].Message.Offset);
        Assert.Equal(4, (await Store.OpenRoomAsync("r")).Head);
    }

    [Fact]
    public async Task Paging_forwards_and_backwards_is_stable_and_bounded()
    {
        await Store.AppendAsync("r", [.. Enumerable.Range(1, 25).Select(i => Msg(i.ToString(System.Globalization.CultureInfo.InvariantCulture)))]);
        Assert.Equal(new long[] { 11, 12, 13 }, (await Store.ReadAfterAsync("r", 10, 3)).Select(m => m.Offset));
        Assert.Empty(await Store.ReadAfterAsync("r", 25, 10));
        Assert.Equal(new long[] { 21, 22, 23, 24, 25 }, (await Store.ReadBeforeAsync("r", long.MaxValue, 5)).Select(m => m.Offset));
        Assert.Equal(new long[] { 5, 6, 7, 8, 9 }, (await Store.ReadBeforeAsync("r", 10, 5)).Select(m => m.Offset));
        Assert.Equal(new long[] { 1, 2 }, (await Store.ReadBeforeAsync("r", 3, 10)).Select(m => m.Offset));
        Assert.Equal((await Store.ReadAfterAsync("r", 3, 7)).Select(m => m.Offset), (await Store.ReadAfterAsync("r", 3, 7)).Select(m => m.Offset));
        Assert.Empty(await Store.ReadAfterAsync("nowhere", 0, 10));
    }

    [Fact]
    public async Task Reads_stay_inside_their_room_whatever_the_offset()
    {
        await Store.AppendAsync("a", [Msg("a1"), Msg("a2")]);
        await Store.AppendAsync("b", [Msg("b1"), Msg("b2")]);
        await Store.AppendAsync("c", [Msg("c1")]);
        Assert.Equal(["b1", "b2"], (await Store.ReadAfterAsync("b", long.MinValue, 10)).Select(m => m.Id));
        Assert.Equal(["b1", "b2"], (await Store.ReadBeforeAsync("b", long.MaxValue, 10)).Select(m => m.Id));
        Assert.Empty(await Store.ReadAfterAsync("b", long.MaxValue, 10));
        Assert.Empty(await Store.ReadBeforeAsync("b", long.MinValue, 10));
        Assert.Empty(await Store.ReadBeforeAsync("b", 1, 10));
    }

    [Fact]
    public async Task Retention_by_count_and_age_removes_only_a_prefix()
    {
        await Store.AppendAsync("r", [.. Enumerable.Range(1, 20).Select(i => Msg(i.ToString(System.Globalization.CultureInfo.InvariantCulture), time: T0.AddMinutes(i)))]);
        RoomState s = await Store.TrimAsync("r", new RetentionPolicy(15, null), T0);
        Assert.Equal((20L, 6L), (s.Head, s.First));
        Assert.Equal(6, (await Store.ReadAfterAsync("r", 0, 100))[0].Offset);
        s = await Store.TrimAsync("r", new RetentionPolicy(null, TimeSpan.FromMinutes(5)), T0.AddMinutes(15));
        Assert.Equal(10, s.First); // messages at minutes 10..20 are within 5 minutes of minute 15
        Assert.Equal(new long[] { 10, 11 }, (await Store.ReadAfterAsync("r", 0, 2)).Select(m => m.Offset));
        s = await Store.TrimAsync("r", new RetentionPolicy(100, null), T0.AddMinutes(15));
        Assert.Equal(10, s.First); // never grows back
        Assert.Equal(21, (await Store.AppendAsync("r", [Msg("21")]))[0].Message.Offset); // offsets continue, never reused
        Assert.Equal(s with { Head = 21 }, await Store.OpenRoomAsync("r"));
    }

    [Fact]
    public async Task Reset_deletes_the_history_and_its_ids_and_starts_a_new_epoch_from_offset_1()
    {
        await Store.AppendAsync("r", [Msg("1"), Msg("2"), Msg("3")]);
        await Store.AppendAsync("other", [Msg("1")]);
        await Store.TrimAsync("r", new RetentionPolicy(2, null), T0);
        RoomState before = await Store.OpenRoomAsync("r");

        RoomState after = await Store.ResetAsync("r");
        Assert.NotEqual(before.Epoch, after.Epoch);
        Assert.Equal((0L, 1L), (after.Head, after.First));
        Assert.Equal(after, await Store.OpenRoomAsync("r"));
        Assert.Empty(await Store.ReadAfterAsync("r", 0, 10));
        Assert.Empty(await Store.ReadBeforeAsync("r", long.MaxValue, 10));

        IReadOnlyList<AppendResult> again = await Store.AppendAsync("r", [Msg("2"), Msg("4")]);
        Assert.Equal(new[] { (1L, false), (2L, false) }, again.Select(a => (a.Message.Offset, a.Duplicate))); // the old ids are gone too
        Assert.Equal(new[] { "t2", "t4" }, (await Store.ReadAfterAsync("r", 0, 10)).Select(m => m.Text));
        Assert.Equal(after with { Head = 2 }, await Store.OpenRoomAsync("r"));
        Assert.Single(await Store.ReadAfterAsync("other", 0, 10)); // other rooms keep theirs
        Assert.Contains("r", await Store.ListRoomsAsync());

        RoomState created = await Store.ResetAsync("never-used");
        Assert.Equal((0L, 1L), (created.Head, created.First));
    }

    [Fact]
    public async Task Rooms_are_listed()
    {
        await Store.OpenRoomAsync("alpha");
        await Store.AppendAsync("beta", [Msg("1")]);
        Assert.Equal(new[] { "alpha", "beta" }, (await Store.ListRoomsAsync()).Order());
    }

    [Fact]
    public async Task Concurrent_appends_to_many_rooms_keep_every_room_dense()
    {
        const int rooms = 8, per = 200;
        await Task.WhenAll(Enumerable.Range(0, rooms).Select(async r =>
        {
            for (int i = 0; i < per; i += 10)
            {
                await Store.AppendAsync("room" + r, [.. Enumerable.Range(i, 10).Select(k => Msg("m" + k))]);
            }
        }));
        for (int r = 0; r < rooms; r++)
        {
            IReadOnlyList<StoredMessage> all = await Store.ReadAfterAsync("room" + r, 0, 1000);
            Assert.Equal(Enumerable.Range(1, per).Select(i => (long)i), all.Select(m => m.Offset));
            Assert.Equal(Enumerable.Range(0, per).Select(i => "m" + i), all.Select(m => m.Id));
        }
    }

    [Fact]
    public async Task A_store_that_applies_appends_in_issue_order_does_so_while_they_are_in_flight()
    {
        if (!Store.AppendsInIssueOrder)
        {
            return; // the hub issues one append per room at a time to such a store
        }

        // Issued one after another without waiting, interleaved with another room's.
        var ordered = new List<Task<IReadOnlyList<AppendResult>>>();
        var other = new List<Task<IReadOnlyList<AppendResult>>>();
        for (int i = 0; i < 50; i++)
        {
            ordered.Add(Store.AppendAsync("ordered", [Msg("a" + i), Msg("b" + i)]).AsTask());
            other.Add(Store.AppendAsync("other", [Msg("c" + i)]).AsTask());
        }

        IReadOnlyList<AppendResult>[] results = await Task.WhenAll(ordered);
        for (int i = 0; i < 50; i++)
        {
            Assert.Equal([(2L * i) + 1, (2L * i) + 2], results[i].Select(r => r.Message.Offset));
            Assert.Equal(["a" + i, "b" + i], results[i].Select(r => r.Message.Id));
        }

        Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), (await Task.WhenAll(other)).Select(r => r[0].Message.Offset));
    }

    [Fact]
    public async Task History_epoch_and_idempotency_survive_a_restart()
    {
        await Store.AppendAsync("r", [Msg("1"), Msg("2")]);
        await Store.TrimAsync("r", new RetentionPolicy(1, null), T0);
        RoomState before = await Store.OpenRoomAsync("r");
        await Store.DisposeAsync();
        IMessageStore? reopened = await ReopenAsync();
        if (reopened is null)
        {
            Store = await CreateAsync();
            return; // not a persistent store
        }

        Store = reopened;
        Assert.Equal(before, await Store.OpenRoomAsync("r"));
        Assert.Equal(new[] { "2" }, (await Store.ReadAfterAsync("r", 0, 10)).Select(m => m.Id));
        Assert.True((await Store.AppendAsync("r", [Msg("2")]))[0].Duplicate);
        Assert.Equal(3, (await Store.AppendAsync("r", [Msg("3")]))[0].Message.Offset);

        RoomState reset = await Store.ResetAsync("r");
        await Store.DisposeAsync();
        Store = (await ReopenAsync())!;
        Assert.Equal(reset, await Store.OpenRoomAsync("r")); // a reset is durable
        Assert.Empty(await Store.ReadAfterAsync("r", 0, 10));
    }
}

public sealed class InMemoryStoreContractTests : MessageStoreContractTests
{
    protected override Task<IMessageStore> CreateAsync() => Task.FromResult<IMessageStore>(new InMemoryMessageStore());

    protected override Task<IMessageStore?> ReopenAsync() => Task.FromResult<IMessageStore?>(null);
}

public sealed class SqliteStoreContractTests : MessageStoreContractTests, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("switchboard-sqlite-").FullName;

    private string DbPath => Path.Combine(_dir, "store.db");

    protected override async Task<IMessageStore> CreateAsync() => await Sqlite.SqliteMessageStore.OpenAsync(DbPath);

    protected override async Task<IMessageStore?> ReopenAsync() => await Sqlite.SqliteMessageStore.OpenAsync(DbPath);

    public void Dispose() => Directory.Delete(_dir, recursive: true);
}
