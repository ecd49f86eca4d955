using System.Diagnostics;
using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>
/// The batched backend (etcd's backend batch): batches applied without a sync go into one storage transaction that
/// stays open across batches, and is committed every <see cref="KvOptions.BackendCommitInterval"/>, after
/// <see cref="KvOptions.BackendCommitEntries"/> entries, or as soon as anyone reads the store — so reads always see
/// everything applied, and a leaf that many batches change is written once instead of once per batch. What makes the
/// batches durable in between is the caller's log: a restart replays it from the applied index the store recorded.
/// </summary>
public sealed partial class KvStateMachine
{
    // Under _apply: whether _writer holds applied batches not yet committed, since when, and how many entries.
    private bool _open;
    private long _openedAt;
    private int _openEntries;
    private ulong _openApplied;                       // the applied index after the open transaction's last batch
    private volatile bool _dirty;                     // _open, readable without the lock (the read path checks it)
    private RetainedBatches? _retainedBuffer;         // the open transaction's commands, to apply again after a rollback (made at first use)

    private RetainedBatches _retained => _retainedBuffer ??= new RetainedBatches(_options.BackendCommitBytes, _options.BackendCommitEntries);
    private Timer? _commitTimer;
    private volatile Exception? _commitFailure;       // a commit the disk refused off the caller's thread: every later apply and read fails
    private long _backendCommits;
    private volatile bool _durableWanted;             // the next commit is to be durable (RequestDurableCommit)
    private long _durableApplied;                     // the applied index of the last durable commit

    /// <summary>
    /// The applied index the file holds durably: a crash keeps everything up to it. A log may drop entries up to it
    /// (and not beyond: later entries may live only in the open transaction, or in commits not yet synced).
    /// </summary>
    public ulong DurableAppliedIndex => (ulong)Interlocked.Read(ref _durableApplied);

    /// <summary>
    /// Asks for the next commit to be durable (a sync of the file), without a commit of its own: a log that wants to
    /// compact waits until <see cref="DurableAppliedIndex"/> passes its target instead of forcing an extra commit.
    /// </summary>
    public void RequestDurableCommit() => _durableWanted = true;

    /// <summary>Storage commits of applied batches so far (each writes the pages the batches since the last one changed).</summary>
    public long BackendCommits => Interlocked.Read(ref _backendCommits);

    /// <summary>Whether applied batches wait in an open transaction for their commit.</summary>
    public bool HasUncommittedBatches => _dirty;

    private void StartCommitTimer()
    {
        var interval = _options.BackendCommitInterval;
        if (interval > TimeSpan.Zero) _commitTimer = new Timer(static s => ((KvStateMachine)s!).CommitIfDue(), this, interval, interval);
    }

    /// <summary>Commits the open transaction when its interval has run out (the timer's call: batches may have stopped coming).</summary>
    private void CommitIfDue()
    {
        if (!_dirty && !_durableWanted) return;
        try
        {
            lock (_apply)
            {
                if (_open && Stopwatch.GetElapsedTime(_openedAt) >= _options.BackendCommitInterval) CommitOpen();
                else if (!_open && _durableWanted) SyncCommitted();   // idle: what is committed only needs its sync
            }
        }
        catch (ObjectDisposedException)
        {
            // closed meanwhile
        }
        catch (Exception e)
        {
            // The disk refused it, off any caller's thread: the batches are rolled back, so the store is behind what
            // was applied — every later apply and read fails with this, and the owner (a member) stops.
            _commitFailure = e;
        }
    }

    /// <summary>
    /// A commit of applied batches that the disk refused on the commit timer's thread (null: none). From then on every
    /// apply and read fails; the owner should stop (a member does at its next round).
    /// </summary>
    public Exception? CommitFailure => _commitFailure;

    /// <summary>Throws <see cref="IOException"/> when a background commit failed: the store no longer holds everything applied.</summary>
    public void ThrowIfCommitFailed()
    {
        if (_commitFailure is { } e) throw new IOException($"a commit of applied batches failed ({e.Message}); the store is behind its log: restart the member (it replays the log)", e);
    }

    /// <summary>Before a read: commits what is applied, so the read sees it.</summary>
    private void CommitForRead()
    {
        ThrowIfCommitFailed();
        if (!_dirty) return;
        lock (_apply)
        {
            if (_open) CommitOpen();
        }
    }

    /// <summary>
    /// Commits the open transaction (without a sync). Under _apply. The flags fall only after the commit: a reader
    /// that finds them down must find the batches committed. A commit the disk refuses rolls the batches back (the
    /// store's applied index says where the log must be applied from again) and throws.
    /// </summary>
    private void CommitOpen()
    {
        var durable = _durableWanted;
        try
        {
            _writer!.Commit(durable);
        }
        catch
        {
            _writer!.Dispose();
            _open = false;
            _dirty = false;
            _retainedBuffer?.Clear();
            _openEntries = 0;
            throw;
        }
        _open = false;
        _retainedBuffer?.Clear();
        _openEntries = 0;
        Interlocked.Increment(ref _backendCommits);
        if (durable)
        {
            _durableWanted = false;
            Interlocked.Exchange(ref _durableApplied, (long)_writerMvcc!.Applied);
        }
        RetireShared();
        _dirty = false;
    }

