using System.Diagnostics;
using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>The outcome of applying one command: its response, or the error it deterministically failed with.</summary>
/// <param name="Index">The log index applied.</param>
/// <param name="Response">A <see cref="PutResponse"/>, <see cref="DeleteRangeResponse"/>, <see cref="TxnResponse"/>,
/// <see cref="CompactResponse"/>, lease response or <see cref="ResponseHeader"/> (alarm, cluster record); null on error
/// and for an empty entry (a no-op).</param>
/// <param name="Error">The error, when the command was refused (the store is unchanged by it).</param>
public sealed record ApplyResult(ulong Index, object? Response, KvException? Error);

/// <summary>
/// One entry's outcome, as <see cref="KvStateMachine.ApplyBatch{TSink}"/> reports it: the response object (null for a
/// no-op, or for a <see cref="PlainPut"/>: a put without flags, whose whole answer is its <see cref="Revision"/>), or the
/// error that refused it.
/// </summary>
public readonly record struct ApplyOutcome(ulong Index, long Revision, object? Response, KvException? Error, bool PlainPut);

/// <summary>Receives the outcomes of a batch (see <see cref="KvStateMachine.ApplyBatch{TSink}"/>).</summary>
public interface IApplySink
{
    /// <summary>One entry's outcome, in index order, after the batch committed.</summary>
    void Applied(in ApplyOutcome outcome);
}

/// <summary>
/// The deterministic state machine Raft drives: <see cref="Apply"/> takes log entries in order and records the
/// applied index in the same storage transaction as their changes, so a restart resumes right after the last one
/// applied. The same log gives the same key space, revisions and <see cref="Hash"/> on every member.
/// </summary>
public sealed partial class KvStateMachine : IDisposable
{
    private Database _db;                    // replaced by Defragment and InstallSnapshot while no reader is open (see the gate)
    private readonly string _path;
    private readonly KvOptions _options;

    // The gate between readers and a file swap (Defragment, InstallSnapshot): readers count themselves in; the swap
    // closes the gate and waits for the count to drain before it replaces the file. Not thread-affine, so a reader may
    // end on another thread.
    private readonly object _gate = new();
    private int _readers;
    private bool _swapping;
    private bool _disposed;      // closed: new reads are refused; Dispose waited for the open ones

    /// <param name="latest">Commit applied batches first, so the read sees them (false: the committed state will do, as for a scrub).</param>
    internal Database EnterRead(bool latest = true)
    {
        if (latest) CommitForRead(); // reads see everything applied (KvStateMachine.Backend.cs)
        lock (_gate)
        {
            while (_swapping && !_disposed) Monitor.Wait(_gate);
            ObjectDisposedException.ThrowIf(_disposed, this);
            _readers++;
            return _db;
        }
    }

    /// <summary>
    /// Stops new reads (they wait for a swap, or are refused once disposing) and waits for the open ones to end. The
    /// shared latest view is retired on every round of the wait: one opened just before the gate closed ends as soon
    /// as its holders give it back.
    /// </summary>
    private void CloseGate(bool disposing)
    {
        while (true)
        {
            RetireShared();
            lock (_gate)
            {
                _swapping = true;
                if (disposing) _disposed = true;
                if (_readers == 0) return;
                Monitor.Wait(_gate, 10);
                if (_readers == 0) return;
            }
        }
    }

    internal void ExitRead()
    {
        lock (_gate)
        {
            if (--_readers == 0) Monitor.PulseAll(_gate);
        }
    }

    private readonly Lock _apply = new();

    private KvStateMachine(string path, Database db, KvOptions options)
    {
        _path = path;
        _db = db;
        _options = options;
        Watches = new WatchHub(this, Revision, options.WatchQueueCapacity);
        _auth = LoadAuth();
        _durableApplied = (long)Read(m => m.Applied); // what the file holds when opened is on disk
        StartCommitTimer();
    }

    private volatile AuthState _auth;

    /// <summary>Users, roles and whether auth is on, as of the last applied entry (replaced, never changed, on each auth change).</summary>
    public AuthState Auth => _auth;

    private AuthState LoadAuth() => AuthState.Load(Read(m => m.ClusterMetadata()));

    private T Read<T>(Func<Mvcc, T> read)
    {
        var db = EnterRead();
        try
        {
            using var tx = db.BeginRead();
            return read(new Mvcc(tx, _options));
        }
        finally
        {
            ExitRead();
        }
    }

