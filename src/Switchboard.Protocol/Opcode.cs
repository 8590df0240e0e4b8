namespace Switchboard.Protocol;

/// <summary>Frame opcodes (RFC 6455 §5.2, §11.8).</summary>
public enum Opcode : byte
{
    /// <summary>Continuation of a fragmented data message.</summary>
    Continuation = 0x0,
    /// <summary>UTF-8 text data.</summary>
    Text = 0x1,
    /// <summary>Binary data.</summary>
    Binary = 0x2,
    /// <summary>Connection close (control).</summary>
    Close = 0x8,
    /// <summary>Ping (control).</summary>
    Ping = 0x9,
    /// <summary>Pong (control).</summary>
    Pong = 0xA,
}

/// <summary>The type of a data message.</summary>
public enum MessageType : byte
{
    /// <summary>A UTF-8 text message.</summary>
    Text = 1,
    /// <summary>A binary message.</summary>
    Binary = 2,
}

/// <summary>Helpers on <see cref="Opcode"/>.</summary>
public static class OpcodeExtensions
{
    /// <summary>True for close, ping and pong (RFC 6455 §5.5: opcodes with the high bit set).</summary>
    public static bool IsControl(this Opcode opcode) => ((byte)opcode & 0x8) != 0;

    /// <summary>True for the opcodes RFC 6455 defines; the others are reserved (§5.2).</summary>
    public static bool IsDefined(this Opcode opcode) => opcode switch
    {
        Opcode.Continuation or Opcode.Text or Opcode.Binary or Opcode.Close or Opcode.Ping or Opcode.Pong => true,
        _ => false,
    };
}
