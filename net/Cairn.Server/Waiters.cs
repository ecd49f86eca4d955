using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// A command on its way into the log, with whoever waits for it to apply. Client writes take one from a pool
/// (<see cref="Rent"/>) and the raft thread returns it once answered, so the write path makes no object per request.
/// </summary>
internal sealed class Proposal : IPooled
{
    private const int KeptBytes = 16 << 10;   // a pooled proposal keeps a buffer up to this size; larger ones go back to the shared pool
    private byte[] _buffer;
    private int _length;
    private bool _rentedBuffer;                // from ArrayPool<byte>.Shared (larger than KeptBytes)

    public Proposal(byte[] data, Waiter? waiter)
    {
        _buffer = data;
        _length = data.Length;
        Waiter = waiter;
    }

    /// <summary>The entry's bytes (the raft core copies them into its log when proposed).</summary>
    public ReadOnlyMemory<byte> Data => _buffer.AsMemory(0, _length);

    /// <summary>Where the entry's bytes are written, for a rented proposal: <see cref="Data"/>'s length of it.</summary>
    public Span<byte> Buffer => _buffer.AsSpan(0, _length);

    public Waiter? Waiter { get; private set; }
    public ulong Seq { get; set; }
    public long Deadline { get; set; }
    public bool AddsData { get; set; }

    private static readonly BoundedPool<Proposal> Pool = new(65_536);
    private bool _pooled;
    bool IPooled.InPool { get; set; }

    /// <summary>
    /// A proposal of a client request, answered by a pooled <see cref="RequestWaiter"/>, with room for an entry of
    /// <paramref name="length"/> bytes that the caller writes into <see cref="Buffer"/>: neither the proposal nor its
    /// bytes are allocated once the pool is warm.
    /// </summary>
    public static Proposal Rent(int length, Responder responder, Protocol.MessageType type, ulong id, bool addsData)
    {
        var p = Pool.TryRent() ?? new Proposal([], null) { _pooled = true };
        if (p._buffer.Length < length)
        {
            p._rentedBuffer = length > KeptBytes;
            p._buffer = p._rentedBuffer ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : new byte[Math.Max(length, 512)];
        }
        p._length = length;
        p.Waiter = RequestWaiter.Rent(responder, type, id);
        p.AddsData = addsData;
        p.Deadline = 0;
        return p;
    }

    /// <summary>Hands a rented proposal (and its waiter) back once it is answered and nothing refers to it any more.</summary>
    public void Return()
    {
        if (!_pooled) return;
        (Waiter as RequestWaiter)?.Return();
        Waiter = null;
        _length = 0;
        if (_rentedBuffer)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
            _rentedBuffer = false;
        }
        Pool.Return(this);
    }
}

/// <summary>Someone waiting for a proposal to apply.</summary>
internal abstract class Waiter
{
    public abstract void Complete(Member member, in ApplyOutcome result);

    public abstract void Fail(ErrorCode code, string message);
}

/// <summary>A client request waiting for its command to apply: writes the answer for its type.</summary>
internal sealed class RequestWaiter(Responder responder, Protocol.MessageType type, ulong id) : Waiter, IPooled
{
    private Responder _responder = responder;
    private Protocol.MessageType _type = type;
    private ulong _id = id;
    private bool _pooled;

    private static readonly BoundedPool<RequestWaiter> Pool = new(65_536);
    bool IPooled.InPool { get; set; }

    public static RequestWaiter Rent(Responder responder, Protocol.MessageType type, ulong id)
    {
        if (Pool.TryRent() is not { } w) return new RequestWaiter(responder, type, id) { _pooled = true };
        w._responder = responder;
        w._type = type;
        w._id = id;
        return w;
    }

    public void Return()
    {
        if (!_pooled) return;
        _responder = null!;
        Pool.Return(this);
    }

