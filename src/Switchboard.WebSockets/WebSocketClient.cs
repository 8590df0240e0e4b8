using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Switchboard.Protocol;
using Switchboard.Protocol.Handshake;

namespace Switchboard.WebSockets;

/// <summary>Settings for <see cref="WebSocketClient.ConnectAsync"/>.</summary>
public sealed class WebSocketClientOptions
{
    /// <summary>Subprotocols to offer, in order of preference.</summary>
    public IReadOnlyList<string> SubProtocols { get; init; } = [];

    /// <summary>Extra request headers (Authorization, Origin, Cookie, ...).</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];

    /// <summary>Limit for TCP connect + TLS + opening handshake together. Default 30 s.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// Custom server certificate check for wss://. Null uses the platform's validation (on by default).
    /// </summary>
    public RemoteCertificateValidationCallback? RemoteCertificateValidation { get; init; }

    /// <summary>
    /// Accept any server certificate for wss:// (development only: this disables the protection TLS gives
    /// against impersonation). Off by default.
    /// </summary>
    public bool DangerousAcceptAnyServerCertificate { get; init; }

    /// <summary>
    /// Offer permessage-deflate (RFC 7692); the server decides whether it is used (see
    /// <see cref="WebSocketConnection.Compression"/>). Default false.
    /// </summary>
    public bool Compression { get; init; }

    /// <summary>
    /// Wait for data with a zero-byte read before taking a receive buffer (default true): an idle connection then
    /// holds no receive buffer. False keeps a 4 KiB buffer per connection and saves a system call per read, for
    /// busy connections such as a load generator's.
    /// </summary>
    public bool ZeroByteReads { get; init; } = true;

    /// <summary>Settings for the connection once open.</summary>
    public WebSocketConnectionOptions Connection { get; init; } = new();

    /// <summary>
    /// Receives the connection's events. When null, the connection runs in pull mode:
    /// read messages with <see cref="WebSocketConnection.ReceiveAsync"/>.
    /// </summary>
    public WebSocketHandler? Handler { get; init; }

    /// <summary>Randomness for the handshake nonce and masking keys. Default: the OS CSPRNG.</summary>
    public IWebSocketRandom? Random { get; init; }

    /// <summary>
    /// The local address to connect from (null: the operating system's choice). A host with several addresses can
    /// spread many connections to one server over them: the kernel picks a free local port per address, and one
    /// address has only the ephemeral port range (~28,000 ports on Linux) for one server's address and port — and
    /// finding a free one slows down as the range fills. The port is still chosen at connect time (on Linux with
    /// IP_BIND_ADDRESS_NO_PORT), so binding the address does not reserve a port for every other destination too.
    /// The server's host name must resolve to an address of the same family.
    /// </summary>
    public IPAddress? LocalAddress { get; init; }
}

/// <summary>The server refused the opening handshake, or answered it wrongly.</summary>
public sealed class WebSocketHandshakeException : Exception
{
    /// <summary>Creates the exception.</summary>
    public WebSocketHandshakeException(ClientHandshakeError error, int? statusCode, string message) : base(message)
    {
        Error = error;
        StatusCode = statusCode;
    }

    /// <summary>What was wrong with the response.</summary>
    public ClientHandshakeError Error { get; }

    /// <summary>The HTTP status the server answered with, if it answered.</summary>
    public int? StatusCode { get; }
}