    /// <summary>Watchers of this store's changes.</summary>
    public WatchHub Watches { get; }

    /// <summary>Starts a watch (see <see cref="WatchHub.Watch"/>).</summary>
    public Watcher Watch(WatchRequest request) => Watches.Watch(request);

    /// <summary>Committed changes from <paramref name="from"/> on (at most about <paramref name="max"/>), the store's revision, and the compaction revision when <paramref name="from"/> is below it (0 otherwise).</summary>
    internal (List<WatchEvent> Events, long Revision, long Compacted) ReadEvents(long from, int max) =>
        Read(m => from < m.CompactRevision ? (new List<WatchEvent>(), m.Revision, m.CompactRevision) : (m.ReadEvents(from, max), m.Revision, 0L));

    /// <summary>Opens (or creates) the store's file at <paramref name="path"/>.</summary>
    public static KvStateMachine Open(string path, KvOptions? options = null)
    {
        options ??= new KvOptions();
        options.Validate();
        options = options with { Storage = options.StorageWithDefaults }; // from here on the page size is explicit
        return new KvStateMachine(path, OpenDatabase(path, options), options);
    }

    /// <summary>Opens the file and creates any key-value tree it lacks (a file from an older version).</summary>
    private static Database OpenDatabase(string path, KvOptions options)
    {
        var db = Database.Open(path, options.Storage);
        try
        {
            using var tx = db.BeginWrite();
            Migration.Upgrade(tx);       // a store written in layout 1 (or a snapshot of one) comes to layout 2
            Mvcc.CreateTrees(tx);
            tx.Commit(); // a no-op once the trees exist and the layout is recorded
        }
        catch
        {
            db.Dispose();
            throw;
        }
        return db;
    }

    /// <summary>The options it was opened with.</summary>
    public KvOptions Options => _options;

    /// <summary>The storage underneath (for stats, verify and the page-cache budget).</summary>
    public Database Storage => _db;

    /// <summary>The last log index applied.</summary>
    public ulong AppliedIndex => Read(m => m.Applied);

    /// <summary>The current revision.</summary>
    public long Revision => Read(m => m.Revision);

    /// <summary>Whether the NOSPACE alarm is raised.</summary>
    public bool NoSpaceAlarm => Read(m => m.NoSpace);

    /// <summary>Reads below this revision fail with <see cref="CompactedException"/>.</summary>
    public long CompactRevision => Read(m => m.CompactRevision);

    /// <summary>Applies one entry; see <see cref="ApplyBatch(IReadOnlyList{ValueTuple{ulong, ReadOnlyMemory{byte}}}, bool?)"/>.</summary>
    public ApplyResult Apply(ulong index, ReadOnlySpan<byte> command, bool? durable = null) =>
        ApplyBatch([(index, command.ToArray())], durable) is [var r] ? r : throw new ArgumentException($"Entry {index} is at or below the applied index {AppliedIndex}: already applied.");

    /// <summary>Applies entries in order in one storage transaction; see the overload over memory.</summary>
    /// <param name="entries">Log entries in index order.</param>
    /// <param name="durable">Sync before returning; null: as <see cref="StorageOptions.SyncOnCommit"/> says.</param>
    public IReadOnlyList<ApplyResult> ApplyBatch(IReadOnlyList<(ulong Index, byte[] Command)> entries, bool? durable = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        lock (_apply) return ApplyBatchLocked(new ArrayEntries(entries), durable ?? _options.Storage.SyncOnCommit);
    }

    /// <summary>
    /// Applies entries in order in one storage transaction (one sync for the batch). Entries at or below the applied
    /// index are skipped (a replay after restart). An entry that is refused (too large, duplicate key, compacted...)
    /// changes nothing and reports its error; the others still apply. Bytes that are not a command are refused too.
    /// An empty entry (a leader's no-op, a configuration change) only advances the applied index: its result has
    /// neither response nor error. The commands may be slices of larger buffers; they are not copied.
    /// </summary>
    /// <param name="entries">Log entries in index order.</param>
    /// <param name="durable">Sync before returning; null: as <see cref="StorageOptions.SyncOnCommit"/> says.</param>
    public IReadOnlyList<ApplyResult> ApplyBatch(IReadOnlyList<(ulong Index, ReadOnlyMemory<byte> Command)> entries, bool? durable = null)
    {
        ArgumentNullException.ThrowIfNull(entries);
        lock (_apply) return ApplyBatchLocked(new MemoryEntries(entries), durable ?? _options.Storage.SyncOnCommit);
    }

