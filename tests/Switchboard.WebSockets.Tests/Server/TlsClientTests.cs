using System.Net;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;
using Switchboard.Server;
using Switchboard.WebSockets.AspNetCore;

namespace Switchboard.WebSockets.Tests.Server;

/// <summary>wss:// with a real TLS server (Kestrel with a throwaway self-signed certificate).</summary>
public sealed class TlsClientTests : IAsyncLifetime
{
    private WebApplication? _app;
    private X509Certificate2? _cert;
    private Uri _url = null!;

    private sealed class Echo : WebSocketHandler
    {
        public override ValueTask OnMessageAsync(WebSocketConnection connection, WebSocketMessage message)
        {
            connection.Send(message.Type, message.Data);
            return ValueTask.CompletedTask;
        }
    }

    public async Task InitializeAsync()
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=switchboard-test", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(san.Build());
        using X509Certificate2 created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
        _cert = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pfx), null);

        WebApplicationBuilder builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(_cert)));
        _app = builder.Build();
        _app.MapWebSocket("/echo", _ => new Echo());
        await _app.StartAsync();
        _url = new Uri(SwitchboardServer.GetAddresses(_app)[0].Replace("https://", "wss://", StringComparison.Ordinal) + "/echo");
    }

    public async Task DisposeAsync()
    {
        if (_app is not null)
        {
            await _app.DisposeAsync();
        }

        _cert?.Dispose();
    }

    [Fact]
    public async Task Untrusted_certificate_is_refused_by_default()
    {
        await Assert.ThrowsAsync<AuthenticationException>(() => WebSocketClient.ConnectAsync(_url));
    }

    [Fact]
    public async Task Custom_validation_pinning_the_certificate_connects_and_echoes()
    {
        string thumbprint = _cert!.Thumbprint;
        WebSocketConnection ws = await WebSocketClient.ConnectAsync(_url, new()
        {
            RemoteCertificateValidation = (_, cert, _, _) => cert is not null && new X509Certificate2(cert).Thumbprint == thumbprint,
        });
        ws.SendText("over tls");
        Assert.Equal("over tls", (await ws.ReceiveAsync())!.Text);
        byte[] big = new byte[4 * 1024 * 1024];
        Random.Shared.NextBytes(big);
        ws.Send(Protocol.MessageType.Binary, big);
        Assert.Equal(big, (await ws.ReceiveAsync())!.Data);
        Assert.True((await ws.CloseAsync()).WasClean);
    }

    [Fact]
    public async Task Explicit_opt_out_accepts_any_certificate()
    {
        WebSocketConnection ws = await WebSocketClient.ConnectAsync(_url, new() { DangerousAcceptAnyServerCertificate = true });
        ws.SendText("insecure but explicit");
        Assert.Equal("insecure but explicit", (await ws.ReceiveAsync())!.Text);
        await ws.CloseAsync();
    }
}
