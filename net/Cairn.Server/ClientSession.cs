using System.Buffers;
using System.Net.Sockets;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// One client connection: a receive loop that parses frames in place from a pooled buffer and hands each to the
/// member, and a writer loop that sends whatever answers have gathered in one write (many requests in flight, answers
/// in any order). A frame over the size limit is answered and the connection closed; a malformed frame is answered
/// and the connection carries on.
/// </summary>
internal sealed class ClientSession : Responder, IDisposable
{
    private readonly Socket _socket;
    private readonly Member _member;
    private readonly int _maxFrame;
    private readonly Lock _outLock = new();
    private FrameWriter _front = new(16 << 10);   // filled by answers; guarded by _outLock
    private FrameWriter _back = new(16 << 10);    // being sent by the writer loop
    private readonly AsyncSignal _wake = new();
    private readonly CancellationTokenSource _closed = new();
    private volatile bool _open = true;
    private bool _helloDone;

    public ClientSession(Socket socket, Member member, int maxFrame)
    {
        _socket = socket;
        _member = member;
        _maxFrame = maxFrame;
        Watches = new SessionWatches(this);
    }

    private Kv.KvReadView? _batchView;

    /// <summary>A read view shared by the reads of one received batch of frames (closed when the batch is done).</summary>
    public override Kv.KvReadView BatchView(Kv.KvStateMachine machine)
    {
        _batchMachine = machine;
        return _batchView ??= machine.AcquireLatest();
    }

    private Kv.KvStateMachine? _batchMachine;

    /// <summary>Who this connection acts as once it authenticated (null: nobody yet); replaced whole, read without a lock.</summary>
    public volatile SessionAuth? Auth;

    /// <summary>The client's address (failed logins are slowed down per user and address).</summary>
    public System.Net.IPAddress? RemoteAddress => (_socket.RemoteEndPoint as System.Net.IPEndPoint)?.Address;

    /// <summary>This connection's watches.</summary>
    public SessionWatches Watches { get; }

    /// <summary>Canceled when the connection closes.</summary>
    public CancellationToken Closed => _closed.Token;

    public override bool IsOpen => _open;

    public override FrameWriter Begin()
    {
        _outLock.Enter();
        return _front;
    }

    public override void End()
    {
        var any = _front.Length > 0;
        _outLock.Exit();
        if (any) _wake.Set();
    }

    /// <summary>Runs both loops until the connection closes.</summary>
    public async Task RunAsync()
    {
        var writer = WriteLoopAsync();
        try
        {
            await ReadLoopAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException or OperationCanceledException)
        {
        }
        finally
        {
            Close();
            await writer.ConfigureAwait(false);
            Dispose();
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
                var n = await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _closed.Token).ConfigureAwait(false);
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
            _member.Handle(this, h, payload);
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

    private async Task WriteLoopAsync()
    {
        try
        {
            while (true)
            {
                await _wake.WaitAsync().ConfigureAwait(false);
                while (true)
                {
                    lock (_outLock)
                    {
                        (_front, _back) = (_back, _front);
                    }
                    if (_back.Length == 0) break;
                    await _socket.SendAsync(_back.Written, SocketFlags.None).ConfigureAwait(false);
                    _back.Reset();
                }
                if (!_open) return;
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
            Close();
        }
    }

    /// <summary>Waits until everything written so far has gone out (used to pace long streams such as snapshots).</summary>
    public async Task DrainAsync(CancellationToken cancellationToken)
    {
        while (_open)
        {
            lock (_outLock)
            {
                if (_front.Length == 0 && _back.Length == 0) return;
            }
            await Task.Delay(1, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Closes the connection (the writer loop sends what is queued first).</summary>
    public void Close()
    {
        if (!_open) return;
        _open = false;
        Watches.CancelAll();
        _wake.Set();
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
        _socket.Dispose();
        lock (_outLock)
        {
            _front.Dispose();
            _back.Dispose();
        }
        _closed.Dispose();
    }
}
