using System.Buffers;
using System.Text;
using Switchboard.Protocol;

namespace Switchboard.WebSockets;

/// <summary>
/// A received message, valid only until the handler call that delivered it returns (its bytes may live in
/// the connection's receive buffer). Copy with <see cref="ToArray"/> or <see cref="GetText"/> to keep it.
/// </summary>
public readonly struct WebSocketMessage
{
    /// <summary>Creates a message view.</summary>
    public WebSocketMessage(MessageType type, ReadOnlySequence<byte> data)
    {
        Type = type;
        Data = data;
    }

    /// <summary>Text or binary.</summary>
    public MessageType Type { get; }

    /// <summary>The payload (UTF-8 for text, already validated).</summary>
    public ReadOnlySequence<byte> Data { get; }

    /// <summary>The payload decoded as text.</summary>
    public string GetText() => Encoding.UTF8.GetString(Data);

    /// <summary>A copy of the payload.</summary>
    public byte[] ToArray() => Data.ToArray();
}

/// <summary>
/// Receives a connection's events, mirroring the browser API: open, message, error, close. The read loop
/// awaits each call before reading on, so messages arrive strictly in order and a slow handler applies
/// backpressure to its own peer only. Override <see cref="StreamsMessages"/> to receive large messages in
/// pieces instead of whole.
/// </summary>
public abstract class WebSocketHandler
{
    /// <summary>The connection is open.</summary>
    public virtual ValueTask OnOpenAsync(WebSocketConnection connection) => ValueTask.CompletedTask;

    /// <summary>A whole message arrived (unless <see cref="StreamsMessages"/>).</summary>
    public virtual ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message) => ValueTask.CompletedTask;

    /// <summary>When true, <see cref="OnMessageChunkAsync"/> receives each piece as it arrives; no whole-message buffering.</summary>
    public virtual bool StreamsMessages => false;

    /// <summary>A piece of a message arrived (only when <see cref="StreamsMessages"/>). The data is valid only during the call.</summary>
    public virtual ValueTask OnMessageChunkAsync(WebSocketConnection connection, MessageType type, ReadOnlySequence<byte> chunk, bool endOfMessage) => ValueTask.CompletedTask;

    /// <summary>A pong arrived (the answer to <see cref="WebSocketConnection.SendPing"/>, or unsolicited). The payload is valid only during the call.</summary>
    public virtual ValueTask OnPongAsync(WebSocketConnection connection, ReadOnlySequence<byte> payload) => ValueTask.CompletedTask;

    /// <summary>The connection is being failed: a protocol violation, a timeout or a transport error. <see cref="OnCloseAsync"/> follows.</summary>
    public virtual ValueTask OnErrorAsync(WebSocketConnection connection, WebSocketError error) => ValueTask.CompletedTask;

    /// <summary>The connection is closed. Called exactly once.</summary>
    public virtual ValueTask OnCloseAsync(WebSocketConnection connection, WebSocketCloseStatus status) => ValueTask.CompletedTask;
}

/// <summary>A message received in pull mode (<see cref="WebSocketConnection.ReceiveAsync"/>); owns its bytes.</summary>
public sealed class ReceivedMessage
{
    /// <summary>Creates a message.</summary>
    public ReceivedMessage(MessageType type, byte[] data)
    {
        Type = type;
        Data = data;
    }

    /// <summary>Text or binary.</summary>
    public MessageType Type { get; }

    /// <summary>The payload.</summary>
    public byte[] Data { get; }

    /// <summary>The payload decoded as UTF-8 text.</summary>
    public string Text => Encoding.UTF8.GetString(Data);
}
