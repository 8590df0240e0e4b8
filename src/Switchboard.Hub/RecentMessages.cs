using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Switchboard.Hub;

/// <summary>
/// A room's most recent messages, oldest first and without gaps, bounded by count and by bytes: what lets a join or a
/// resume go live without reading the store. Messages are copied into one ring of bytes per room (their strings as
/// UTF-16, so any string comes back exactly) instead of being kept as objects: every cached object outlived the
/// garbage collector's young generations, was copied into the oldest one and died there, and at ~50,000 publishes a
/// second over 100 rooms that cost ~15% of the server's CPU. A replay decodes the messages again (joins are rare,
/// publishes are not). Used by the room's worker only.
/// </summary>
internal sealed class RecentMessages
{
    private const int HeaderBytes = 12; // UTC ticks (8), offset from UTC in minutes (2), padding (2)
    private const int MinimumRing = 4096;

    private readonly int _maxCount;
    private readonly int _maxBytes;
    private byte[] _ring = [];
    private Entry[] _entries = [];
    private int _first; // index in _entries of the oldest message
    private int _count;
    private int _end; // where the next record goes in _ring

    private struct Entry
    {
        public long Offset;
        public int Start;
        public int Length;
    }

    /// <summary>A cache of at most <paramref name="maxCount"/> messages in at most <paramref name="maxBytes"/> bytes.</summary>
    public RecentMessages(int maxCount, long maxBytes)
    {
        _maxCount = Math.Max(0, maxCount);
        _maxBytes = (int)Math.Clamp(maxBytes, 0, Array.MaxLength / 2);
    }

    /// <summary>Messages held.</summary>
    public int Count => _count;

    /// <summary>Bytes of the ring (what the cache holds in memory besides 16 bytes per message).</summary>
    public int Capacity => _ring.Length;

    /// <summary>The offset of the oldest message held; false when empty.</summary>
    public bool TryGetOldest(out long offset)
    {
        offset = _count > 0 ? _entries[_first].Offset : 0;
        return _count > 0;
    }

    /// <summary>
    /// Adds the message after the newest (offsets must follow each other); the oldest leave as the bounds require. A
    /// message larger than the byte bound empties the cache: it cannot be held, so nothing older may be either.
    /// </summary>
    public void Add(StoredMessage message)
    {
        long size = RecordSize(message);
        if (_maxCount == 0 || size > _maxBytes)
        {
            Clear();
            return;
        }

        if (_count == _maxCount)
        {
            DropOldest();
        }

        int start;
        while (!TryFindSpace((int)size, out start))
        {
            if (_ring.Length < _maxBytes)
            {
                Grow((int)size);
            }
            else
            {
                DropOldest();
            }
        }

        Write(message, _ring.AsSpan(start, (int)size));
        if (_count == _entries.Length)
        {
            GrowEntries();
        }

        _entries[(_first + _count) % _entries.Length] = new Entry { Offset = message.Offset, Start = start, Length = (int)size };
        _count++;
        _end = start + (int)size;
    }

    /// <summary>Drops the messages with offsets below <paramref name="first"/> (retention removed them from the history).</summary>
    public void DropBefore(long first)
    {
        while (_count > 0 && _entries[_first].Offset < first)
        {
            DropOldest();
        }
    }

    /// <summary>Drops everything; the memory stays for the next messages.</summary>
    public void Clear()
    {
        _first = 0;
        _count = 0;
        _end = 0;
    }

    /// <summary>The messages after <paramref name="cursor"/>, oldest first, decoded again.</summary>
    public IEnumerable<StoredMessage> After(long cursor)
    {
        for (int i = 0; i < _count; i++)
        {
            Entry e = _entries[(_first + i) % _entries.Length];
            if (e.Offset > cursor)
            {
                yield return Read(e);
            }
        }
    }

    private void DropOldest()
    {
        _first = (_first + 1) % _entries.Length;
        if (--_count == 0)
        {
            Clear();
        }
    }

    /// <summary>Where a record of <paramref name="size"/> bytes fits without overwriting a held one.</summary>
    private bool TryFindSpace(int size, out int start)
    {
        if (_count == 0)
        {
            start = 0;
            return size <= _ring.Length;
        }

        int oldest = _entries[_first].Start;
        if (oldest < _end)
        {
            // Held: [oldest, _end). Free: the tail, then the head (the tail is skipped when it is too short).
            start = _ring.Length - _end >= size ? _end : 0;
            return start == _end || oldest >= size;
        }

        // Wrapped: held [oldest, end of ring) and [0, _end). Free: [_end, oldest).
        start = _end;
        return oldest - _end >= size;
    }

    /// <summary>A larger ring, up to the byte bound, with the held records copied to its start in order.</summary>
    private void Grow(int size)
    {
        int capacity = Math.Max(MinimumRing, _ring.Length * 2);
        while (capacity < size * 2 && capacity < _maxBytes)
        {
            capacity *= 2;
        }

        var ring = new byte[Math.Min(capacity, _maxBytes)];
        int end = 0;
        for (int i = 0; i < _count; i++)
        {
            ref Entry e = ref _entries[(_first + i) % _entries.Length];
            _ring.AsSpan(e.Start, e.Length).CopyTo(ring.AsSpan(end));
            e.Start = end;
            end += e.Length;
        }

        _ring = ring;
        _end = end;
    }

    private void GrowEntries()
    {
        var entries = new Entry[Math.Min(_maxCount, Math.Max(16, _entries.Length * 2))];
        for (int i = 0; i < _count; i++)
        {
            entries[i] = _entries[(_first + i) % _entries.Length];
        }

        _entries = entries;
        _first = 0;
    }

    private static long RecordSize(StoredMessage m)
    {
        long size = HeaderBytes + (4L * 4) + (2L * ((long)m.Id.Length + m.UserId.Length + m.Name.Length + m.Text.Length));
        return (size + 7) & ~7L; // records start 8-byte aligned
    }

    private static void Write(StoredMessage m, Span<byte> record)
    {
        BinaryPrimitives.WriteInt64LittleEndian(record, m.Time.UtcTicks);
        BinaryPrimitives.WriteInt16LittleEndian(record[8..], (short)m.Time.TotalOffsetMinutes);
        int at = HeaderBytes;
        foreach (string s in (ReadOnlySpan<string>)[m.Id, m.UserId, m.Name, m.Text])
        {
            BinaryPrimitives.WriteInt32LittleEndian(record[at..], s.Length);
            at += 4;
            MemoryMarshal.AsBytes(s.AsSpan()).CopyTo(record[at..]);
            at += 2 * s.Length;
        }
    }

    private StoredMessage Read(Entry e)
    {
        ReadOnlySpan<byte> record = _ring.AsSpan(e.Start, e.Length);
        long ticks = BinaryPrimitives.ReadInt64LittleEndian(record);
        TimeSpan offset = TimeSpan.FromMinutes(BinaryPrimitives.ReadInt16LittleEndian(record[8..]));
        int at = HeaderBytes;
        string id = NextString(record, ref at), userId = NextString(record, ref at), name = NextString(record, ref at), text = NextString(record, ref at);
        return new StoredMessage(e.Offset, id, userId, name, text, new DateTimeOffset(ticks + offset.Ticks, offset));
    }

    private static string NextString(ReadOnlySpan<byte> record, ref int at)
    {
        int length = BinaryPrimitives.ReadInt32LittleEndian(record[at..]);
        at += 4;
        string s = new(MemoryMarshal.Cast<byte, char>(record.Slice(at, 2 * length)));
        at += 2 * length;
        return s;
    }
}