    /// <summary>Log entries of either shape, read through a constrained generic so neither is copied into the other.</summary>
    private interface IEntries
    {
        int Count { get; }
        ulong Index(int i);
        ReadOnlySpan<byte> Command(int i);
    }

    private readonly struct ArrayEntries(IReadOnlyList<(ulong Index, byte[] Command)> list) : IEntries
    {
        public int Count => list.Count;
        public ulong Index(int i) => list[i].Index;
        public ReadOnlySpan<byte> Command(int i) => list[i].Command;
    }

    private readonly struct MemoryEntries(IReadOnlyList<(ulong Index, ReadOnlyMemory<byte> Command)> list) : IEntries
    {
        public int Count => list.Count;
        public ulong Index(int i) => list[i].Index;
        public ReadOnlySpan<byte> Command(int i) => list[i].Command.Span;
    }

    private List<ApplyResult> ApplyBatchLocked<TEntries>(TEntries entries, bool durable) where TEntries : struct, IEntries
    {
        var results = new List<ApplyResult>(entries.Count);
        ApplyBatchLocked(entries, durable, new ListSink(results));
        return results;
    }

    /// <summary>Materializes every outcome as an <see cref="ApplyResult"/> (a plain put gets its <see cref="PutResponse"/>).</summary>
    private readonly struct ListSink(List<ApplyResult> results) : IApplySink
    {
        public void Applied(in ApplyOutcome o) => results.Add(new ApplyResult(o.Index,
            o.PlainPut ? new PutResponse(new ResponseHeader(o.Revision), null) : o.Response, o.Error));
    }

    /// <summary>
    /// Applies entries in order in one storage transaction and hands each entry's outcome to <paramref name="sink"/>
    /// once the transaction is committed — the server's path: a put without flags is applied from the entry's bytes
    /// and reported without any object (<see cref="ApplyOutcome.PlainPut"/>), and no watch event is made while
    /// nobody watches. Otherwise as <see cref="ApplyBatch(IReadOnlyList{ValueTuple{ulong, ReadOnlyMemory{byte}}}, bool?)"/>.
    /// The sink is called under the apply lock, in index order; it must not apply anything itself (a struct sink is
    /// passed by value: keep its state in objects it refers to).
    /// </summary>
    public void ApplyBatch<TSink>(IReadOnlyList<(ulong Index, ReadOnlyMemory<byte> Command)> entries, TSink sink, bool? durable = null) where TSink : IApplySink
    {
        ArgumentNullException.ThrowIfNull(entries);
        lock (_apply) ApplyBatchLocked(new MemoryEntries(entries), durable ?? _options.Storage.SyncOnCommit, sink);
    }

    private WriteTransaction? _writer;   // the batches' write transaction, begun again for each (BeginWrite(reuse))
    private Mvcc? _writerMvcc;

    // Reused by every batch (under _apply): what each entry is, and the outcomes of the attempt that commits.
    private readonly List<Pending> _pending = [];
    private readonly List<ApplyOutcome> _outcomes = [];

    /// <summary>An entry about to apply: its position in the batch, its decoded command (null for a plain put or a no-op), or why it is refused.</summary>
    private readonly record struct Pending(ulong Index, int Entry, KvCommand? Command, KvException? Error, bool PlainPut);

