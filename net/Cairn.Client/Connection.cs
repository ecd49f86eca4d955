using System.Buffers;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>
/// One multiplexed connection to a member (docs/protocol.md): many requests in flight, each with its own id, answered
/// in any order. Requests are encoded straight into a pooled front buffer under a short lock; a writer loop (a
/// <see cref="WritePump"/>) swaps it with the back buffer and sends everything gathered in one write, so requests queued
/// during a send leave together.
/// A reader loop parses frames in place from a pooled receive buffer and hands each to the request with its id. When
/// either loop fails, every request still waiting learns whether its bytes may have reached the member.
/// </summary>
internal sealed class Connection : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly int _maxFrame;
    private readonly WritePump _out;                     // the requests, and the writer loop that sends them; its Lock guards what follows
    private readonly List<PendingOp> _unsent = [];       // the requests in the pump's front buffer; guarded by _out.Lock
    private readonly Dictionary<ulong, PendingOp> _pending = [];  // id → request waiting for frames; guarded by _out.Lock
    private string? _failure;                            // why the connection died; guarded by _out.Lock, set once
    private readonly CancellationTokenSource _closing = new();
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(64 << 10);  // owned by the reader loop once started
    private int _filled;
    private Task _reader = Task.CompletedTask;
    private Task _writer = Task.CompletedTask;
    private SslStream? _tls;                             // set by the TLS handshake; then all bytes go through it
    private string? _goodbye;                            // the member's last word (id 0 error): it served nothing unanswered; guarded by _out.Lock

    private Connection(string endpoint, Socket socket, int maxFrame)
    {
        Endpoint = endpoint;
        _socket = socket;
        _maxFrame = maxFrame;
        _out = new WritePump(16 << 10, onTake: OnTake);
    }

    /// <summary>Whether the connection runs over TLS.</summary>
    public bool IsTls => _tls is not null;

    private ValueTask SendAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) =>
        _tls is { } tls ? tls.WriteAsync(bytes, cancellationToken) : SendPlainAsync(bytes, cancellationToken);

    private async ValueTask SendPlainAsync(ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken) =>
        await _socket.SendAsync(bytes, SocketFlags.None, cancellationToken).ConfigureAwait(false);

    private ValueTask<int> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        _tls is { } tls ? tls.ReadAsync(buffer, cancellationToken) : _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);

    /// <summary>The client side of the TLS handshake; a refusal says why in a few words.</summary>
    private async Task HandshakeTlsAsync(string host, ClientTlsContext tls, CancellationToken cancellationToken)
    {
        string? refusal = null;
        var ssl = new SslStream(new NetworkStream(_socket, ownsSocket: false), leaveInnerStreamOpen: false);
        _tls = ssl;
        try
        {
            await ssl.AuthenticateAsClientAsync(tls.For(host, r => refusal = r), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            throw new ConnectFailedException(Endpoint, refusal is not null
                ? $"TLS: the member's certificate was refused: {refusal}"
                : $"TLS handshake failed: {e.Message} (does the member's client port speak TLS, and does it require a client certificate?)", e);
        }
    }

    /// <summary>HOST:PORT as given.</summary>
    public string Endpoint { get; }

    /// <summary>The member's answer to the hello: version, cluster, member, frame limit.</summary>
    public HelloResponse Hello { get; private set; }

    /// <summary>Canceled when the connection closes.</summary>
    public CancellationToken Closing => _closing.Token;

    /// <summary>False once the connection has failed or been closed.</summary>
    public bool IsOpen
    {
        get { lock (_out.Lock) return _failure is null; }
    }

    /// <summary>Set by the client once it has asked this member for the member list.</summary>
    public int Discovered;

    /// <summary>Connects and exchanges hellos within <paramref name="timeout"/>; a <see cref="ConnectFailedException"/> says why not.</summary>
    public static async Task<Connection> OpenAsync(string endpoint, TimeSpan timeout, int maxResponseFrame, ClientTlsContext? tls, CancellationToken cancellationToken)
    {
        var (host, port) = Client.Endpoint.Parse(endpoint);
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        Connection? c = null;
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            if (IPAddress.TryParse(host, out var ip)) await socket.ConnectAsync(new IPEndPoint(ip, port), deadline.Token).ConfigureAwait(false);
            else await socket.ConnectAsync(host, port, deadline.Token).ConfigureAwait(false);
            c = new Connection(endpoint, socket, maxResponseFrame);
            if (tls is not null) await c.HandshakeTlsAsync(host, tls, deadline.Token).ConfigureAwait(false);
            await c.HandshakeAsync(deadline.Token).ConfigureAwait(false);
            c.Start();
            return c;
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Discard(socket, c);
            throw new ConnectFailedException(endpoint, $"no answer within {timeout.TotalMilliseconds:0} ms");
        }
        catch (SocketException e)
        {
            Discard(socket, c);
            throw new ConnectFailedException(endpoint, Describe(e));
        }
        catch (Exception e) when (e is IOException or ProtocolException)
        {
            Discard(socket, c);
            throw new ConnectFailedException(endpoint, e.Message);
        }
        catch (CairnException e)
        {
            Discard(socket, c);
            throw new ConnectFailedException(endpoint, $"{e.Code}: {e.Message}", e);
        }
        catch (ConnectFailedException)
        {
            Discard(socket, c);
            throw;
        }
        catch
        {
            Discard(socket, c);
            throw;
        }
    }

    private static void Discard(Socket socket, Connection? c)
    {
        c?._tls?.Dispose();
        socket.Dispose();
        if (c is null) return;
        c.ReleaseBuffers();
        c._out.Dispose();
        c._closing.Dispose();
    }

    /// <summary>Words for a socket error that a person reads.</summary>
    public static string Describe(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused => "connection refused",
        SocketError.TimedOut => "timed out",
        SocketError.HostNotFound or SocketError.NoData => "unknown host",
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => "unreachable",
        SocketError.ConnectionReset => "connection reset",
        _ => e.Message,
    };

    private async Task HandshakeAsync(CancellationToken cancellationToken)
    {
        using (var w = new FrameWriter(64))
        {
            w.BeginFrame(MessageType.Hello, FrameFlags.None, 0);
            Messages.WriteHello(w);
            w.EndFrame();
            await SendAsync(w.Written, cancellationToken).ConfigureAwait(false);
        }
        while (true)
        {
            if (Frame.TryReadHeader(_buffer.AsSpan(0, _filled), out var h))
            {
                if (h.PayloadLength > 1 << 16) throw new ProtocolException(ErrorCode.Malformed, $"the hello answer claims {h.PayloadLength} bytes: not a Cairn member?");
                var total = Frame.HeaderSize + (int)h.PayloadLength;
                if (_filled >= total)
                {
                    var r = new PayloadReader(_buffer.AsSpan(Frame.HeaderSize, (int)h.PayloadLength));
                    if (h.Type == MessageType.Error)
                    {
                        var (code, message) = Messages.ReadError(ref r);
                        throw CairnException.FromServer(code, message, Endpoint);
                    }
                    if (h.Type != MessageType.Hello || (h.Flags & FrameFlags.Response) == 0) throw new ProtocolException(ErrorCode.Malformed, $"expected a hello answer, got {h.Type}: not a Cairn member?");
                    Hello = Messages.ReadHelloResponse(ref r);
                    _buffer.AsSpan(total, _filled - total).CopyTo(_buffer);
                    _filled -= total;
                    return;
                }
            }
            var n = await ReceiveAsync(_buffer.AsMemory(_filled), cancellationToken).ConfigureAwait(false);
            if (n == 0) throw new IOException("the member closed the connection during the hello");
            _filled += n;
        }
    }

    private void Start()
    {
        _reader = Task.Run(ReadLoopAsync);
        _writer = Task.Run(WriteLoopAsync);
    }

    /// <summary>
    /// Queues a request: its frame is encoded into the send buffer at once (<paramref name="body"/> writes the payload)
    /// and it joins the table of requests waiting for answers. False when the connection is dead (nothing was sent).
    /// </summary>
    public bool TryStart(PendingOp op, Action<FrameWriter>? body)
    {
        var w = _out.Begin();
        try
        {
            if (_failure is not null) return false;
            w.BeginFrame(op.Type, FrameFlags.None, op.Id);
            try
            {
                body?.Invoke(w);
            }
            catch
            {
                w.AbandonFrame();
                throw;
            }
            var size = w.OpenPayloadLength;
            if (size > Hello.MaxFrameBytes)
            {
                w.AbandonFrame();
                throw new CairnException(ErrorCode.FrameTooLarge,
                    $"the {op.Type} request is {size} bytes, over {Endpoint}'s frame limit of {Hello.MaxFrameBytes}; split it or store large values in pieces", Endpoint);
            }
            w.EndFrame();
            _pending[op.Id] = op;
            _unsent.Add(op);
        }
        finally
        {
            _out.End();
        }
        return true;
    }

    /// <summary>Stops waiting for <paramref name="op"/> (canceled or timed out): later frames for it are dropped.</summary>
    public void Forget(PendingOp op)
    {
        lock (_out.Lock)
        {
            if (_pending.TryGetValue(op.Id, out var p) && ReferenceEquals(p, op)) _pending.Remove(op.Id);
        }
    }

    private long _socketWrites;
    private long _framesWritten;

    /// <summary>Socket writes and the request frames they carried (for tests and diagnostics: many frames per write is coalescing at work).</summary>
    public (long Writes, long Frames) WriteCounters => (Interlocked.Read(ref _socketWrites), Interlocked.Read(ref _framesWritten));

    /// <summary>Requests waiting for answers (for tests and diagnostics).</summary>
    public int PendingCount
    {
        get { lock (_out.Lock) return _pending.Count; }
    }

    /// <summary>Under the pump's lock, as its loop takes the requests written so far to send them.</summary>
    private void OnTake()
    {
        // From here the bytes may reach the member: a lost connection leaves these requests' outcome unknown.
        foreach (var op in _unsent) op.Written = true;
        Interlocked.Increment(ref _socketWrites);
        Interlocked.Add(ref _framesWritten, _unsent.Count);
        _unsent.Clear();
    }

    /// <summary>Sends the requests until the connection fails or closes (<see cref="Fail"/> aborts the pump).</summary>
    private async Task WriteLoopAsync()
    {
        try
        {
            if (_tls is { } tls) await _out.RunAsync(tls, _closing.Token).ConfigureAwait(false);
            else await _out.RunAsync(_socket, _closing.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            Fail(e is SocketException se ? Describe(se) : e.Message);
        }
    }

    private async Task ReadLoopAsync()
    {
        try
        {
            while (true)
            {
                var at = 0;
                while (Frame.TryReadHeader(_buffer.AsSpan(at, _filled - at), out var h))
                {
                    if (h.PayloadLength > (uint)_maxFrame)
                    {
                        throw new ProtocolException(ErrorCode.FrameTooLarge, $"the member sent a frame of {h.PayloadLength} bytes, over this client's limit of {_maxFrame} (MaxResponseFrameBytes)");
                    }
                    var total = Frame.HeaderSize + (int)h.PayloadLength;
                    if (_filled - at < total)
                    {
                        if (total > _buffer.Length)
                        {
                            Grow(at, total);
                            at = 0;
                        }
                        break;
                    }
                    var wait = Dispatch(h, at + Frame.HeaderSize);
                    at += total;
                    if (!wait.IsCompletedSuccessfully) await wait.ConfigureAwait(false);
                }
                if (at > 0)
                {
                    _buffer.AsSpan(at, _filled - at).CopyTo(_buffer);
                    _filled -= at;
                }
                var n = await ReceiveAsync(_buffer.AsMemory(_filled), _closing.Token).ConfigureAwait(false);
                if (n == 0)
                {
                    Fail(_filled == 0 ? "the member closed the connection" : "the member closed the connection in the middle of a frame");
                    return;
                }
                _filled += n;
            }
        }
        catch (ProtocolException e)
        {
            Fail($"protocol error: {e.Message}");
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            Fail(e is SocketException se ? Describe(se) : e.Message);
        }
        finally
        {
            ReleaseBuffers();
        }
    }

    /// <summary>Moves the partial frame at <paramref name="at"/> to the start of a buffer big enough for its <paramref name="total"/> bytes.</summary>
    private void Grow(int at, int total)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(total);
        _buffer.AsSpan(at, _filled - at).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
        _filled -= at;
    }

    private ValueTask Dispatch(in FrameHeader h, int offset)
    {
        if ((h.Flags & FrameFlags.Response) == 0) throw new ProtocolException(ErrorCode.Malformed, $"the member sent a {h.Type} frame not flagged as a response");
        if (h.RequestId == 0 && h.Type == MessageType.Error)
        {
            // The member's last word before it closes (idle or handshake timeout, too many connections): it has stopped
            // reading, so no request still waiting was served and each may be sent again elsewhere.
            var r = new PayloadReader(_buffer.AsSpan(offset, (int)h.PayloadLength));
            var (code, message) = Messages.ReadError(ref r);
            lock (_out.Lock) _goodbye ??= $"{code}: {message}";
            return default;
        }
        PendingOp? op;
        lock (_out.Lock) _pending.TryGetValue(h.RequestId, out op);
        if (op is null) return default; // forgotten (canceled, timed out) or a stream's frame after it ended
        var wait = op.OnFrame(this, h, _buffer.AsSpan(offset, (int)h.PayloadLength), out var done);
        if (done) Forget(op);
        return wait;
    }

    private void Fail(string reason)
    {
        List<PendingOp> lost;
        bool served;
        lock (_out.Lock)
        {
            if (_failure is not null) return;
            if (_goodbye is not null) reason = $"the member closed the connection ({_goodbye})";
            served = _goodbye is null;
            _failure = reason;
            _out.Abort();   // under the same lock: no request is marked written once the connection has failed
            lost = [.. _pending.Values];
            _pending.Clear();
        }
        _closing.Cancel();
        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        _tls?.Dispose();
        _socket.Dispose();
        foreach (var op in lost) op.OnConnectionLost(new ConnectionLostException(Endpoint, reason, served && op.Written));
    }

    private void ReleaseBuffers()
    {
        var b = Interlocked.Exchange(ref _buffer, []);
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }

    /// <summary>Closes the connection; requests still waiting fail with a lost connection.</summary>
    public async ValueTask DisposeAsync()
    {
        Fail("closed by the client");
        try
        {
            await Task.WhenAll(_reader, _writer).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
        }
        _out.Dispose();
        _closing.Dispose();
    }
}

/// <summary>An endpoint could not be reached or did not speak the protocol; <see cref="Reason"/> says why in a few words.</summary>
internal sealed class ConnectFailedException(string endpoint, string reason, Exception? inner = null)
    : Exception($"{endpoint} ({reason})", inner)
{
    public string Endpoint { get; } = endpoint;

    public string Reason { get; } = reason;
}