    public override void Complete(Member member, in ApplyOutcome result)
    {
        var responder = _responder;
        var type = _type;
        var id = _id;
        if (!responder.IsOpen) return;
        if (result.Error is { } error)
        {
            Fail(Responder.CodeOf(error), error.Message);
            return;
        }
        var w = responder.Begin();
        try
        {
            w.BeginFrame(type, FrameFlags.Response, id);
            if (result.PlainPut)
            {
                // A put without flags: its answer is the header at its revision and "no previous key-value".
                Messages.WriteHeader(w, member.Header(result.Revision));
                w.Bool(false);
                w.EndFrame();
                return;
            }
            switch (result.Response)
            {
                case PutResponse put:
                    Messages.WriteHeader(w, member.Header(put.Header.Revision));
                    Messages.WritePutResponse(w, put);
                    break;
                case DeleteRangeResponse del:
                    Messages.WriteHeader(w, member.Header(del.Header.Revision));
                    Messages.WriteDeleteResponse(w, del);
                    break;
                case TxnResponse txn:
                    Messages.WriteHeader(w, member.Header(txn.Header.Revision));
                    Messages.WriteTxnResponse(w, txn);
                    break;
                case CompactResponse c:
                    Messages.WriteHeader(w, member.Header(c.Header.Revision));
                    w.I64(c.Removed);
                    break;
                case LeaseGrantResponse g:
                    Messages.WriteHeader(w, member.Header(g.Header.Revision));
                    w.I64(g.Id);
                    w.I64(g.Ttl);
                    break;
                case LeaseRevokeResponse r:
                    Messages.WriteHeader(w, member.Header(r.Header.Revision));
                    w.I64(r.Deleted);
                    break;
                case ResponseHeader h:
                    Messages.WriteHeader(w, member.Header(h.Revision));
                    if (type == Protocol.MessageType.AlarmDisarm) Messages.WriteAlarms(w, []);
                    break;
                default:
                    Messages.WriteHeader(w, member.Header());
                    break;
            }
            w.EndFrame();
        }
        catch
        {
            w.AbandonFrame();
            throw;
        }
        finally
        {
            responder.End();
        }
    }

    public override void Fail(ErrorCode code, string message)
    {
        if (_responder.IsOpen) _responder.Error(_type, _id, code, message);
    }
}

/// <summary>A waiter that completes a task (the member's own proposals, e.g. publishing its address).</summary>
internal sealed class TaskWaiter : Waiter
{
    public TaskCompletionSource<ApplyResult?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override void Complete(Member member, in ApplyOutcome result) =>
        Done.TrySetResult(new ApplyResult(result.Index, result.PlainPut ? new PutResponse(new ResponseHeader(result.Revision), null) : result.Response, result.Error));

    public override void Fail(ErrorCode code, string message) => Done.TrySetResult(null);
}

/// <summary>A linearizable read waiting for its ReadIndex round and for the state to be applied up to it.</summary>
internal sealed class PendingRead(Responder responder, ulong id, RangeRequest request)
{
    public long Deadline { get; set; }

    public void Serve(Member member) => member.ServeRange(responder, id, request);

    public void Fail(ErrorCode code, string message)
    {
        if (responder.IsOpen) responder.Error(Protocol.MessageType.Range, id, code, message);
    }
}

/// <summary>Operations on the raft thread other than proposals: membership changes and leadership moves.</summary>
internal abstract class AdminOp
{
    public long Deadline { get; set; }

    public abstract void Complete(Member member);

    public abstract void Fail(ErrorCode code, string message);

    public sealed class Change(ConfigChange change, byte[]? context, Responder responder, Protocol.MessageType type, ulong id) : AdminOp
    {
        public ConfigChange ChangeToMake => change;
        public byte[]? Context => context;

        public override void Complete(Member member)
        {
            if (!responder.IsOpen) return;
            var w = responder.Begin();
            try
            {
                w.BeginFrame(type, FrameFlags.Response, id);
                Messages.WriteHeader(w, member.Header());
                w.U64(change.Member);
                Messages.WriteMembers(w, member.MemberList());
                w.EndFrame();
            }
            finally
            {
                responder.End();
            }
        }

