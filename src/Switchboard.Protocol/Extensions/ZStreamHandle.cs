using System.Runtime.InteropServices;
using static Switchboard.Protocol.Extensions.ZLibNative;

namespace Switchboard.Protocol.Extensions;

/// <summary>
/// A native zlib stream (its <see cref="ZStream"/> and the state zlib allocated for it) as a SafeHandle: released
/// exactly once, by <see cref="SafeHandle.Dispose()"/> or, if an owner is dropped without disposing (e.g. a connection
/// that is never torn down properly), by the finalizer — native memory is never leaked with its owner.
/// </summary>
internal sealed unsafe class ZStreamHandle : SafeHandle
{
    private readonly bool _deflate;

    private ZStreamHandle(bool deflate)
        : base(IntPtr.Zero, ownsHandle: true) => _deflate = deflate;

    public override bool IsInvalid => handle == IntPtr.Zero;

    /// <summary>The stream. Valid until disposed; owners are single-threaded and never use it after disposing.</summary>
    public ZStream* Stream => (ZStream*)handle;

    /// <summary>A raw-DEFLATE compressor stream (negative window bits: no zlib header).</summary>
    public static ZStreamHandle CreateDeflate(int level, int windowBits, int memLevel)
    {
        var h = new ZStreamHandle(deflate: true);
        ZStream* s = Allocate();
        if (DeflateInit(s, level, -windowBits, memLevel) != Ok)
        {
            NativeMemory.Free(s);
            throw new InvalidOperationException("zlib deflateInit2 failed.");
        }

        h.SetHandle((IntPtr)s);
        DeflateStreams.Opened();
        return h;
    }

    /// <summary>A raw-DEFLATE decompressor stream with a 32 KiB window (decodes any window the peer chose).</summary>
    public static ZStreamHandle CreateInflate()
    {
        var h = new ZStreamHandle(deflate: false);
        ZStream* s = Allocate();
        if (InflateInit(s, -15) != Ok)
        {
            NativeMemory.Free(s);
            throw new InvalidOperationException("zlib inflateInit2 failed.");
        }

        h.SetHandle((IntPtr)s);
        DeflateStreams.Opened();
        return h;
    }

    protected override bool ReleaseHandle()
    {
        var s = (ZStream*)handle;
        if (_deflate)
        {
            deflateEnd(s);
        }
        else
        {
            inflateEnd(s);
        }

        NativeMemory.Free(s);
        DeflateStreams.Closed();
        return true;
    }
}
