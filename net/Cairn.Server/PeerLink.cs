using System.Buffers;
using System.Collections.Concurrent;
using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Raft;
using MessageType = Cairn.Protocol.MessageType;

namespace Cairn.Server;

/// <summary>
/// The outbound stream to one peer: a queue drained by one writer loop, several frames per write. It dials, runs the
/// handshake (<see cref="PeerHandshake"/>), and on any failure reconnects with backoff (from 10 ms, doubling, to two heartbeats); what was queued for a broken link is
/// dropped, as Raft resends what matters.
/// </summary>
internal sealed class PeerLink(PeerTransport transport, ulong id, string url, int maxQueue) : IDisposable
{
    private readonly ConcurrentQueue<Outgoing> _queue = new();
    private readonly AsyncSignal _wake = new();
    private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(transport.Stopping);
    private int _count;
    private volatile bool _connected;

    public ulong Id => id;

    /// <summary>Retries never wait longer than two heartbeats (at most a second): a peer that comes back is heard from before anyone times out.</summary>
    private TimeSpan MaxBackoff => TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, transport.Member.Options.HeartbeatInterval.Ticks * 2));

    public string Url => url;

    public bool Connected => _connected;

    public void Start() => _ = RunAsync();

    /// <summary>An encoded frame waiting to go out; a pooled one goes back to <see cref="ArrayPool{T}.Shared"/> once written or dropped.</summary>
    public readonly record struct Outgoing(byte[] Frame, int Length, bool Pooled)
    {
        public void Release()
        {
            if (Pooled) ArrayPool<byte>.Shared.Return(Frame);
        }
    }

    /// <summary>The queue holds as many frames as it may (what is sent now would be dropped).</summary>
    public bool Full => Volatile.Read(ref _count) >= maxQueue;

    public bool Enqueue(Outgoing item)
    {
        if (Interlocked.Increment(ref _count) > maxQueue)
        {
            Interlocked.Decrement(ref _count);
            return false;
        }
        _queue.Enqueue(item);
        _wake.Set();
        return true;
    }

    /// <summary>Dials the peer and runs the handshake (TLS when configured, then the proof of the peer secret); a refusal throws <see cref="ProtocolException"/>.</summary>
    public async Task<Stream> ConnectAsync(PeerCodec.LinkKind kind, CancellationToken cancellationToken)
    {
        var member = transport.Member;
        try
        {
            var (stream, _) = await PeerHandshake.DialAsync(member.Tls, member.PeerKey, url, member.ClusterId, member.Id, id, kind, member.Options.HandshakeTimeout, cancellationToken).ConfigureAwait(false);
            return stream;
        }
        catch (ProtocolException e) when (e.Code is ErrorCode.PeerAuthFailed)
        {
            Interlocked.Increment(ref member.Stats.PeerAuthFailures);
            throw;
        }
        catch (ProtocolException e) when (e.Code is not (ErrorCode.MemberRemoved or ErrorCode.ClusterMismatch))
        {
            throw new ProtocolException(ErrorCode.ClusterMismatch, e.Message);
        }
    }

    private async Task RunAsync()
    {
        var backoff = TimeSpan.FromMilliseconds(10);
        var loggedRefusal = false;
        while (!_stop.IsCancellationRequested)
        {
            Stream? stream = null;
            try
            {
                stream = await ConnectAsync(PeerCodec.LinkKind.Raft, _stop.Token).ConfigureAwait(false);
                backoff = TimeSpan.FromMilliseconds(10);
                loggedRefusal = false;
                _connected = true;
                await PumpAsync(stream).ConfigureAwait(false);
            }
            catch (ProtocolException e) when (e.Code == ErrorCode.MemberRemoved)
            {
                transport.Member.OnRemovedByPeer(e.Message);
                return;
            }
            catch (ProtocolException e)
            {
                if (!loggedRefusal) transport.Member.Log($"peer {id:x16} at {url} refused the link: {e.Message}");
                loggedRefusal = true;
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
            {
            }
            finally
            {
                _connected = false;
                if (stream is not null) await stream.DisposeAsync().ConfigureAwait(false);
            }
            // Whatever was queued for the broken link is stale by the time it reconnects.
            while (_queue.TryDequeue(out var stale))
            {
                Interlocked.Decrement(ref _count);
                stale.Release();
            }
            if (_stop.IsCancellationRequested) return;
            try
            {
                await Task.Delay(backoff, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
        }
    }

    private async Task PumpAsync(Stream stream)
    {
        // The peer never writes on this stream after its hello: a read that returns means it closed.
        var closed = stream.ReadAsync(new byte[1], _stop.Token).AsTask();
        using var w = new FrameWriter(64 << 10);
        while (!_stop.IsCancellationRequested)
        {
            var wait = _wake.WaitAsync().AsTask();
            if (await Task.WhenAny(wait, closed).ConfigureAwait(false) == closed) return;
            while (!_queue.IsEmpty)
            {
                w.Reset();
                while (w.Length < (1 << 20) && _queue.TryDequeue(out var item))
                {
                    Interlocked.Decrement(ref _count);
                    w.Raw(item.Frame.AsSpan(0, item.Length));
                    item.Release();
                }
                await stream.WriteAsync(w.Written, _stop.Token).ConfigureAwait(false);
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _wake.Set();
    }
}
