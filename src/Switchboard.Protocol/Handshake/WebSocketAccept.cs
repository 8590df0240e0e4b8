using System.Security.Cryptography;
using System.Text;

namespace Switchboard.Protocol.Handshake;

/// <summary>The Sec-WebSocket-Accept computation (RFC 6455 §4.2.2 step 5.4; §1.3).</summary>
public static class WebSocketAccept
{
    /// <summary>The GUID every endpoint appends to the key.</summary>
    public const string Guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    /// <summary>base64(SHA-1(key + GUID)).</summary>
    public static string Compute(string key)
    {
        Span<byte> input = stackalloc byte[128];
        int n = Encoding.ASCII.GetBytes(key.AsSpan().Trim(), input);
        n += Encoding.ASCII.GetBytes(Guid, input[n..]);
        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(input[..n], hash);
        return Convert.ToBase64String(hash);
    }

    /// <summary>True if <paramref name="key"/> is base64 of exactly 16 bytes (§4.1, §11.3.1).</summary>
    public static bool IsValidKey(string? key)
    {
        if (key is null)
        {
            return false;
        }

        key = key.Trim(' ', '\t');
        if (key.Length != 24)
        {
            return false;
        }

        Span<byte> decoded = stackalloc byte[18];
        return Convert.TryFromBase64String(key, decoded, out int written) && written == 16;
    }
}

/// <summary>
/// The source of the randomness a client needs: the 16-byte handshake nonce (§4.1) and masking keys (§5.3).
/// Injected so tests can be deterministic.
/// </summary>
public interface IWebSocketRandom
{
    /// <summary>Fills <paramref name="destination"/> with unpredictable bytes.</summary>
    void Fill(Span<byte> destination);
}

/// <summary>The default <see cref="IWebSocketRandom"/>: the OS cryptographic generator.</summary>
public sealed class CryptoWebSocketRandom : IWebSocketRandom
{
    /// <summary>The shared instance.</summary>
    public static CryptoWebSocketRandom Instance { get; } = new();

    /// <inheritdoc />
    public void Fill(Span<byte> destination) => RandomNumberGenerator.Fill(destination);
}
