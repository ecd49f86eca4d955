using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>
/// The key-value store embedded in a process, without Raft: each write is a command applied at the next index of a
/// local log, durable when the call returns — unless <see cref="StorageOptions.SyncOnCommit"/> is off, in which case a
/// write is durable after the next <see cref="Sync"/> (or <see cref="Dispose"/>). Safe to use from many threads; reads
/// never wait for writes.
/// </summary>
public sealed class KvStore : IDisposable
{
    private readonly KvStateMachine _machine;
    private readonly Lock _write = new();
    private ulong _next;
    private readonly TimeProvider _time;
    private readonly Dictionary<long, DateTimeOffset> _deadlines = []; // guarded by _write
    private readonly ITimer _expiry;
    private bool _disposed; // guarded by _write

    private KvStore(KvStateMachine machine, TimeProvider time)
    {
        _machine = machine;
        _next = machine.AppliedIndex + 1;
        _time = time;
        // Like a new etcd leader, a reopened store gives every lease its full TTL again.
        var now = time.GetUtcNow();
        foreach (var lease in machine.Leases()) _deadlines[lease.Id] = now + TimeSpan.FromSeconds(lease.Ttl);
        _expiry = time.CreateTimer(_ => ExpireLeases(), null, TimeSpan.FromMilliseconds(500), TimeSpan.FromMilliseconds(500));
        var every = machine.Options.WatchProgressInterval;
        _progress = time.CreateTimer(_ => machine.Watches.NotifyProgress(), null, every, every);
    }

    private readonly ITimer _progress;

    /// <summary>Opens (or creates) the store in <paramref name="directory"/> (file <c>kv.cairn</c>); lease expiry follows <paramref name="time"/>.</summary>
    public static KvStore Open(string directory, KvOptions? options = null, TimeProvider? time = null)
    {
        Directory.CreateDirectory(directory);
        return new KvStore(KvStateMachine.Open(Path.Combine(directory, "kv.cairn"), options), time ?? TimeProvider.System);
    }

    /// <summary>Grants a lease of <paramref name="ttlSeconds"/>; <paramref name="id"/> 0 picks a free id.</summary>
    public LeaseGrantResponse GrantLease(long ttlSeconds, long id = 0)
    {
        lock (_write)
        {
            while (id == 0)
            {
                var candidate = Random.Shared.NextInt64(1, long.MaxValue);
                if (!_deadlines.ContainsKey(candidate)) id = candidate;
            }
            var r = (LeaseGrantResponse)WriteLocked(new KvCommand { LeaseGrant = (id, ttlSeconds) });
            _deadlines[id] = _time.GetUtcNow() + TimeSpan.FromSeconds(ttlSeconds);
            return r;
        }
    }

    /// <summary>Revokes a lease, deleting its keys at one revision.</summary>
    public LeaseRevokeResponse RevokeLease(long id)
    {
        lock (_write)
        {
            var r = (LeaseRevokeResponse)WriteLocked(new KvCommand { LeaseRevoke = id });
            _deadlines.Remove(id);
            return r;
        }
    }

    /// <summary>Renews a lease for its full TTL; returns the TTL.</summary>
    public long KeepAlive(long id)
    {
        var lease = _machine.Lease(id, withKeys: false) ?? throw new LeaseNotFoundException(id);
        lock (_write) _deadlines[id] = _time.GetUtcNow() + TimeSpan.FromSeconds(lease.Ttl);
        return lease.Ttl;
    }

    /// <summary>A lease's granted TTL, remaining seconds and keys; null when it does not exist.</summary>
    public (LeaseInfo Lease, long RemainingSeconds)? TimeToLive(long id)
    {
        var lease = _machine.Lease(id, withKeys: true);
        if (lease is null) return null;
        DateTimeOffset deadline;
        lock (_write) deadline = _deadlines.TryGetValue(id, out var d) ? d : _time.GetUtcNow();
        var remaining = (long)Math.Ceiling(Math.Max(0, (deadline - _time.GetUtcNow()).TotalSeconds));
        return (lease, remaining);
    }

    /// <summary>Every granted lease.</summary>
    public IReadOnlyList<LeaseInfo> Leases() => _machine.Leases();

