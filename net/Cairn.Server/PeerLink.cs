using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// The outbound stream to one peer: frames encoded into a <see cref="WritePump"/>'s buffer, written by its loop, several
/// frames per write. It dials, runs the handshake (<see cref="PeerHandshake"/>), and on any failure reconnects with backoff
/// (from 10 ms, doubling, to two heartbeats); what was pending or being written on a broken link is dropped and the
/// peer reported unreachable, as Raft resends what matters (and a forwarded request's client learns its outcome is unknown).
/// </summary>
internal sealed class PeerLink : IDisposable
{
    private const int KeptBuffer = 4 << 20;   // a buffer grown past this by a burst is not kept

    // Frames are encoded straight into the pump's front buffer by whoever sends; its loop writes them in one call. No
    // message object waits in a queue (its entries' bytes belong to the Raft log, which may reuse them once compacted),
    // nothing is copied twice, and nothing is allocated per message.
    private readonly WritePump _out;
    private int _frames;                      // frames waiting in the pump's front buffer; guarded by _out.Lock
    private readonly PeerTransport _transport;
    private readonly ulong _id;
    private readonly string _url;
    private readonly int _maxQueue;
    private readonly CancellationTokenSource _stop;
    private volatile bool _connected;

    public PeerLink(PeerTransport transport, ulong id, string url, int maxQueue)
    {
        _transport = transport;
        _id = id;
        _url = url;
        _maxQueue = maxQueue;
        _stop = CancellationTokenSource.CreateLinkedTokenSource(transport.Stopping);
        _out = new WritePump(64 << 10, onTake: () => _frames = 0, keptCapacity: KeptBuffer);
    }

    public ulong Id => _id;

    /// <summary>Retries never wait longer than two heartbeats (at most a second): a peer that comes back is heard from before anyone times out.</summary>
    private TimeSpan MaxBackoff => TimeSpan.FromTicks(Math.Min(TimeSpan.FromSeconds(1).Ticks, _transport.Host.Options.HeartbeatInterval.Ticks * 2));

    public string Url => _url;

    public bool Connected => _connected;

    public void Start() => _ = RunAsync();

    /// <summary>Encodes <paramref name="m"/> for sending; false (dropped) when <c>maxQueue</c> frames already wait.</summary>
    public bool Send(Message m)
    {
        var w = _out.Begin();
        try
        {
            if (_frames >= _maxQueue) return false;
            PeerCodec.WriteMessage(w, m);
            _frames++;
        }
        finally
        {
            _out.End();
        }
        return true;
    }

    /// <summary>Queues a frame given as its first bytes and the rest; false (dropped) when <c>maxQueue</c> frames already wait.</summary>
    public bool Send(ReadOnlySpan<byte> head, ReadOnlySpan<byte> rest)
    {
        var w = _out.Begin();
        try
        {
            if (_frames >= _maxQueue) return false;
            w.Raw(head);
            w.Raw(rest);
            _frames++;
        }
        finally
        {
            _out.End();
        }
        return true;
    }

    /// <summary>Forgets what waits to be written (the pump has stopped: the link broke).</summary>
    private void DropPending()
    {
        lock (_out.Lock)
        {
            _out.Drop();
            _frames = 0;
        }
    }

    /// <summary>Dials the peer and runs the handshake (TLS when configured, then the proof of the peer secret); a refusal throws <see cref="ProtocolException"/>.</summary>
    public async Task<Stream> ConnectAsync(PeerCodec.LinkKind kind, CancellationToken cancellationToken)
    {
        var member = _transport.Host;
        try
        {
            var (stream, _) = await PeerHandshake.DialAsync(member.Tls, member.PeerKey, _url, member.ClusterId, member.Id, _id, kind, member.Options.HandshakeTimeout, cancellationToken).ConfigureAwait(false);
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
                _transport.Host.OnRemovedByPeer(e.Message);
                return;
            }
            catch (ProtocolException e)
            {
                if (!loggedRefusal) _transport.Host.Log($"peer {_id:x16} at {_url} refused the link: {e.Message}");
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
            _transport.Host.ReportUnreachable(_id);
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

    /// <summary>Runs the pump on <paramref name="stream"/> until the stream breaks, the peer closes it or the link stops.</summary>
    private async Task PumpAsync(Stream stream)
    {
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        var watch = CancelWhenClosedAsync(stream, closed);
        try
        {
            await _out.RunAsync(stream, closed.Token).ConfigureAwait(false);
        }
        finally
        {
            await closed.CancelAsync().ConfigureAwait(false);
            await watch.ConfigureAwait(false);
        }
    }

    /// <summary>The peer never writes on this stream after its hello: a read that returns (or fails) means it closed.</summary>
    private static async Task CancelWhenClosedAsync(Stream stream, CancellationTokenSource closed)
    {
        try
        {
            await stream.ReadAsync(new byte[1], closed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or SocketException or ObjectDisposedException or OperationCanceledException
                                      or NotSupportedException or InvalidOperationException or System.Security.Authentication.AuthenticationException)
        {
        }
        await closed.CancelAsync().ConfigureAwait(false);
    }

    public void Dispose()
    {
        _stop.Cancel();
        _out.Dispose();
    }
}
