using System.Buffers;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// One client connection: a receive loop that parses frames in place from a pooled buffer and hands each to the
/// member, and a writer loop (a <see cref="WritePump"/>) that sends whatever answers have gathered in one write (many
/// requests in flight, answers in any order). A frame over the size limit is answered and the connection closed; a
/// malformed frame is answered and the connection carries on.
/// With TLS on the client port the session first runs the server side of the handshake (and, with client-certificate
/// authentication, names its user); plaintext then goes through an <see cref="SslStream"/> instead of the socket.
/// Limits (docs/server.md, "Limits"): requests in flight per connection (one more is answered TooManyRequests), and
/// the handshake and idle timeouts, which <see cref="Member"/>'s sweeper enforces through <see cref="Sweep"/>.
/// </summary>
internal sealed class ClientSession : ClientResponder, IDisposable
{
    private readonly Socket _socket;
    private readonly Member _member;
    private readonly int _maxFrame;
    private readonly int _maxInFlight;
    private readonly WritePump _out = new(16 << 10);   // the answers, and the writer loop that sends them
    private readonly HashSet<ulong> _inFlight = [];  // ids of requests handed to the member and not yet answered; guarded by _out.Lock
    private readonly CancellationTokenSource _closed = new();
    private CancellationTokenSource _idle;          // canceled by the sweeper to end a receive that waits on an idle connection
    private volatile bool _open = true;
    private volatile bool _helloDone;
    private volatile bool _receiving;              // the read loop waits in a receive (so it has no bytes it has not handled)
    private readonly TimeProvider _time;           // the member's clock: handshake and idle timeouts
    private long _lastReceive;                     // a timestamp of _time
    private readonly long _accepted;               // a timestamp of _time
    private SslStream? _tls;

    public ClientSession(Socket socket, Member member)
    {
        _socket = socket;
        _member = member;
        _maxFrame = member.Options.MaxFrameBytes;
        _maxInFlight = member.Options.MaxRequestsInFlight;
        _time = member.Options.Time;
        _accepted = _lastReceive = _time.GetTimestamp();
        _idle = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
    }

    /// <summary>Whether this connection runs over TLS.</summary>
    public bool IsTls => _tls is not null;

    /// <summary>Requests in flight (handed to the member, not yet answered; open watches and snapshot streams included).</summary>
    public int InFlight
    {
        get { lock (_out.Lock) return _inFlight.Count; }
    }

    private Kv.KvReadView? _batchView;

    /// <summary>A read view shared by the reads of one received batch of frames (closed when the batch is done).</summary>
    public override Kv.KvReadView BatchView(Kv.KvStateMachine machine)
    {
        _batchMachine = machine;
        return _batchView ??= machine.AcquireLatest();
    }

    private Kv.KvStateMachine? _batchMachine;

    /// <summary>The client's address (failed logins are slowed down per user and address).</summary>
    public override System.Net.IPAddress? RemoteAddress => (_socket.RemoteEndPoint as System.Net.IPEndPoint)?.Address;

    /// <summary>Canceled when the connection closes.</summary>
    public override CancellationToken Closed => _closed.Token;

    public override bool IsOpen => _open;

    public override FrameWriter Begin() => _out.Begin();

    public override void End()
    {
        // The outermost End settles every answer written since the outermost Begin.
        if (_out.Depth == 1 && _inFlight.Count > 0) Answered(_out.WrittenSinceBegin);
        _out.End();
    }

    /// <summary>
    /// Takes the requests that <paramref name="frames"/> (whole frames just written) finish off the in-flight set. A
    /// stream — a watch, a snapshot — stays in flight until its frame flagged Last (or an error), as a stream counts
    /// against etcd's --max-concurrent-streams.
    /// </summary>
    private void Answered(ReadOnlySpan<byte> frames)
    {
        while (Frame.TryReadHeader(frames, out var h))
        {
            var stream = h.Type is MessageType.WatchCreate or MessageType.WatchEvents or MessageType.Snapshot;
            if (!stream || (h.Flags & FrameFlags.Last) != 0) _inFlight.Remove(h.RequestId);
            frames = frames[Math.Min(frames.Length, Frame.HeaderSize + (int)h.PayloadLength)..];
        }
    }