    /// <summary>
    /// Revokes every lease past its deadline, each through the log as a revoke command (expiry is decided here, by
    /// the store's clock — in a cluster, by the leader's — never by applying). Runs every 500 ms; returns how many expired.
    /// </summary>
    public int ExpireLeases()
    {
        var expired = 0;
        lock (_write)
        {
            if (_disposed) return 0;
            var now = _time.GetUtcNow();
            foreach (var (id, deadline) in _deadlines.ToList())
            {
                if (deadline > now) continue;
                _deadlines.Remove(id);
                _next = _machine.AppliedIndex + 1;
                var r = _machine.Apply(_next++, new KvCommand { LeaseRevoke = id }.Encode());
                if (r.Error is null) expired++;
            }
        }
        return expired;
    }

    /// <summary>The state machine underneath.</summary>
    public KvStateMachine Machine => _machine;

    /// <summary>The current revision.</summary>
    public long Revision => _machine.Revision;

    /// <summary>The index of the last write applied (each write, lease expiry and alarm takes one).</summary>
    public ulong AppliedIndex => _machine.AppliedIndex;

    /// <summary>The compaction revision: reads below it fail with <see cref="CompactedException"/> (0 before any compaction).</summary>
    public long CompactRevision => _machine.CompactRevision;

    /// <summary>
    /// Makes every write so far durable (with <see cref="StorageOptions.SyncOnCommit"/> on, the default, each already
    /// is, and this costs nothing). Returns the applied index and revision now durable.
    /// </summary>
    /// <exception cref="IOException">The disk refused the sync: the writes stay visible but not durable; retry.</exception>
    public SyncResult Sync()
    {
        lock (_write)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _machine.Sync();
        }
    }

    /// <summary>Puts a key.</summary>
    public PutResponse Put(PutRequest request) => (PutResponse)Write(new KvCommand { Put = request });

    /// <summary>Puts <paramref name="value"/> under <paramref name="key"/>.</summary>
    public PutResponse Put(byte[] key, byte[] value) => Put(new PutRequest { Key = key, Value = value });

    /// <summary>Deletes a key or a range.</summary>
    public DeleteRangeResponse Delete(DeleteRangeRequest request) => (DeleteRangeResponse)Write(new KvCommand { Delete = request });

    /// <summary>Runs a transaction.</summary>
    public TxnResponse Txn(TxnRequest request) => (TxnResponse)Write(new KvCommand { Txn = request });

    /// <summary>Compacts history below <paramref name="revision"/>.</summary>
    public CompactResponse Compact(long revision) => (CompactResponse)Write(new KvCommand { CompactRevision = revision });

    /// <summary>Reads a key or a range.</summary>
    public RangeResponse Range(RangeRequest request) => _machine.Range(request);

    /// <summary>A snapshot for many allocation-free lookups (see <see cref="KvReadView"/>).</summary>
    public KvReadView BeginRead() => _machine.BeginRead();

    /// <summary>The current key-value under <paramref name="key"/>, or null.</summary>
    public KeyValue? Get(byte[] key)
    {
        var r = _machine.Range(new RangeRequest { Key = key });
        return r.Kvs.Count > 0 ? r.Kvs[0] : null;
    }

    /// <summary>Watches a key, range or prefix from a start revision: past changes replayed from the store, then live ones.</summary>
    public async IAsyncEnumerable<WatchResponse> Watch(WatchRequest request, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var watcher = _machine.Watch(request);
        await foreach (var r in watcher.ReadAllAsync(cancellationToken).ConfigureAwait(false)) yield return r;
    }

    /// <summary>A hash of the key space as of <paramref name="revision"/> (0: current).</summary>
    public (ulong Hash, long Revision, long CompactRevision) Hash(long revision = 0) => _machine.Hash(revision);

    private sealed class PendingWrite(KvCommand command) : IDisposable
    {
        public readonly KvCommand Command = command;
        public readonly byte[] Bytes = command.Encode();
        public readonly ManualResetEventSlim Signal = new(); // set when done, or when this writer is to lead
        public object? Response;
        public Exception? Error;
        public volatile bool Done;

        public void Dispose() => Signal.Dispose();
    }

    private readonly List<PendingWrite> _queue = [];   // guarded by itself

    /// <summary>Test hook: runs in a leader before it applies the queue.</summary>
    internal Action? LeaderHook { get; set; }

    /// <summary>Writes queued and not yet taken by a leader.</summary>
    internal int QueuedWrites { get { lock (_queue) return _queue.Count; } }
    private bool _leading;                             // a leader is applying or about to; guarded by _queue

    /// <summary>
    /// Group commit: a writer queues its command. If no one is leading it leads: it applies everything queued as one
    /// batch — one storage transaction and one sync for all of them — hands each waiting writer its result, and
    /// passes the lead to the first writer that queued meanwhile. Writers that do not lead just wait for their result.
    /// </summary>
    private object Write(KvCommand command)
    {
        using var mine = new PendingWrite(command);
        bool lead;
        lock (_queue)
        {
            _queue.Add(mine);
            lead = !_leading;
            _leading = true;
        }
        if (!lead) mine.Signal.Wait();
        if (!mine.Done)
        {
            try
            {
                LeaderHook?.Invoke();
                lock (_write) Flush();
            }
            finally
            {
                lock (_queue)
                {
                    if (_queue.Count > 0) _queue[0].Signal.Set(); // the next leader
                    else _leading = false;
                }
            }
        }
        if (mine.Error is not null) throw mine.Error;
        return mine.Response!;
    }

    private static void Complete(PendingWrite p, object? response, Exception? error)
    {
        p.Response = response;
        p.Error = error;
        p.Done = true;
        p.Signal.Set();
    }

    private void Flush()
    {
        List<PendingWrite> batch;
        lock (_queue)
        {
            batch = [.. _queue];
            _queue.Clear();
        }
        if (batch.Count == 0) return;
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            _next = _machine.AppliedIndex + 1; // the machine may also be driven directly (tests, tools): follow it
            var quota = _machine.Options.QuotaBytes;
            var cost = 0L;
            var adds = false;
            foreach (var p in batch)
            {
                cost += 2L * p.Bytes.Length;
                adds |= AddsData(p.Command);
            }
            if (quota > 0 && adds && !_machine.NoSpaceAlarm && _machine.Storage.DataSize + cost > quota)
            {
                _machine.Apply(_next++, new KvCommand { NoSpaceAlarm = true }.Encode());
            }
            var entries = new List<(ulong, byte[])>(batch.Count);
            foreach (var p in batch) entries.Add((_next++, p.Bytes));
            var results = _machine.ApplyBatch(entries);
            if (results.Count != batch.Count) throw new InvalidOperationException($"applied {results.Count} of {batch.Count} commands (a bug: please report it)");
            for (var i = 0; i < batch.Count; i++) Complete(batch[i], results[i].Response, results[i].Error);
        }
        catch (Exception e)
        {
            // The storage failed (disk full, I/O error) or the store is closed: nothing of the batch was committed,
            // and every writer in it learns why.
            foreach (var p in batch)
            {
                if (!p.Done) Complete(p, null, e);
            }
        }
    }

    private object WriteLocked(KvCommand command)
    {
        _next = _machine.AppliedIndex + 1;
        var bytes = command.Encode();
        var quota = _machine.Options.QuotaBytes;
        if (quota > 0 && AddsData(command) && !_machine.NoSpaceAlarm && _machine.Storage.DataSize + 2L * bytes.Length > quota)
        {
            // The space check is made here, where the write is proposed; the alarm itself goes through the log, so
            // every member refuses the same writes.
            _machine.Apply(_next++, new KvCommand { NoSpaceAlarm = true }.Encode());
        }
        var result = _machine.Apply(_next, bytes);
        _next++;
        if (result.Error is not null) throw result.Error;
        return result.Response!;
    }

    private static bool AddsData(KvCommand c) => c.Put is not null || c.LeaseGrant is not null || (c.Txn is not null && TxnPuts(c.Txn));

    private static bool TxnPuts(TxnRequest t) =>
        t.Success.Concat(t.Failure).Any(op => op.Put is not null || (op.Txn is not null && TxnPuts(op.Txn)));

    /// <summary>Whether the NOSPACE alarm is raised.</summary>
    public bool NoSpaceAlarm => _machine.NoSpaceAlarm;

    /// <summary>Disarms the NOSPACE alarm; refused (with the figures) while the database is still over its quota.</summary>
    public void DisarmAlarm()
    {
        lock (_write)
        {
            var size = _machine.Storage.DataSize;
            var quota = _machine.Options.QuotaBytes;
            if (quota > 0 && size >= quota)
            {
                throw new NoSpaceException($"the database holds {size} bytes against a quota of {quota}: compact and defragment first (or raise the quota), then disarm.");
            }
            WriteLocked(new KvCommand { NoSpaceAlarm = false });
        }
    }

    /// <summary>Rewrites the file to reclaim the space compaction freed; returns the sizes before and after.</summary>
    public DefragmentResult Defragment()
    {
        lock (_write) return _machine.Defragment();
    }

    /// <summary>Stops lease expiry and closes the store.</summary>
    public void Dispose()
    {
        _expiry.Dispose();
        _progress.Dispose();
        lock (_write)
        {
            if (_disposed) return;
            _disposed = true;
            _machine.Dispose();
        }
    }
}