    private void ApplyBatchLocked<TEntries, TSink>(TEntries entries, bool durable, TSink sink) where TEntries : struct, IEntries where TSink : IApplySink
    {
        // One transaction object and one Mvcc, begun again for every batch and every attempt (under _apply), so that
        // applying a batch allocates nothing; after a file swap the transaction belongs to the old file: a new one.
        // A transaction left open by earlier batches (the batched backend) is carried on.
        ThrowIfCommitFailed();
        var attempt = _open ? _writer! : (_writer = _db.BeginWrite(_writer?.Database == _db ? _writer : null));
        var keepOpen = false;
        var completed = false;
        try
        {
            var m = _writerMvcc;
            if (m is null) _writerMvcc = m = new Mvcc(attempt, _options);
            else if (_open) m.Continue();  // the open transaction's trees and state carry on
            else m.Begin(attempt);
            var applied = m.Applied; // read in the write transaction: no reader (and no object) just for it
            var pending = _pending;
            pending.Clear();
            for (var i = 0; i < entries.Count; i++)
            {
                var index = entries.Index(i);
                if (index <= applied) continue;
                if (index != applied + 1 && applied != 0) throw new ArgumentException($"Entry {index} does not follow the applied index {applied}; apply the log in order.");
                applied = index;
                var bytes = entries.Command(i);
                if (bytes.IsEmpty)
                {
                    pending.Add(new Pending(index, i, null, null, false)); // a no-op
                    continue;
                }
                if (KvCommand.TryReadPlainPut(bytes, out _, out _, out _))
                {
                    pending.Add(new Pending(index, i, null, null, true));
                    continue;
                }
                try
                {
                    pending.Add(new Pending(index, i, KvCommand.Decode(bytes), null, false));
                }
                catch (InvalidDataException e)
                {
                    pending.Add(new Pending(index, i, null, new KvException($"entry {index} is not a key-value command: {e.Message}"), false));
                }
            }
            if (pending.Count == 0)
            {
                keepOpen = _open;
                completed = true;
                return;
            }

            // Refused commands must leave no trace, and a storage transaction cannot undo part of itself: try the batch,
            // and if any command fails, start again without the failing one (and with the open transaction's earlier
            // batches applied again: the rollback undid them too).
            Dictionary<ulong, KvException>? refused = null;
            foreach (var p in pending) if (p.Error is not null) (refused ??= [])[p.Index] = p.Error;
            var outcomes = _outcomes;
            var watched = Watches.Count > 0;
            for (var first = true; ; first = false)
            {
                if (!first)
                {
                    attempt.Dispose(); // rolls the failed attempt back
                    attempt = _writer = _db.BeginWrite(attempt);
                    m.Begin(attempt);
                    if (_retainedBuffer is { Count: > 0 }) Replay(m);
                }
                m.EventsWanted = watched;
                outcomes.Clear();
                ulong failedAt = 0;
                foreach (var p in pending)
                {
                    if (refused is not null && refused.TryGetValue(p.Index, out var err))
                    {
                        outcomes.Add(new ApplyOutcome(p.Index, m.Revision, null, err, false));
                        continue;
                    }
                    try
                    {
                        if (p.PlainPut)
                        {
                            KvCommand.TryReadPlainPut(entries.Command(p.Entry), out var key, out var value, out var lease);
                            var rev = m.PutPlain(key, value, lease);
                            outcomes.Add(new ApplyOutcome(p.Index, rev, null, null, true));
                        }
                        else
                        {
                            var response = p.Command is null ? null : Execute(m, p.Command);
                            outcomes.Add(new ApplyOutcome(p.Index, m.Revision, response, null, false));
                        }
                        m.EndRequest();
                    }
                    catch (Exception e) when (e is KvException or ArgumentException)
                    {
                        (refused ??= [])[p.Index] = e as KvException ?? new KvException(e.Message);
                        failedAt = p.Index;
                        break;
                    }
                }
                if (failedAt != 0) continue; // roll back this attempt, retry without the refused command
                m.Finish(pending[^1].Index);
                if (!_open)
                {
                    _open = true;
                    _openedAt = Stopwatch.GetTimestamp();
                }
                _openApplied = pending[^1].Index;
                _openEntries += pending.Count;
                Record(entries, pending, refused); // for a defragmentation's copy, when one runs
                var auth = m.AuthChanged ? AuthState.Load(m.ClusterMetadata()) : null; // read in the writer, before a commit ends it
                if (durable || _options.BackendCommitInterval <= TimeSpan.Zero || _openEntries >= _options.BackendCommitEntries
                    || Stopwatch.GetElapsedTime(_openedAt) >= _options.BackendCommitInterval || !TryRetain(entries, pending, refused))
                {
                    if (durable) _durableWanted = true; // the commit syncs: it makes the commits before it durable too
                    CommitOpen();
                }
                else
                {
                    keepOpen = true;
                    _dirty = true;
                }
                completed = true;
                if (auth is not null) _auth = auth;
                if (m.Events.Count > 0 || m.EventsSkipped) Watches.Publish(m.Events, m.Revision, eventsSkipped: m.EventsSkipped);
                foreach (var o in outcomes) sink.Applied(o);
                return;
            }
        }
        finally
        {
            if (!completed && _open)
            {
                // Something unexpected (a damaged page, the disk, a bug) stopped the batch part way. The rollback
                // undoes the open transaction's earlier batches too: they are applied again and committed, so the store
                // holds exactly what its owner saw applied. If that fails as well, the store stays at its last commit,
                // and its applied index says where the log must be applied from again.
                attempt = RestoreEarlierBatches(attempt);
                keepOpen = false;
            }
            if (!keepOpen && !_open) attempt.Dispose(); // a no-op once committed
        }
    }

