using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

/// <summary>
/// The batched backend: batches applied without a sync share one open storage transaction until its interval, its
/// limits or a read commits it (docs/kv.md, "The batched backend"). Reads always see every applied batch; a crash
/// before the commit loses only what the log replays; a refused command in a later batch leaves the earlier ones whole.
/// </summary>
public sealed class BackendTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-backend-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Never committed by the clock in a test's time: only reads, limits and Sync commit.</summary>
    private static KvOptions Held(int entries = 10_000) => new()
    {
        BackendCommitInterval = TimeSpan.FromHours(1),
        BackendCommitEntries = entries,
        Storage = new StorageOptions { SyncOnCommit = false },
    };

    private static byte[] Put(string key, string value) => new KvCommand { Put = new PutRequest { Key = B(key), Value = B(value) } }.Encode();

    private static List<(ulong, byte[])> Batch(ref ulong index, int n, string prefix)
    {
        var batch = new List<(ulong, byte[])>();
        for (var i = 0; i < n; i++) batch.Add((++index, Put($"{prefix}{i:D3}", $"{prefix}-{index}")));
        return batch;
    }

    [Fact]
    public void Batches_wait_in_one_transaction_and_a_read_commits_them_before_it_looks()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv.db"), Held());
        ulong index = 0;
        for (var b = 0; b < 20; b++) sm.ApplyBatch(Batch(ref index, 10, $"b{b}/"), durable: false);
        Assert.True(sm.HasUncommittedBatches);
        var commits = sm.BackendCommits;

        // A read sees all 200 keys: it committed them first, once.
        var all = sm.Range(new RangeRequest { Key = B("b"), RangeEnd = RangeRequest.Prefix(B("b")), CountOnly = true });
        Assert.Equal(200, all.Count);
        Assert.Equal(commits + 1, sm.BackendCommits);
        Assert.False(sm.HasUncommittedBatches);

        // The shared view of the latest state, which servers read through, is no exception.
        sm.ApplyBatch(Batch(ref index, 1, "late/"), durable: false);
        var view = sm.AcquireLatest();
        try
        {
            Assert.True(view.TryGet(B("late/000"), out _));
        }
        finally
        {
            sm.ReleaseLatest(view);
        }
        Assert.Equal(index, sm.AppliedIndex);
    }

    [Fact]
    public void The_entry_limit_commits_without_a_read()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv.db"), Held(entries: 50));
        var commits = sm.BackendCommits;
        ulong index = 0;
        for (var b = 0; b < 10; b++) sm.ApplyBatch(Batch(ref index, 10, $"b{b}/"), durable: false);
        Assert.Equal(commits + 2, sm.BackendCommits);   // after 50 entries, and after 100
        Assert.False(sm.HasUncommittedBatches);
    }

    [Fact]
    public void The_interval_commits_batches_when_they_stop_coming()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv.db"), new KvOptions { BackendCommitInterval = TimeSpan.FromMilliseconds(20), Storage = new StorageOptions { SyncOnCommit = false } });
        ulong index = 0;
        sm.ApplyBatch(Batch(ref index, 5, "k/"), durable: false);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (sm.HasUncommittedBatches && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Assert.False(sm.HasUncommittedBatches, "the commit timer never committed the batch");
    }

    /// <summary>Copies a file another handle in this process holds locked (as an open database is), byte for byte.</summary>
    private static void CopyHeld(string from, string to)
    {
        using var cp = System.Diagnostics.Process.Start("cp", [from, to])!;
        cp.WaitForExit();
        Assert.Equal(0, cp.ExitCode);
    }

    [Fact]
    public void A_crash_before_the_commit_loses_only_what_the_log_replays()
    {
        var log = new List<(ulong, byte[])>();
        ulong index = 0;
        for (var b = 0; b < 30; b++) log.AddRange(Batch(ref index, 7, $"b{b % 5}/"));
        var path = Path.Combine(_dir, "kv.db");
        var crashed = Path.Combine(_dir, "crashed.db");
        ulong committed;
        using (var sm = KvStateMachine.Open(path, Held()))
        {
            sm.ApplyBatch(log[..70], durable: false);
            committed = sm.Sync().AppliedIndex;                       // 70 entries durable
            sm.ApplyBatch(log[70..140], durable: false);              // applied, in the open transaction only
            sm.ApplyBatch(log[140..], durable: false);
            Assert.True(sm.HasUncommittedBatches);
            CopyHeld(path, crashed);                                  // the file as a power cut would leave it
        }
        Assert.Equal(70UL, committed);
        using var reference = KvStateMachine.Open(Path.Combine(_dir, "reference.db"), new KvOptions { BackendCommitInterval = TimeSpan.Zero });
        reference.ApplyBatch(log, durable: false);
        using (var restarted = KvStateMachine.Open(crashed, Held()))
        {
            Assert.Equal(committed, restarted.AppliedIndex);          // the crash lost the uncommitted batches...
            restarted.ApplyBatch(log, durable: false);                // ...and a replay of the log from the start skips what it holds
            Assert.Equal(reference.Hash(), restarted.Hash());
            Assert.Equal(reference.AppliedIndex, restarted.AppliedIndex);
        }
    }

    [Fact]
    public void The_durable_applied_index_moves_only_with_a_durable_commit_and_a_copy_of_the_file_holds_it()
    {
        var path = Path.Combine(_dir, "kv.db");
        using var sm = KvStateMachine.Open(path, Held());
        ulong index = 0;
        sm.ApplyBatch(Batch(ref index, 10, "a/"), durable: false);
        Assert.Equal(0UL, sm.DurableAppliedIndex);
        Assert.Equal(10, sm.Range(new RangeRequest { Key = B("a/"), RangeEnd = RangeRequest.Prefix(B("a/")), CountOnly = true }).Count);
        Assert.Equal(0UL, sm.DurableAppliedIndex);          // committed by the read, not synced: a log may not drop it yet

        sm.ApplyBatch(Batch(ref index, 10, "b/"), durable: false);
        sm.RequestDurableCommit();                          // no commit of its own...
        Assert.Equal(0UL, sm.DurableAppliedIndex);
        Assert.True(sm.HasUncommittedBatches);
        _ = sm.Range(new RangeRequest { Key = B("b/000") }); // ...the next one (here a read's) is durable
        Assert.Equal(20UL, sm.DurableAppliedIndex);
        sm.ApplyBatch(Batch(ref index, 10, "c/"), durable: false);
        CopyHeld(path, Path.Combine(_dir, "crashed.db"));
        using var crashed = KvStateMachine.Open(Path.Combine(_dir, "crashed.db"), Held());
        Assert.True(crashed.AppliedIndex >= sm.DurableAppliedIndex);
    }

    [Fact]
    public void An_idle_store_asked_for_durability_syncs_what_it_committed()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv.db"), new KvOptions { BackendCommitInterval = TimeSpan.FromMilliseconds(20), Storage = new StorageOptions { SyncOnCommit = false } });
        ulong index = 0;
        sm.ApplyBatch(Batch(ref index, 5, "k/"), durable: false);
        _ = sm.AppliedIndex;                                // committed (not synced) by a read
        sm.RequestDurableCommit();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (sm.DurableAppliedIndex < 5 && DateTime.UtcNow < deadline) Thread.Sleep(5);
        Assert.Equal(5UL, sm.DurableAppliedIndex);
    }

    [Fact]
    public void A_refused_command_in_a_later_batch_leaves_the_earlier_batches_whole()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv.db"), Held());
        using var reference = KvStateMachine.Open(Path.Combine(_dir, "reference.db"), new KvOptions { BackendCommitInterval = TimeSpan.Zero });
        ulong index = 0;
        var first = Batch(ref index, 20, "a/");
        var second = Batch(ref index, 5, "b/");
        // A transaction that writes a key and then fails (the same key twice): it must leave no trace, and the
        // rollback that undoes it must not undo the two batches before it.
        var failing = new KvCommand
        {
            Txn = new TxnRequest
            {
                Success = [new TxnOp { Put = new PutRequest { Key = B("a/000"), Value = B("txn") } }, new TxnOp { Put = new PutRequest { Key = B("a/000"), Value = B("again") } }],
            },
        }.Encode();
        List<(ulong, byte[])> third = [(++index, Put("c/1", "x")), (++index, failing), (++index, Put("c/2", "y"))];
        foreach (var s in new[] { sm, reference })
        {
            s.ApplyBatch(first, durable: false);
            s.ApplyBatch(second, durable: false);
        }
        var results = sm.ApplyBatch(third, durable: false);
        var expected = reference.ApplyBatch(third, durable: false);
        Assert.IsType<DuplicateKeyException>(results[1].Error);
        Assert.Equal(expected.Select(r => (r.Index, r.Error?.GetType())), results.Select(r => (r.Index, r.Error?.GetType())));
        Assert.Equal(reference.Hash(), sm.Hash());
        Assert.Equal("a/-1", Encoding.UTF8.GetString(sm.Range(new RangeRequest { Key = B("a/000") }).Kvs[0].Value));
        Assert.Equal(2, sm.Range(new RangeRequest { Key = B("c/"), RangeEnd = RangeRequest.Prefix(B("c/")), CountOnly = true }).Count);
    }

    [Fact]
    public async Task Watchers_get_every_event_whether_the_batches_are_committed_or_not()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv.db"), Held());
        using var watcher = sm.Watch(new WatchRequest { Key = B("w/"), RangeEnd = RangeRequest.Prefix(B("w/")), StartRevision = 1 });
        ulong index = 0;
        for (var b = 0; b < 10; b++) sm.ApplyBatch(Batch(ref index, 3, "w/"), durable: false);
        var seen = new List<long>();
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var r in watcher.ReadAllAsync(cts.Token))
        {
            seen.AddRange(r.Events.Select(e => e.Kv.ModRevision));
            if (seen.Count >= 30) break;
        }
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), seen);
    }

    [Fact]
    public async Task Defragmentation_lets_writes_go_on_while_it_copies_and_ends_with_every_one_of_them()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv.db"), new KvOptions { Storage = new StorageOptions { SyncOnCommit = false } });
        using var reference = KvStateMachine.Open(Path.Combine(_dir, "reference.db"), new KvOptions { BackendCommitInterval = TimeSpan.Zero });
        ulong index = 0;
        // A store with free pages to give back: many keys, then most of them deleted and compacted away.
        var log = new List<(ulong, byte[])>();
        for (var b = 0; b < 400; b++) log.AddRange(Batch(ref index, 50, $"old{b:D3}/"));
        log.Add((++index, new KvCommand { Delete = new DeleteRangeRequest { Key = B("old"), RangeEnd = RangeRequest.Prefix(B("old")) } }.Encode()));
        log.Add((++index, new KvCommand { CompactRevision = 20_001 }.Encode()));   // past the deletion (revision 20,001)
        sm.ApplyBatch(log, durable: false);
        reference.ApplyBatch(log, durable: false);

        // A writer applies batches all along; the copy waits until it has seen it apply some (it would wait for
        // ever if the copy held writes back, as defragmentation used to).
        using var stop = new CancellationTokenSource();
        var applied = 0;
        var writes = new List<(ulong, byte[])>();
        var writer = Task.Run(() =>
        {
            var next = index;
            for (var b = 0; !stop.IsCancellationRequested; b++)
            {
                var batch = Batch(ref next, 5, $"new{b:D4}/");
                sm.ApplyBatch(batch, durable: false);
                lock (writes) writes.AddRange(batch);
                Interlocked.Increment(ref applied);
                Thread.Sleep(1);   // a steady trickle: the space the defragmentation gives back dwarfs what it adds
            }
        });
        sm.DefragmentCopied = () =>
        {
            var seen = Volatile.Read(ref applied);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (Volatile.Read(ref applied) < seen + 5)
            {
                Assert.True(DateTime.UtcNow < deadline, "no write was applied while the defragmentation copied");
                Thread.Sleep(1);
            }
        };
        var result = sm.Defragment();
        await stop.CancelAsync();
        await writer;
        Assert.True(result.BytesAfter < result.BytesBefore, $"{result.BytesBefore} -> {result.BytesAfter}");
        lock (writes) reference.ApplyBatch(writes, durable: false);
        Assert.Equal(reference.AppliedIndex, sm.AppliedIndex);
        Assert.Equal(reference.Hash(), sm.Hash());
    }
}
