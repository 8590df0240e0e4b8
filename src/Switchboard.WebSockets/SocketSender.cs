using System.Buffers;
using System.Net.Sockets;

namespace Switchboard.WebSockets;

/// <summary>
/// Sends each batch with one <c>send</c> on the connected socket: the writer writes its frames here, into an array
/// rented while data flows and returned when the queue runs empty, so an idle connection holds none. The sender is its
/// own buffer: one object per connection that ever sent, not two.
/// </summary>
internal sealed class SocketSender(Socket socket) : TransportSender, IBufferWriter<byte>
{
    private const int MinimumSize = 4096;
    private byte[]? _array;
    private int _written;

    public override IBufferWriter<byte> Output => this;

    public override async ValueTask FlushAsync()
    {
        await SocketSend.SendAllAsync(socket, _array is null ? default : _array.AsMemory(0, _written)).ConfigureAwait(false);
        _written = 0; // sent; the array stays for the rest of the batch
    }

    public override void Idle()
    {
        if (_array is not null)
        {
            ArrayPool<byte>.Shared.Return(_array);
            _array = null;
        }

        _written = 0;
    }

    public void Advance(int count) => _written += count;

    public Memory<byte> GetMemory(int sizeHint = 0) => Ensure(sizeHint).AsMemory(_written);

    public Span<byte> GetSpan(int sizeHint = 0) => Ensure(sizeHint).AsSpan(_written);

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