    /// <summary>Syncs what is committed (no transaction open). Under _apply.</summary>
    private void SyncCommitted()
    {
        _durableWanted = false;
        var applied = _writerMvcc?.Applied ?? Read(m => m.Applied);
        _db.Sync();
        Interlocked.Exchange(ref _durableApplied, (long)applied);
    }

    /// <summary>
    /// Keeps this batch's commands while the transaction stays open (a refused one, or a no-op, only advances the
    /// index); false, keeping none, when they would not fit in what is kept: then the transaction is committed.
    /// </summary>
    private bool TryRetain<TEntries>(TEntries entries, List<Pending> pending, Dictionary<ulong, KvException>? refused) where TEntries : struct, IEntries
    {
        long bytes = 0;
        var count = 0;
        foreach (var p in pending)
        {
            if (!Retained(p, refused)) continue;
            bytes += entries.Command(p.Entry).Length;
            count++;
        }
        if (!_retained.Fits(bytes, count)) return false;
        foreach (var p in pending)
        {
            if (Retained(p, refused)) _retained.Add(p.Index, entries.Command(p.Entry), p.PlainPut);
        }
        return true;
    }

    private static bool Retained(Pending p, Dictionary<ulong, KvException>? refused) =>
        p.Error is null && refused?.ContainsKey(p.Index) != true && (p.Command is not null || p.PlainPut);

    /// <summary>
    /// After a batch failed part way in the open transaction: rolls it back, applies the earlier batches again and
    /// commits them. Returns the transaction now current (committed, or rolled back when this failed too).
    /// </summary>
    private WriteTransaction RestoreEarlierBatches(WriteTransaction failed)
    {
        failed.Dispose();
        var attempt = _writer = _db.BeginWrite(failed);
        try
        {
            var m = _writerMvcc!;
            m.Begin(attempt);
            if (_retainedBuffer is { Count: > 0 }) Replay(m);
            m.Finish(_openApplied);
            CommitOpen();
        }
#pragma warning disable CA1031 // called from a finally with the batch's own exception on its way: this one must not replace it
        catch (Exception)
#pragma warning restore CA1031
        {
            attempt.Dispose();
            _open = false;
            _dirty = false;
            _retainedBuffer?.Clear();
            _openEntries = 0;
        }
        return attempt;
    }

    /// <summary>Applies the open transaction's earlier batches again, after a rollback; they succeeded before, so they do again.</summary>
    private void Replay(Mvcc m)
    {
        m.EventsWanted = false;
        for (var i = 0; i < _retained.Count; i++)
        {
            var (index, command, plain) = _retained[i];
            try
            {
                ApplyAgain(m, command.Span, plain);
            }
            catch (Exception e) when (e is KvException or ArgumentException or InvalidDataException)
            {
                throw new InvalidOperationException($"entry {index} applied before but not when applied again after a rollback: {e.Message}", e);
            }
        }
        m.ClearBatchRecords();
    }

    /// <summary>The commands of the batches in the open transaction, copied into one buffer of a fixed size (no growth, so no allocation after it is made).</summary>
    private sealed class RetainedBatches(int capacityBytes, int capacityEntries)
    {
        private readonly byte[] _bytes = new byte[capacityBytes];
        private int _length;
        private readonly List<(ulong Index, int Offset, int Length, bool Plain)> _entries = new(capacityEntries);

        /// <summary>Whether <paramref name="bytes"/> more in <paramref name="count"/> commands fit.</summary>
        public bool Fits(long bytes, int count) => _length + bytes <= _bytes.Length && _entries.Count + count <= _entries.Capacity;

        public int Count => _entries.Count;

        public (ulong Index, ReadOnlyMemory<byte> Command, bool Plain) this[int i]
        {
            get
            {
                var (index, offset, length, plain) = _entries[i];
                return (index, _bytes.AsMemory(offset, length), plain);
            }
        }

        public void Add(ulong index, ReadOnlySpan<byte> command, bool plain)
        {
            command.CopyTo(_bytes.AsSpan(_length));
            _entries.Add((index, _length, command.Length, plain));
            _length += command.Length;
        }

        public void Clear()
        {
            _entries.Clear();
            _length = 0;
        }
    }

    /// <summary>
    /// Applies a command that was applied once already (a retained batch after a rollback, the redo log onto a
    /// defragmented copy): a plain put through the in-place path, anything else decoded, as the first apply did.
    /// </summary>
    private static void ApplyAgain(Mvcc m, ReadOnlySpan<byte> command, bool plain)
    {
        if (plain)
        {
            KvCommand.TryReadPlainPut(command, out var key, out var value, out var lease);
            m.PutPlain(key, value, lease);
        }
        else
        {
            Execute(m, KvCommand.Decode(command));
        }
        m.EndRequest();
    }
}