    private static object Execute(Mvcc m, KvCommand c)
    {
        if (c.Put is not null) return m.Put(c.Put);
        if (c.Delete is not null) return m.Delete(c.Delete);
        if (c.Txn is not null) return m.Txn(c.Txn);
        if (c.LeaseGrant is { } g) return m.Grant(g.Id, g.Ttl);
        if (c.LeaseRevoke != 0) return m.Revoke(c.LeaseRevoke);
        if (c.NoSpaceAlarm is { } alarm)
        {
            m.SetAlarm(alarm);
            return new ResponseHeader(m.Revision);
        }
        if (c.Cluster is { } cluster) return m.SetCluster(cluster.Key, cluster.Value);
        if (c.Auth is { } auth) return m.ApplyAuth(auth);
        return m.Compact(c.CompactRevision);
    }

    /// <summary>
    /// A read view of the latest applied state for many lookups: <see cref="KvReadView.TryGet"/> returns spans into
    /// the store and allocates nothing. Dispose it promptly (it holds its snapshot, and defragmentation waits for it).
    /// </summary>
    public KvReadView BeginRead() => new(this, _options);

    /// <summary>A read of the latest applied state (serializable).</summary>
    public RangeResponse Range(RangeRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Read(m => m.Range(request));
    }

    /// <summary>The lease <paramref name="id"/> with its granted TTL (and keys when asked), or null.</summary>
    public LeaseInfo? Lease(long id, bool withKeys = true) => Read(m => m.Lease(id, withKeys));

    /// <summary>Every granted lease.</summary>
    public IReadOnlyList<LeaseInfo> Leases() => Read(m => m.Leases());

    /// <summary>Every cluster metadata record (see <see cref="KvCommand.Cluster"/>), in key order.</summary>
    public IReadOnlyList<(byte[] Key, byte[] Value)> ClusterMetadata() => Read(m => m.ClusterMetadata());

    /// <summary>A hash of the key space as of <paramref name="revision"/> (0: current), with the revisions it covers.</summary>
    public (ulong Hash, long Revision, long CompactRevision) Hash(long revision = 0) => Read(m =>
    {
        if (revision > m.Revision) throw new FutureRevisionException(revision, m.Revision);
        if (revision != 0 && revision < m.CompactRevision) throw new CompactedException(revision, m.CompactRevision);
        var at = revision == 0 ? m.Revision : revision;
        return (m.Hash(at), at, m.CompactRevision);
    });

    /// <summary>
    /// Makes everything applied durable: batches applied without a sync (<c>durable: false</c>, or
    /// <see cref="StorageOptions.SyncOnCommit"/> off) survive a crash once this returns. Cheap when nothing is pending.
    /// Waits for a batch being applied.
    /// </summary>
    /// <returns>The applied index and revision now durable.</returns>
    /// <exception cref="IOException">The disk refused the sync: what was applied stays visible but not durable; retry.</exception>
    public SyncResult Sync()
    {
        lock (_apply)
        {
            if (_open) CommitOpen();
            // Under _apply nothing is applied meanwhile, so this is the state the sync makes durable.
            var result = Read(m => new SyncResult(m.Applied, m.Revision));
            _db.Sync();
            Interlocked.Exchange(ref _durableApplied, (long)result.AppliedIndex);
            return result;
        }
    }

    /// <summary>Syncs and closes the file.</summary>
    /// <remarks>Waits for open reads (views, snapshots being written) to end first: the file is unmapped after, and a read of unmapped memory would bring the process down.</remarks>
    public void Dispose()
    {
        _commitTimer?.Dispose();
        lock (_apply)
        {
            lock (_gate)
            {
                if (_disposed) return;
            }
            try
            {
                if (_open) CommitOpen();
            }
            catch (Exception e) when (e is IOException or StorageException)
            {
                // The disk refused the last batches' commit (it is full, or failing): they are rolled back, and the
                // log they came from replays them at the next start. Closing goes on.
            }
            CloseGate(disposing: true);
            _db.Dispose();
        }
    }
}
