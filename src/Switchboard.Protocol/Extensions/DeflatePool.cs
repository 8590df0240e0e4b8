using System.Collections.Concurrent;

namespace Switchboard.Protocol.Extensions;

/// <summary>
/// Pools zlib state for connections without context takeover: a compressor or decompressor is rented for one
/// message and returned reset, so idle connections hold none and connection churn does not allocate and free native
/// memory over and over. The pool keeps a bounded number per configuration; extras are disposed on return. Owned by
/// the settings its connections share (<see cref="WebSocketProtocolSettings"/>): a server's pool is its own.
/// </summary>
internal sealed class DeflatePool
{
    private static readonly int s_maxPerKey = Math.Max(4, Environment.ProcessorCount * 4);
    private readonly ConcurrentDictionary<int, Bag<DeflateCompressor>> _compressors = new();
    private readonly Bag<DeflateDecompressor> _decompressors = new();

    /// <summary>Rents a compressor with a fresh context.</summary>
    public DeflateCompressor RentCompressor(int level, int windowBits)
    {
        Bag<DeflateCompressor> bag = _compressors.GetOrAdd(Key(level, windowBits), static _ => new());
        return bag.TryTake(out DeflateCompressor? c) ? c : new DeflateCompressor(level, windowBits);
    }

    /// <summary>Returns a compressor; it is reset first. Do not use it afterwards.</summary>
    public void Return(DeflateCompressor compressor)
    {
        compressor.Reset();
        Bag<DeflateCompressor> bag = _compressors.GetOrAdd(Key(compressor.Level, compressor.WindowBits), static _ => new());
        if (!bag.TryAdd(compressor, s_maxPerKey))
        {
            compressor.Dispose();
        }
    }

    /// <summary>Rents a decompressor with a fresh context.</summary>
    public DeflateDecompressor RentDecompressor() =>
        _decompressors.TryTake(out DeflateDecompressor? d) ? d : new DeflateDecompressor();

    /// <summary>Returns a decompressor; it is reset first. Do not use it afterwards.</summary>
    public void Return(DeflateDecompressor decompressor)
    {
        decompressor.EndMessage(resetContext: true);
        if (!_decompressors.TryAdd(decompressor, s_maxPerKey * 4))
        {
            decompressor.Dispose();
        }
    }

    private static int Key(int level, int windowBits) => (level << 8) | windowBits;

    private sealed class Bag<T>
    {
        private readonly ConcurrentQueue<T> _items = new();
        private int _count;

        public bool TryTake(out T item)
        {
            if (_items.TryDequeue(out item!))
            {
                Interlocked.Decrement(ref _count);
                return true;
            }

            return false;
        }

        public bool TryAdd(T item, int max)
        {
            if (Interlocked.Increment(ref _count) > max)
            {
                Interlocked.Decrement(ref _count);
                return false;
            }

            _items.Enqueue(item);
            return true;
        }
    }
}
