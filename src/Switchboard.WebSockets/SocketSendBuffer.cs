using System.Buffers;

namespace Switchboard.WebSockets;

/// <summary>
/// The writer's batch when it sends straight to the socket: frames are written here and handed to one
/// <c>send</c>. The array is rented while data flows and returned when the queue runs empty, so an idle
/// connection holds none.
/// </summary>
internal sealed class SocketSendBuffer : IBufferWriter<byte>
{
    private const int MinimumSize = 4096;
    private byte[]? _array;
    private int _written;

    public ReadOnlyMemory<byte> Written => _array is null ? default : _array.AsMemory(0, _written);

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0) => Ensure(sizeHint).AsMemory(_written);

    public Span<byte> GetSpan(int sizeHint = 0) => Ensure(sizeHint).AsSpan(_written);

    /// <summary>Forgets what was written (it has been sent), keeping the array for the rest of the batch.</summary>
    public void Reset() => _written = 0;

    /// <summary>Returns the array to the pool.</summary>
    public void Release()
    {
        if (_array is not null)
        {
            ArrayPool<byte>.Shared.Return(_array);
            _array = null;
        }

        _written = 0;
    }

    private byte[] Ensure(int sizeHint)
    {
        sizeHint = Math.Max(sizeHint, 1);
        if (_array is null)
        {
            _array = ArrayPool<byte>.Shared.Rent(Math.Max(MinimumSize, sizeHint));
        }
        else if (_array.Length - _written < sizeHint)
        {
            byte[] larger = ArrayPool<byte>.Shared.Rent(Math.Max(_array.Length * 2, _written + sizeHint));
            _array.AsSpan(0, _written).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_array);
            _array = larger;
        }

        return _array;
    }
}