/// <summary>Opens client connections to ws:// and wss:// servers (RFC 6455 §4.1).</summary>
public static class WebSocketClient
{
    /// <summary>
    /// Connects, performs the opening handshake and starts the connection: with the options' handler, or in
    /// pull mode. Throws <see cref="WebSocketHandshakeException"/> when the server refuses,
    /// <see cref="TimeoutException"/> after <see cref="WebSocketClientOptions.ConnectTimeout"/>,
    /// <see cref="SocketException"/> or <see cref="AuthenticationException"/> for network and TLS failures.
    /// </summary>
    public static async Task<WebSocketConnection> ConnectAsync(Uri uri, WebSocketClientOptions? options = null, CancellationToken cancellationToken = default)
    {
        options ??= new WebSocketClientOptions();
        IWebSocketRandom random = options.Random ?? CryptoWebSocketRandom.Instance;
        var handshake = new ClientHandshake(uri, new ClientHandshakeOptions { SubProtocols = options.SubProtocols, Headers = options.Headers, OfferCompression = options.Compression }, random);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(options.ConnectTimeout);
        Socket socket = CreateSocket(options.LocalAddress);
        Stream? stream = null;
        try
        {
            await socket.ConnectAsync(uri.IdnHost, uri.Port, timeout.Token).ConfigureAwait(false);
            stream = new NetworkStream(socket, ownsSocket: true);
            if (uri.Scheme == "wss")
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = uri.IdnHost,
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                    RemoteCertificateValidationCallback = options.DangerousAcceptAnyServerCertificate ? (_, _, _, _) => true : options.RemoteCertificateValidation,
                }, timeout.Token).ConfigureAwait(false);
            }

            var input = PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: options.ZeroByteReads));
            var output = PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 4096, leaveOpen: true));
            await output.WriteAsync(handshake.BuildRequest(), timeout.Token).ConfigureAwait(false);

            ClientHandshakeResult accepted = await ReadResponseAsync(input, handshake, timeout.Token).ConfigureAwait(false);
            Stream owned = stream;
            var connection = new WebSocketConnection(new DuplexPipe(input, output, owned), WebSocketRole.Client, options.Connection, accepted.SubProtocol,
                abortTransport: () => owned.Dispose(), random: random, compression: accepted.Compression)
            {
                DirectSocket = stream is NetworkStream ? socket : null, // ws://: frames go straight to the socket (no TLS between)
            };
            if (options.Handler is null)
            {
                connection.StartReceiving();
            }
            else
            {
                _ = connection.RunAsync(options.Handler);
            }

            return connection;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Dispose(stream, socket);
            throw new TimeoutException($"Connecting to {uri} did not complete within {options.ConnectTimeout.TotalSeconds:0.###} s.");
        }
        catch
        {
            Dispose(stream, socket);
            throw;
        }
    }

    private static Socket CreateSocket(IPAddress? localAddress)
    {
        if (localAddress is null)
        {
            return new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true }; // dual mode: IPv6 and IPv4 servers
        }

        var socket = new Socket(localAddress.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (OperatingSystem.IsLinux())
            {
                // IP_BIND_ADDRESS_NO_PORT (24, level IPPROTO_IP, also honoured by IPv6 sockets): the port is picked by
                // connect() for the full 4-tuple instead of by bind() for the address alone.
                socket.SetRawSocketOption(0, 24, [1, 0, 0, 0]);
            }

            socket.Bind(new IPEndPoint(localAddress, 0));
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static void Dispose(Stream? stream, Socket socket)
    {
        stream?.Dispose();
        socket.Dispose();
    }

    private static async Task<ClientHandshakeResult> ReadResponseAsync(PipeReader input, ClientHandshake handshake, CancellationToken cancellationToken)
    {
        while (true)
        {
            ReadResult result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            ReadOnlySequence<byte> buffer = result.Buffer;
            var reader = new SequenceReader<byte>(buffer);
            HttpHeadStatus status = HttpHeadParser.TryParseResponse(ref reader, out HttpResponseHead? head);
            switch (status)
            {
                case HttpHeadStatus.Complete:
                    input.AdvanceTo(reader.Position); // bytes after the head are the server's first frames
                    ClientHandshakeResult r = handshake.Validate(head!);
                    if (!r.IsAccepted)
                    {
                        throw new WebSocketHandshakeException(r.Error, head!.StatusCode, r.Message);
                    }

                    return r;
                case HttpHeadStatus.Invalid:
                    throw new WebSocketHandshakeException(ClientHandshakeError.UnexpectedStatus, null, "The server's response is not valid HTTP.");
                case HttpHeadStatus.TooLarge:
                    throw new WebSocketHandshakeException(ClientHandshakeError.UnexpectedStatus, null, "The server's response head is too large.");
            }

            input.AdvanceTo(buffer.Start, buffer.End);
            if (result.IsCompleted)
            {
                throw new WebSocketHandshakeException(ClientHandshakeError.UnexpectedStatus, null, "The server closed the connection during the opening handshake.");
            }
        }
    }
}

/// <summary>An <see cref="IDuplexPipe"/> over a stream's reader and writer; disposing disposes the stream.</summary>
public sealed class DuplexPipe(PipeReader input, PipeWriter output, IDisposable? owner = null) : IDuplexPipe, IDisposable
{
    /// <summary>Creates pipes over a stream with zero-byte reads, so an idle connection holds no read buffer.</summary>
    public static DuplexPipe Create(Stream stream) => new(
        PipeReader.Create(stream, new StreamPipeReaderOptions(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true)),
        PipeWriter.Create(stream, new StreamPipeWriterOptions(minimumBufferSize: 4096, leaveOpen: true)),
        stream);

    /// <inheritdoc />
    public PipeReader Input => input;

    /// <inheritdoc />
    public PipeWriter Output => output;

    /// <inheritdoc />
    public void Dispose() => owner?.Dispose();
}
