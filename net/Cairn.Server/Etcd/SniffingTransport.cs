using System.Buffers;
using System.Net;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: Kestrel (its accept loops call it); one short task per new connection reads its first bytes.
/// etcd serves gRPC and its JSON gateway on one cleartext port; Kestrel serves a cleartext endpoint as HTTP/1.1 or as
/// HTTP/2, never both. This transport binds the real socket for the HTTP/2 endpoint and looks at each connection's
/// first bytes: the HTTP/2 client preface ("PRI * HTTP/2.0") stays there, anything else (an HTTP/1.1 request line) is
/// handed to a second, socketless endpoint (<see cref="Http1"/>) served as HTTP/1.1. Nothing is consumed, so each
/// protocol reads the connection from its first byte. With TLS the two are told apart by ALPN instead and this is unused.
/// </summary>
internal sealed class SniffingTransport(IConnectionListenerFactory sockets) : IConnectionListenerFactory
{
    private readonly Channel<ConnectionContext> _http1 = Channel.CreateUnbounded<ConnectionContext>();

    /// <summary>The endpoint whose connections are those the real one passed on as HTTP/1.1.</summary>
    public static EndPoint Http1 { get; } = new Http1EndPoint();

    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        if (endpoint is Http1EndPoint) return new PassedOn(endpoint, _http1.Reader);
        var real = await sockets.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        return new Sniffing(real, _http1.Writer);
    }

    private sealed class Http1EndPoint : EndPoint
    {
        public override string ToString() => "the etcd port's HTTP/1.1 connections";
    }

    /// <summary>The real listener: accepts, sorts each connection by its first bytes, and answers Kestrel's accepts with the HTTP/2 ones.</summary>
    private sealed class Sniffing : IConnectionListener
    {
        private static readonly byte[] Preface = "PRI"u8.ToArray();
        private readonly IConnectionListener _inner;
        private readonly ChannelWriter<ConnectionContext> _http1;
        private readonly Channel<ConnectionContext?> _http2 = Channel.CreateUnbounded<ConnectionContext?>();
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _accepting;

        public Sniffing(IConnectionListener inner, ChannelWriter<ConnectionContext> http1)
        {
            _inner = inner;
            _http1 = http1;
            _accepting = AcceptAllAsync();
        }

        public EndPoint EndPoint => _inner.EndPoint;

        private async Task AcceptAllAsync()
        {
            try
            {
                while (await _inner.AcceptAsync(_stop.Token).ConfigureAwait(false) is { } connection) _ = SortAsync(connection);
            }
            catch (OperationCanceledException)
            {
            }
            finally
            {
                _http2.Writer.TryWrite(null); // Kestrel's accept learns the listener is done
            }
        }

        private async Task SortAsync(ConnectionContext connection)
        {
            try
            {
                var input = connection.Transport.Input;
                while (true)
                {
                    var read = await input.ReadAsync(connection.ConnectionClosed).ConfigureAwait(false);
                    var buffer = read.Buffer;
                    if (buffer.Length >= Preface.Length || read.IsCompleted)
                    {
                        var http2 = buffer.Length >= Preface.Length && buffer.Slice(0, Preface.Length).ToArray().AsSpan().SequenceEqual(Preface);
                        input.AdvanceTo(buffer.Start); // nothing consumed or examined: the protocol reads from the first byte
                        if (http2) _http2.Writer.TryWrite(connection);
                        else _http1.TryWrite(connection);
                        return;
                    }
                    input.AdvanceTo(buffer.Start, buffer.End);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or ConnectionResetException or InvalidOperationException)
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await _http2.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                return null;
            }
        }

        public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _inner.UnbindAsync(cancellationToken).ConfigureAwait(false);
            await _accepting.ConfigureAwait(false);
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync().ConfigureAwait(false);
            await _inner.DisposeAsync().ConfigureAwait(false);
            await _accepting.ConfigureAwait(false);
            _stop.Dispose();
            _http1.TryComplete();
        }
    }

    /// <summary>The HTTP/1.1 side: Kestrel's accepts take the connections the real listener passed on.</summary>
    private sealed class PassedOn(EndPoint endpoint, ChannelReader<ConnectionContext> connections) : IConnectionListener
    {
        private readonly CancellationTokenSource _unbound = new();

        public EndPoint EndPoint => endpoint;

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _unbound.Token);
            try
            {
                return await connections.ReadAsync(either.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is ChannelClosedException or OperationCanceledException)
            {
                return null; // unbound: Kestrel's accept loop ends
            }
        }

        public async ValueTask UnbindAsync(CancellationToken cancellationToken = default) => await _unbound.CancelAsync().ConfigureAwait(false);

        public async ValueTask DisposeAsync()
        {
            await _unbound.CancelAsync().ConfigureAwait(false);
            _unbound.Dispose();
        }
    }
}
