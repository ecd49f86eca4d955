using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// The outbound stream to one peer: frames encoded into a pending buffer, written by one pump loop, several frames
/// per write. It dials, runs the handshake (<see cref="PeerHandshake"/>), and on any failure reconnects with backoff
/// (from 10 ms, doubling, to two heartbeats); what was pending or being written on a broken link is dropped and the
/// peer reported unreachable, as Raft resends what matters (and a forwarded request's client learns its outcome is unknown).
/// </summary>
internal sealed class PeerLink(PeerTransport transport, ulong id, string url, int maxQueue) : IDisposable
{
    // Frames are encoded straight into _front (under _outLock) by whoever sends; the pump swaps it with _back and
    // writes _back in one call. No message object waits in a queue (its entries' bytes belong to the Raft log, which
    // may reuse them once compacted), nothing is copied twice, and nothing is allocated per message.
    private readonly Lock _outLock = new();
    private FrameWriter _front = new(64 << 10);
    private FrameWriter _back = new(64 << 10);
    private int _frames;                                       // frames in _front
    private const int KeptBuffer = 4 << 20;                    // a buffer grown past this by a burst is not kept
    private readonly AsyncSignal _wake = new();
    private Task? _pendingWait;   // the pump's wait on _wake, kept when a stream closes under it (one pump at a time)
    private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(transport.Stopping);
    private volatile bool _connected;

    public ulong Id => id;

    /// <summary>Retries never wait longer than two heartbeats (at most a second): a peer that comes back is heard from before anyone times out.</summary>
    private TimeSpan MaxBackoff => TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, transport.Host.Options.HeartbeatInterval.Ticks * 2));

    public string Url => url;

    public bool Connected => _connected;

    public void Start() => _ = RunAsync();

    /// <summary>Encodes <paramref name="m"/> for sending; false (dropped) when <c>maxQueue</c> frames already wait.</summary>
    public bool Send(Message m)
    {
        lock (_outLock)
        {
            if (_frames >= maxQueue) return false;
            PeerCodec.WriteMessage(_front, m);
            _frames++;
        }
        _wake.Set();
        return true;
    }

    /// <summary>Queues a frame given as its first bytes and the rest; false (dropped) when <c>maxQueue</c> frames already wait.</summary>
    public bool Send(ReadOnlySpan<byte> head, ReadOnlySpan<byte> rest)
    {
        lock (_outLock)
        {
            if (_frames >= maxQueue) return false;
            _front.Raw(head);
            _front.Raw(rest);
            _frames++;
        }
        _wake.Set();
        return true;
    }

    /// <summary>Takes what waits to be written (empty when nothing does).</summary>
    private FrameWriter TakePending()
    {
        lock (_outLock)
        {
            (_front, _back) = (_back, _front);
            _frames = 0;
            return _back;
        }
    }

    /// <summary>Forgets both buffers (the pump has stopped: the link broke).</summary>
    private void DropPending()
    {
        lock (_outLock)
        {
            _front.Reset();
            _back.Reset();
            _frames = 0;
        }
    }

    /// <summary>Dials the peer and runs the handshake (TLS when configured, then the proof of the peer secret); a refusal throws <see cref="ProtocolException"/>.</summary>
    public async Task<Stream> ConnectAsync(PeerCodec.LinkKind kind, CancellationToken cancellationToken)
    {
        var member = transport.Host;
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
                transport.Host.OnRemovedByPeer(e.Message);
                return;
            }
            catch (ProtocolException e)
            {
                if (!loggedRefusal) transport.Host.Log($"peer {id:x16} at {url} refused the link: {e.Message}");
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
            // Whatever was queued for the broken link is stale by the time it reconnects — and so is what the pump was
            // writing when it broke (a forwarded request sent again could apply twice). Appends pipelined on it are
            // lost: the Raft core is told, and probes this peer again rather than wait for their answers.
            DropPending();
            transport.Host.ReportUnreachable(id);
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
        while (!_stop.IsCancellationRequested)
        {
            // A wait still pending when the last stream closed is the signal's one waiter: it is carried over to the
            // next stream, never replaced. A new wait would reset the signal under the old one, whose continuation —
            // already queued by a Set — would then find its token stale and throw on a pool thread, ending the process.
            var wait = _pendingWait ??= _wake.WaitAsync().AsTask();
            if (await Task.WhenAny(wait, closed).ConfigureAwait(false) == closed) return;
            _pendingWait = null;
            while (true)
            {
                var w = TakePending();
                if (w.Length == 0) break;
                await stream.WriteAsync(w.Written, _stop.Token).ConfigureAwait(false);
                w.Reset();
                if (w.Capacity > KeptBuffer) ReplaceBack(w);
            }
        }
    }

    /// <summary>Swaps a buffer a burst grew large for a new one (the pump's buffer is _back until the next swap).</summary>
    private void ReplaceBack(FrameWriter grown)
    {
        lock (_outLock)
        {
            if (!ReferenceEquals(_back, grown)) return;
            _back = new FrameWriter(64 << 10);
        }
        grown.Dispose();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _wake.Set();
    }
}
