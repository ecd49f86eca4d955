using System.Net;
using System.Threading.Tasks.Sources;
using Cairn.Protocol;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: one unary call of etcd's gRPC API at a time; the router (any thread) writes its answer, the call awaits it.
/// The call's request is written as a raw-protocol frame into <see cref="Request"/> and handed to the request router,
/// as a session's would be; the one answer frame the router writes back completes <see cref="WaitAsync"/>. Reused
/// through <see cref="EtcdGateway"/>'s pool once answered; a call given up (canceled) is never reused, so a late answer
/// lands in a responder nobody reads. Answers for another request id than the current one are dropped.
/// </summary>
// CA1001: the writers' pooled buffers go back when the gateway drops a call (Release); a call given up leaves them to the collector.
#pragma warning disable CA1001
internal sealed class EtcdCall : ClientResponder, IValueTaskSource<bool>, IPooled
#pragma warning restore CA1001
{
    private readonly FrameWriter _answer = new(1024);
    private readonly Lock _lock = new();
    private ManualResetValueTaskSourceCore<bool> _done = new() { RunContinuationsAsynchronously = true };
    private int _completed;               // 1 once _done has a result for the current use
    private CancellationToken _closed;
    private IPAddress? _remote;

    /// <summary>The request frame being built.</summary>
    public FrameWriter Request { get; } = new(1024);

    /// <summary>The request id of the current use.</summary>
    public ulong Id { get; private set; }

    /// <inheritdoc />
    public bool InPool { get; set; }

    /// <summary>Readies the call for one request: a fresh id, the client's identity and its call's cancellation.</summary>
    public void Begin(ulong id, SessionAuth? auth, IPAddress? remote, CancellationToken closed)
    {
        Id = id;
        Auth = auth;
        CertificateUser = null;
        _remote = remote;
        _closed = closed;
        _completed = 0;
        _done.Reset();
        Request.Reset();
        lock (_lock) _answer.Reset();
    }

    /// <summary>Completes once the answer frame is in (true) or the call was canceled (false).</summary>
    public ValueTask<bool> WaitAsync() => new(this, _done.Version);

    /// <summary>Gives up waiting (the call was canceled); the caller must not reuse this call.</summary>
    public void Cancel()
    {
        if (Interlocked.Exchange(ref _completed, 1) == 0) _done.SetResult(false);
    }

    /// <summary>The answer frame (valid once <see cref="WaitAsync"/> returned true).</summary>
    public ReadOnlySpan<byte> AnswerFrame => _answer.WrittenSpan;

    public override IPAddress? RemoteAddress => _remote;

    public override CancellationToken Closed => _closed;

    public override bool IsOpen => Volatile.Read(ref _completed) == 0;

    public override Task DrainAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override FrameWriter Begin()
    {
        _lock.Enter();
        return _answer;
    }

    public override void End()
    {
        var complete = false;
        try
        {
            // A frame abandoned half way leaves nothing; a frame for an earlier use of this call (a late answer) is dropped.
            if (_answer.Length >= Frame.HeaderSize)
            {
                if (Frame.TryReadHeader(_answer.WrittenSpan, out var h) && h.RequestId == Id) complete = true;
                else _answer.Reset();
            }
        }
        finally
        {
            _lock.Exit();
        }
        if (complete && Interlocked.Exchange(ref _completed, 1) == 0) _done.SetResult(true);
    }

    bool IValueTaskSource<bool>.GetResult(short token) => _done.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource<bool>.GetStatus(short token) => _done.GetStatus(token);

    void IValueTaskSource<bool>.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _done.OnCompleted(continuation, state, token, flags);

    /// <summary>Returns the pooled buffers (the call is dropped, not pooled).</summary>
    public void Release()
    {
        Request.Dispose();
        _answer.Dispose();
    }
}
