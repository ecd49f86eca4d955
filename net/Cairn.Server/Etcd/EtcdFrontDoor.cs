using System.Net.Security;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: whoever starts and stops the member (Kestrel runs its own threads).
/// The second front door: etcd's v3 gRPC API on its own listener (--listen-grpc, etcd's 2379 by default), served by
/// Kestrel over HTTP/2 (cleartext with prior knowledge, as etcd's clients dial it, or TLS with the client port's
/// certificate), and etcd's JSON gateway on the same port over HTTP/1.1 (<see cref="EtcdJsonGateway"/>). Every call
/// goes through <see cref="EtcdGateway"/> to the member's request router.
/// </summary>
internal sealed class EtcdFrontDoor : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly Socket _listener;

    public EtcdFrontDoor(Member member, Socket listener, EtcdGateway gateway)
    {
        _listener = listener;
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions());
        builder.WebHost.UseKestrelCore();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AddServerHeader = false;
            k.Limits.Http2.MaxStreamsPerConnection = Math.Max(100, member.Options.MaxRequestsInFlight);
            // Kestrel takes over the socket bound at start (MemberListeners), so a busy port refused start before anything was written.
            k.ListenHandle((ulong)listener.Handle, l =>
            {
                if (member.Tls.ClientTls)
                {
                    // With TLS, ALPN tells gRPC (h2) from the JSON gateway (http/1.1) on the one port.
                    l.Protocols = HttpProtocols.Http1AndHttp2;
                    l.UseHttps(new TlsHandshakeCallbackOptions
                    {
                        OnConnection = _ =>
                        {
                            var options = member.Tls.ClientServerOptions(new MemberTls.Verdict());
                            options.ApplicationProtocols = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11];
                            return ValueTask.FromResult(options);
                        },
                    });
                }
                else
                {
                    l.Protocols = HttpProtocols.Http2;
                }
            });
            // Cleartext: connections that do not open with HTTP/2's preface are the JSON gateway's (SniffingTransport).
            if (!member.Tls.ClientTls) k.Listen(SniffingTransport.Http1, l => l.Protocols = HttpProtocols.Http1);
        });
        builder.Logging.ClearProviders();
        builder.Services.AddRouting();
        builder.Services.AddGrpc(o =>
        {
            o.MaxReceiveMessageSize = member.Options.MaxFrameBytes;
            o.MaxSendMessageSize = null;
            o.EnableDetailedErrors = false;
        });
        builder.Services.AddSingleton(gateway);
        if (!member.Tls.ClientTls)
        {
            builder.Services.AddSingleton<IConnectionListenerFactory>(sp => new SniffingTransport(
                new SocketTransportFactory(Options.Create(new SocketTransportOptions()), sp.GetRequiredService<ILoggerFactory>())));
        }
        _app = builder.Build();
        _app.UseRouting();
        _app.MapGrpcService<EtcdKv>();
        _app.MapGrpcService<EtcdWatch>();
        _app.MapGrpcService<EtcdLease>();
        _app.MapGrpcService<EtcdCluster>();
        _app.MapGrpcService<EtcdMaintenance>();
        _app.MapGrpcService<EtcdAuth>();
        EtcdJsonGateway.Map(_app, gateway);
    }

    public Task StartAsync() => _app.StartAsync();

    public async ValueTask DisposeAsync()
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await _app.StopAsync(timeout.Token).ConfigureAwait(false);
        }
        finally
        {
            await _app.DisposeAsync().ConfigureAwait(false);
            _listener.Dispose();
        }
    }
}