        public override void Fail(ErrorCode code, string message)
        {
            if (responder.IsOpen) responder.Error(type, id, code, message);
        }
    }

    public sealed class Transfer(ulong to, Responder responder, ulong id) : AdminOp
    {
        public ulong To => to;

        public override void Complete(Member member)
        {
            if (!responder.IsOpen) return;
            var w = responder.Begin();
            try
            {
                w.BeginFrame(Protocol.MessageType.MoveLeader, FrameFlags.Response, id);
                Messages.WriteHeader(w, member.Header());
                w.EndFrame();
            }
            finally
            {
                responder.End();
            }
        }

        public override void Fail(ErrorCode code, string message)
        {
            if (responder.IsOpen) responder.Error(Protocol.MessageType.MoveLeader, id, code, message);
        }
    }

    public sealed class HandOver(TaskCompletionSource<bool> done) : AdminOp
    {
        public TaskCompletionSource<bool> Done => done;

        /// <summary>The voter leadership is handed to (set by the raft thread).</summary>
        public ulong Target { get; set; }

        public override void Complete(Member member) => done.TrySetResult(true);

        public override void Fail(ErrorCode code, string message) => done.TrySetResult(false);
    }
}

/// <summary>
/// The leader's lease clocks: each lease expires a TTL after its grant or last keep-alive. A new leader restarts every
/// clock with the full TTL (as etcd does), so a change of leader never expires a lease early.
/// </summary>
internal sealed class LeaseKeeper
{
    private readonly Dictionary<long, (long Deadline, long Ttl, long RetryAt)> _leases = [];
    private readonly Lock _lock = new();

    private static long Now => Stopwatch.GetTimestamp();

    private static long Seconds(long s) => s * Stopwatch.Frequency;

    public void Reset(IReadOnlyList<LeaseInfo> leases)
    {
        lock (_lock)
        {
            _leases.Clear();
            foreach (var l in leases) _leases[l.Id] = (Now + Seconds(l.Ttl), l.Ttl, 0);
        }
    }

    public void Granted(long id, long ttl)
    {
        lock (_lock) _leases[id] = (Now + Seconds(ttl), ttl, 0);
    }

    /// <summary>Renews a lease; its TTL, or -1 when it does not exist.</summary>
    public long KeepAlive(long id, KvStateMachine sm)
    {
        var info = sm.Lease(id, withKeys: false);
        lock (_lock)
        {
            if (info is null)
            {
                _leases.Remove(id);
                return -1;
            }
            _leases[id] = (Now + Seconds(info.Ttl), info.Ttl, 0);
            return info.Ttl;
        }
    }

    /// <summary>Seconds left, or -1 when unknown.</summary>
    public long Remaining(long id)
    {
        lock (_lock)
        {
            if (!_leases.TryGetValue(id, out var l)) return -1;
            return Math.Max(0, (long)Math.Ceiling((l.Deadline - Now) / (double)Stopwatch.Frequency));
        }
    }

    /// <summary>Leases past their deadline that are not being revoked already (a revoke is retried after a second).</summary>
    public List<long> Expired(KvStateMachine sm)
    {
        var now = Now;
        lock (_lock)
        {
            if (_leases.Count == 0) return NoLeases;
        }
        var list = new List<long>();
        lock (_lock)
        {
            foreach (var (id, l) in _leases)
            {
                if (l.Deadline <= now && l.RetryAt <= now) list.Add(id);
            }
        }
        if (list.Count == 0) return list;
        var live = new HashSet<long>();
        foreach (var l in sm.Leases()) live.Add(l.Id);
        lock (_lock)
        {
            foreach (var id in list.Where(id => !live.Contains(id)).ToList())
            {
                _leases.Remove(id);
                list.Remove(id);
            }
        }
        return list;
    }

    private static readonly List<long> NoLeases = [];

    public void Revoking(long id)
    {
        lock (_lock)
        {
            if (_leases.TryGetValue(id, out var l)) _leases[id] = l with { RetryAt = Now + Stopwatch.Frequency };
        }
    }
}
