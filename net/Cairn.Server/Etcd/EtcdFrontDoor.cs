using System.Net.Security;
using System.Net.Sockets;
using Microsoft.AspNetCore.Builder;
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
/// certificate). Every call goes through <see cref="EtcdGateway"/> to the member's request router.
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
                l.Protocols = HttpProtocols.Http2;
                if (member.Tls.ClientTls)
                {
                    l.UseHttps(new TlsHandshakeCallbackOptions
                    {
                        OnConnection = _ =>
                        {
                            var options = member.Tls.ClientServerOptions(new MemberTls.Verdict());
                            options.ApplicationProtocols = [SslApplicationProtocol.Http2];
                            return ValueTask.FromResult(options);
                        },
                    });
                }
            });
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
        _app = builder.Build();
        _app.UseRouting();
        _app.MapGrpcService<EtcdKv>();
        _app.MapGrpcService<EtcdWatch>();
        _app.MapGrpcService<EtcdLease>();
        _app.MapGrpcService<EtcdCluster>();
        _app.MapGrpcService<EtcdMaintenance>();
        _app.MapGrpcService<EtcdAuth>();
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
