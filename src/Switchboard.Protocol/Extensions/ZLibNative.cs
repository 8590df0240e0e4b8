using System.Reflection;
using System.Runtime.InteropServices;

namespace Switchboard.Protocol.Extensions;

/// <summary>
/// The few zlib entry points permessage-deflate needs, bound to the system's zlib (libz.so.1, part of every Linux
/// distribution's base system). .NET's DeflateStream cannot be used: it offers no control of the LZ77 window size
/// (RFC 7692 §7.1.2), no reset without reallocating, and no raw access to the sync-flush boundary.
/// The z_stream lives in native memory: zlib keeps a pointer back to it, so it must never move.
/// </summary>
internal static unsafe partial class ZLibNative
{
    public const int Ok = 0;
    public const int StreamEnd = 1;
    public const int NeedDict = 2;
    public const int BufError = -5;
    public const int NoFlush = 0;
    public const int SyncFlush = 2;
    public const int Deflated = 8;
    public const int DefaultStrategy = 0;

    private const string Library = "switchboard-zlib";
    private static readonly byte[] s_version = "1.2.11\0"u8.ToArray(); // zlib checks only the major version

    /// <summary>z_stream for LP64 platforms (Linux, macOS), where uLong is 64 bits: 112 bytes.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct ZStream
    {
        public byte* NextIn;
        public uint AvailIn;
        public nuint TotalIn;
        public byte* NextOut;
        public uint AvailOut;
        public nuint TotalOut;
        public sbyte* Msg;
        public void* State;
        public void* ZAlloc;
        public void* ZFree;
        public void* Opaque;
        public int DataType;
        public nuint Adler;
        public nuint Reserved;
    }

    private static readonly Lazy<bool> s_available = new(Probe);

    static ZLibNative() => NativeLibrary.SetDllImportResolver(typeof(ZLibNative).Assembly, Resolve);

    /// <summary>True when a zlib with the expected ABI could be loaded; permessage-deflate is offered only then.</summary>
    public static bool IsAvailable => s_available.Value;

    private static IntPtr Resolve(string name, Assembly assembly, DllImportSearchPath? path)
    {
        if (name != Library)
        {
            return IntPtr.Zero;
        }

        foreach (string candidate in new[] { "libz.so.1", "libz.so", "libz.1.dylib", "libz.dylib" })
        {
            if (NativeLibrary.TryLoad(candidate, out IntPtr handle))
            {
                return handle;
            }
        }

        return IntPtr.Zero;
    }

    private static bool Probe()
    {
        if (OperatingSystem.IsWindows() || IntPtr.Size != 8)
        {
            return false; // the struct above is the LP64 layout
        }

        try
        {
            ZStream* s = Allocate();
            try
            {
                if (InflateInit(s, -15) != Ok)
                {
                    return false;
                }

                inflateEnd(s);
                return true;
            }
            finally
            {
                NativeMemory.Free(s);
            }
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    public static ZStream* Allocate() => (ZStream*)NativeMemory.AllocZeroed((nuint)sizeof(ZStream));

    public static int DeflateInit(ZStream* s, int level, int windowBits, int memLevel)
    {
        fixed (byte* v = s_version)
        {
            return deflateInit2_(s, level, Deflated, windowBits, memLevel, DefaultStrategy, v, sizeof(ZStream));
        }
    }

    public static int InflateInit(ZStream* s, int windowBits)
    {
        fixed (byte* v = s_version)
        {
            return inflateInit2_(s, windowBits, v, sizeof(ZStream));
        }
    }

    [LibraryImport(Library)]
    private static partial int deflateInit2_(ZStream* strm, int level, int method, int windowBits, int memLevel, int strategy, byte* version, int streamSize);

    [LibraryImport(Library)]
    public static partial int deflate(ZStream* strm, int flush);

    [LibraryImport(Library)]
    public static partial int deflateReset(ZStream* strm);

    [LibraryImport(Library)]
    public static partial int deflateEnd(ZStream* strm);

    [LibraryImport(Library)]
    private static partial int inflateInit2_(ZStream* strm, int windowBits, byte* version, int streamSize);

    [LibraryImport(Library)]
    public static partial int inflate(ZStream* strm, int flush);

    [LibraryImport(Library)]
    public static partial int inflateReset(ZStream* strm);

    [LibraryImport(Library)]
    public static partial int inflateEnd(ZStream* strm);
}