    /// <summary>Admits a request to the in-flight set; false when the connection already has the most it may.</summary>
    private bool Admit(ulong id)
    {
        lock (_out.Lock)
        {
            if (_inFlight.Count >= _maxInFlight) return false;
            _inFlight.Add(id);
            return true;
        }
    }

    /// <summary>Runs the TLS handshake when the port speaks TLS, then both loops until the connection closes.</summary>
    public async Task RunAsync()
    {
        try
        {
            if (_member.Tls.ClientTls && !await HandshakeTlsAsync().ConfigureAwait(false)) return;
            var writer = WriteLoopAsync();
            try
            {
                await ReadLoopAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or OperationCanceledException or AuthenticationException)
            {
            }
            finally
            {
                Close();
                await writer.ConfigureAwait(false);
            }
        }
        finally
        {
            Dispose();
        }
    }

    /// <summary>
    /// The server side of the TLS handshake (bounded by the handshake timeout: the sweeper closes the socket). A client
    /// that speaks plaintext to the TLS port is told so in a plaintext Error frame; a refused certificate is logged.
    /// </summary>
    private async Task<bool> HandshakeTlsAsync()
    {
        var first = new byte[1];
        try
        {
            if (await _socket.ReceiveAsync(first, SocketFlags.Peek, _closed.Token).ConfigureAwait(false) == 0) return false;
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
            return false;
        }
        if (first[0] != 0x16)
        {
            // Not a TLS handshake record: most likely a Cairn hello in plaintext.
            Interlocked.Increment(ref _member.Stats.TlsFailures);
            using var w = new FrameWriter(256);
            WriteError(w, 0, ErrorCode.Malformed, "this member's client port speaks TLS: connect with TLS (cairn --cacert FILE, CairnClientOptions.Tls); closing the connection");
            await GoodbyeAsync(_socket, w.Written, _member.Options.HandshakeTimeout).ConfigureAwait(false);
            return false;
        }
        var verdict = new MemberTls.Verdict();
        var ssl = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        try
        {
            await ssl.AuthenticateAsServerAsync(_member.Tls.ClientServerOptions(verdict), _closed.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or ObjectDisposedException or OperationCanceledException)
        {
            await ssl.DisposeAsync().ConfigureAwait(false);
            if (!_open) return false; // cut off by the handshake timeout, or the member is stopping
            Interlocked.Increment(ref _member.Stats.TlsFailures);
            _member.Log($"TLS handshake with client {Remote} failed: {verdict.Refusal ?? e.Message}");
            return false;
        }
        if (_member.Tls.ClientCertAuth) CertificateUser = TlsFiles.CommonName(ssl.RemoteCertificate);
        _tls = ssl;
        return true;
    }

    private string Remote
    {
        get
        {
            try
            {
                return _socket.RemoteEndPoint?.ToString() ?? "?";
            }
            catch (ObjectDisposedException)
            {
                return "?";
            }
        }
    }

    /// <summary>
    /// Sends a last frame on a socket that will serve nothing more, then closes its sending side and waits (briefly) for
    /// the client to close, so the frame is not lost to a reset caused by bytes the member never read.
    /// </summary>
    internal static async Task GoodbyeAsync(Socket socket, ReadOnlyMemory<byte> frame, TimeSpan linger)
    {
        using var timeout = new CancellationTokenSource(linger < TimeSpan.FromSeconds(2) ? linger : TimeSpan.FromSeconds(2));
        try
        {
            await socket.SendAsync(frame, SocketFlags.None, timeout.Token).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
            var sink = new byte[4096];
            while (await socket.ReceiveAsync(sink, SocketFlags.None, timeout.Token).ConfigureAwait(false) > 0)
            {
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private async Task ReadLoopAsync()
    {
        var buffer = ArrayPool<byte>.Shared.Rent(64 << 10);
        var filled = 0;
        try
        {
            while (_open)
            {
                if (filled == buffer.Length)
                {
                    // Only a frame larger than the buffer (but within the limit) gets here: grow to fit it.
                    var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _maxFrame + Frame.HeaderSize));
                    buffer.AsSpan(0, filled).CopyTo(bigger);
                    ArrayPool<byte>.Shared.Return(buffer);
                    buffer = bigger;
                }
                int n;
                _receiving = true;
                try
                {
                    n = _tls is { } tls
                        ? await tls.ReadAsync(buffer.AsMemory(filled), _idle.Token).ConfigureAwait(false)
                        : await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _idle.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (_idle.IsCancellationRequested && _open)
                {
                    // The sweeper found the connection idle. Nothing was received, so nothing unanswered was served:
                    // say so and close — unless a frame arrived meanwhile, or a request or watch is still open.
                    _receiving = false;
                    if (IdleFor(_time.GetTimestamp()) is { } reason)
                    {
                        Interlocked.Increment(ref (_helloDone ? ref _member.Stats.IdleClosed : ref _member.Stats.HandshakeTimeouts));
                        Error(MessageType.Error, 0, ErrorCode.IdleTimeout, reason);
                        return;
                    }
                    _idle.Dispose();
                    _idle = CancellationTokenSource.CreateLinkedTokenSource(_closed.Token);
                    continue;
                }
                _receiving = false;
                Volatile.Write(ref _lastReceive, _time.GetTimestamp());
                if (n == 0) return;
                filled += n;
                int consumed;
                bool stop;
                try
                {
                    consumed = Consume(buffer.AsSpan(0, filled), out stop);
                }
                finally
                {
                    if (_batchView is not null) _batchMachine!.ReleaseLatest(_batchView);
                    _batchView = null;
                }
                if (stop) return;
                if (consumed > 0)
                {
                    buffer.AsSpan(consumed, filled - consumed).CopyTo(buffer);
                    filled -= consumed;
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Handles every whole frame in <paramref name="data"/>; returns the bytes consumed.</summary>
    private int Consume(ReadOnlySpan<byte> data, out bool stop)
    {
        stop = false;
        var at = 0;
        while (Frame.TryReadHeader(data[at..], out var h))
        {
            if (h.PayloadLength > (uint)_maxFrame)
            {
                Interlocked.Increment(ref _member.Stats.FramesTooLarge);
                Error(h.Type, h.RequestId, ErrorCode.FrameTooLarge,
                    $"frame of {h.PayloadLength} bytes is over this member's limit of {_maxFrame} (--max-frame-bytes); split the request or store large values in pieces. Closing the connection.");
                stop = true;
                return at;
            }
            var total = Frame.HeaderSize + (int)h.PayloadLength;
            if (data.Length - at < total) break;
            var payload = data.Slice(at + Frame.HeaderSize, (int)h.PayloadLength);
            at += total;
            if (!_helloDone)
            {
                if (!Hello(h, payload))
                {
                    stop = true;
                    return at;
                }
                continue;
            }
            // A cancel frees a stream: it is never refused, nor counted.
            if (h.Type != MessageType.WatchCancel && !Admit(h.RequestId))
            {
                Interlocked.Increment(ref _member.Stats.TooManyRequests);
                Error(h.Type, h.RequestId, ErrorCode.TooManyRequests,
                    $"this connection has {_maxInFlight} requests in flight, the most the member allows (--max-requests-in-flight); wait for answers, or spread the load over more connections. Nothing was done.");
                continue;
            }
            _member.Router.Handle(this, h, payload);
        }
        return at;
    }

    private bool Hello(in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        try
        {
            if (h.Type != MessageType.Hello) throw new ProtocolException(ErrorCode.Malformed, $"the first frame must be a hello, not {h.Type}; see docs/protocol.md");
            var r = new PayloadReader(payload);
            var (min, max) = Messages.ReadHello(ref r);
            if (min > Frame.Version || max < Frame.Version)
            {
                throw new ProtocolException(ErrorCode.UnsupportedVersion, $"client speaks versions {min}..{max}; this member speaks {Frame.Version}; upgrade the client or the member");
            }
        }
        catch (ProtocolException e)
        {
            Error(MessageType.Hello, h.RequestId, e.Code, e.Message + ". Closing the connection.");
            return false;
        }
        _helloDone = true;
        var w = Begin();
        try
        {
            w.BeginFrame(MessageType.Hello, FrameFlags.Response, h.RequestId);
            Messages.WriteHelloResponse(w, new HelloResponse(Frame.Version, _member.ClusterId, _member.Id, _maxFrame));
            w.EndFrame();
        }
        finally
        {
            End();
        }
        return true;
    }

    /// <summary>Sends the answers until <see cref="Close"/> has let the last of them out, or a send fails.</summary>
    private async Task WriteLoopAsync()
    {
        try
        {
            if (_tls is { } tls) await _out.RunAsync(tls).ConfigureAwait(false);
            else await _out.RunAsync(_socket).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or NotSupportedException or InvalidOperationException)
        {
            Close();
        }
    }

    /// <summary>
    /// Called by the member's sweeper: cuts off a connection that has not finished its handshake in time, or (through
    /// the read loop, so nothing received is left unserved) one that has been idle too long.
    /// </summary>
    /// <param name="now">A timestamp of the member's clock (<see cref="MemberOptions.Time"/>).</param>
    public void Sweep(long now)
    {
        if (!_open) return;
        if (!_helloDone)
        {
            if (_time.GetElapsedTime(_accepted, now) < _member.Options.HandshakeTimeout) return;
            if (_tls is null && _member.Tls.ClientTls)
            {
                // Still in the TLS handshake: no frame can be sent; closing the socket ends it.
                Interlocked.Increment(ref _member.Stats.HandshakeTimeouts);
                _member.Log($"client {Remote} did not finish its TLS handshake within {_member.Options.HandshakeTimeout.TotalMilliseconds:0} ms (--handshake-timeout); closed");
                Close();
                _socket.Dispose();
                return;
            }
        }
        else if (_member.Options.IdleTimeout <= TimeSpan.Zero || IdleFor(now) is null)
        {
            return;
        }
        if (_receiving) _idle.Cancel();
    }

    /// <summary>Why the connection may be closed as idle now, or null when it may not.</summary>
    private string? IdleFor(long now)
    {
        var quiet = _time.GetElapsedTime(Volatile.Read(ref _lastReceive), now);
        if (!_helloDone)
        {
            var limit = _member.Options.HandshakeTimeout;
            return _time.GetElapsedTime(_accepted, now) >= limit && quiet >= TimeSpan.Zero
                ? $"no hello within {limit.TotalMilliseconds:0} ms of connecting (--handshake-timeout); closing the connection"
                : null;
        }
        var idle = _member.Options.IdleTimeout;
        if (idle <= TimeSpan.Zero || quiet < idle || InFlight > 0 || Watches.Count > 0) return null;
        return $"nothing received for {idle.TotalMilliseconds:0} ms with nothing in flight (--idle-timeout); closing the connection. Nothing sent after this frame was served: send it again on a new connection";
    }

    /// <summary>Waits until everything written so far has gone out (used to pace long streams such as snapshots).</summary>
    public override async Task DrainAsync(CancellationToken cancellationToken)
    {
        while (_open)
        {
            if (_out.IsIdle) return;
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Closes the connection (the writer loop sends what is queued first).</summary>
    public void Close()
    {
        if (!_open) return;
        _open = false;
        Watches.CancelAll();
        _out.Close();
        try
        {
            _socket.Shutdown(SocketShutdown.Receive);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _open = false;
        _closed.Cancel();
        _tls?.Dispose();
        _socket.Dispose();
        _idle.Dispose();
        _out.Dispose();
        _closed.Dispose();
    }
}
