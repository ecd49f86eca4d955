using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

public sealed class StateMachineTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public StateMachineTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static List<byte[]> Log(int seed, int count)
    {
        var rng = new Random(seed);
        var log = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = B($"k{rng.Next(50)}");
            log.Add((rng.Next(10) switch
            {
                < 6 => new KvCommand { Put = new PutRequest { Key = key, Value = B($"v{i}") } },
                < 8 => new KvCommand { Delete = new DeleteRangeRequest { Key = key, RangeEnd = rng.Next(2) == 0 ? [] : RangeRequest.Prefix(B("k1")) } },
                < 9 => new KvCommand { Txn = new TxnRequest { Compares = [new Compare { Key = key, Target = CompareTarget.Version, Result = CompareResult.Greater, Number = 1 }], Success = [new TxnOp { Put = new PutRequest { Key = key, Value = B("hot") } }] } },
                _ => new KvCommand { CompactRevision = Math.Max(1, i / 2) },
            }).Encode());
        }
        return log;
    }

    private static Dictionary<string, string> Dump(Database db)
    {
        var all = new Dictionary<string, string>();
        using var tx = db.BeginRead();
        foreach (var name in tx.GetTreeNames())
        {
            foreach (var e in tx.OpenTree(name).All()) all[name + "/" + Convert.ToHexString(e.Key)] = Convert.ToHexString(e.Value);
        }
        return all;
    }

    [Fact]
    public void Two_stores_fed_the_same_log_end_with_the_same_hash_and_the_same_trees()
    {
        var log = Log(5, 2_000);
        using var a = KvStateMachine.Open(Path.Combine(_dir, "a"));
        using var b = KvStateMachine.Open(Path.Combine(_dir, "b"), new KvOptions { Storage = new StorageOptions { PageSize = 16384, MasterKey = Cairn.Crypto.StaticKeyProvider.CreateRandom() } });
        for (var i = 0; i < log.Count; i++) a.Apply((ulong)i + 1, log[i], durable: false);
        // The other one in batches of varying size, encrypted: the same log must give the same state.
        var rng = new Random(9);
        for (var i = 0; i < log.Count;)
        {
            var n = Math.Min(rng.Next(1, 60), log.Count - i);
            b.ApplyBatch([.. Enumerable.Range(i, n).Select(j => ((ulong)j + 1, log[j]))], durable: false);
            i += n;
        }
        Assert.Equal(a.Revision, b.Revision);
        Assert.Equal(a.Hash(), b.Hash());
        Assert.Equal(a.Hash(a.CompactRevision + 1), b.Hash(b.CompactRevision + 1));
        Assert.Equal(Dump(a.Storage), Dump(b.Storage));
    }

    [Fact]
    public void The_applied_index_is_recorded_with_the_change_and_replays_are_skipped()
    {
        var path = Path.Combine(_dir, "kv");
        var log = Log(6, 100);
        using (var sm = KvStateMachine.Open(path))
        {
            for (var i = 0; i < 60; i++) sm.Apply((ulong)i + 1, log[i]);
            Assert.Equal(60UL, sm.AppliedIndex);
        }
        using (var sm = KvStateMachine.Open(path))
        {
            Assert.Equal(60UL, sm.AppliedIndex);
            var before = sm.Hash();
            // A restart replays from an earlier index: entries already applied are skipped, the rest apply.
            var results = sm.ApplyBatch([.. Enumerable.Range(50, 50).Select(i => ((ulong)i + 1, log[i]))]);
            Assert.Equal(40, results.Count);
            Assert.Equal(61UL, results[0].Index);
            Assert.Equal(100UL, sm.AppliedIndex);
            Assert.NotEqual(before, sm.Hash());
            Assert.Throws<ArgumentException>(() => sm.Apply(105, log[0]));
        }
        using var reference = KvStateMachine.Open(Path.Combine(_dir, "ref"));
        for (var i = 0; i < 100; i++) reference.Apply((ulong)i + 1, log[i]);
        using var reopened = KvStateMachine.Open(path);
        Assert.Equal(reference.Hash(), reopened.Hash());
    }

    [Fact]
    public void A_refused_entry_changes_nothing_but_is_applied_and_the_rest_of_the_batch_goes_through()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv"), new KvOptions { MaxKeyBytes = 10 });
        var results = sm.ApplyBatch([
            (1, new KvCommand { Put = new PutRequest { Key = B("a"), Value = B("1") } }.Encode()),
            (2, new KvCommand { Put = new PutRequest { Key = B("much-too-long-key"), Value = B("1") } }.Encode()),
            (3, new KvCommand { Txn = new TxnRequest { Success = [new TxnOp { Put = new PutRequest { Key = B("b") } }, new TxnOp { Put = new PutRequest { Key = B("b") } }] } }.Encode()),
            (4, [0xEE, 1, 2]),
            (5, new KvCommand { CompactRevision = 99 }.Encode()),
            (6, new KvCommand { Put = new PutRequest { Key = B("c"), IgnoreValue = true } }.Encode()),
            (7, new KvCommand { Put = new PutRequest { Key = B("d"), Value = B("4") } }.Encode()),
        ]);
        Assert.Null(results[0].Error);
        Assert.IsType<TooLargeException>(results[1].Error);
        Assert.IsType<DuplicateKeyException>(results[2].Error);
        Assert.Contains("not a key-value command", results[3].Error!.Message);
        Assert.IsType<FutureRevisionException>(results[4].Error);
        Assert.IsType<KeyNotFoundForUpdateException>(results[5].Error);
        Assert.Null(results[6].Error);
        Assert.Equal(7UL, sm.AppliedIndex);
        Assert.Equal(2, sm.Revision); // two puts: a and d
        var all = sm.Range(new RangeRequest { Key = [0], RangeEnd = [0] });
        Assert.Equal(["a", "d"], all.Kvs.Select(k => Encoding.UTF8.GetString(k.Key)));
    }

    [Fact]
    public void Reads_name_compacted_and_future_revisions()
    {
        using var store = KvStore.Open(_dir);
        for (var i = 0; i < 10; i++) store.Put(B("k"), B($"v{i}"));
        store.Compact(5);
        var e = Assert.Throws<CompactedException>(() => store.Range(new RangeRequest { Key = B("k"), Revision = 4 }));
        Assert.Equal(5, e.CompactRevision);
        Assert.Contains("compacted", e.Message);
        var f = Assert.Throws<FutureRevisionException>(() => store.Range(new RangeRequest { Key = B("k"), Revision = 11 }));
        Assert.Equal(10, f.Current);
        var at5 = store.Range(new RangeRequest { Key = B("k"), Revision = 5 });
        Assert.Equal("v4", Encoding.UTF8.GetString(at5.Kvs[0].Value));
        Assert.Equal(5, at5.Kvs[0].Version);
        Assert.Equal(1, at5.Kvs[0].CreateRevision);
        Assert.Throws<CompactedException>(() => store.Compact(3));
        Assert.Throws<TooLargeException>(() => store.Put(new byte[3000], B("x")));
        Assert.Throws<TooLargeException>(() => store.Put(B("x"), new byte[2 << 20]));
    }

    [Fact]
    public async Task Concurrent_writers_and_readers_see_every_acknowledged_write()
    {
        using var store = KvStore.Open(_dir, new KvOptions { Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } });
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(() =>
        {
            for (var i = 0; i < 200; i++)
            {
                var r = store.Put(B($"w{w}/{i:D4}"), B($"{i}"));
                var got = store.Get(B($"w{w}/{i:D4}"));
                Assert.NotNull(got);
                Assert.True(got!.ModRevision <= store.Revision && r.Header.Revision == got.ModRevision);
            }
        })).ToArray();
        await Task.WhenAll(writers);
        Assert.Equal(800, store.Revision);
        var all = store.Range(new RangeRequest { Key = B("w"), RangeEnd = RangeRequest.Prefix(B("w")), CountOnly = true });
        Assert.Equal(800, all.Count);
        // Revisions are dense and each write got its own.
        var revs = store.Range(new RangeRequest { Key = B("w"), RangeEnd = RangeRequest.Prefix(B("w")) }).Kvs.Select(k => k.ModRevision).OrderBy(x => x);
        Assert.Equal(Enumerable.Range(1, 800).Select(i => (long)i), revs);
    }

    [Fact]
    public async Task Concurrent_writers_share_one_commit_and_one_sync()
    {
        using var store = KvStore.Open(_dir);
        using var release = new ManualResetEventSlim();
        var first = true;
        // The first leader waits until fifteen more writers have queued behind it.
        store.LeaderHook = () =>
        {
            if (!first) return;
            first = false;
            release.Wait(TimeSpan.FromSeconds(30));
        };
        var before = store.Machine.Storage.LastCommittedTransaction;
        // Real threads: blocked writers must not starve the thread pool.
        var leader = new Thread(() => store.Put(B("first"), B("1")));
        leader.Start();
        while (store.QueuedWrites < 1) await Task.Delay(1);
        var followers = Enumerable.Range(0, 15).Select(i => new Thread(() => store.Put(B($"f{i:D2}"), B("x")))).ToList();
        foreach (var t in followers) t.Start();
        while (store.QueuedWrites < 16) await Task.Delay(1);
        release.Set();
        leader.Join();
        foreach (var t in followers) t.Join();
        Assert.Equal(16, store.Revision);
        // One storage commit for all sixteen puts.
        Assert.Equal(before + 1, store.Machine.Storage.LastCommittedTransaction);
        Assert.Equal(16, store.Range(new RangeRequest { Key = [0], RangeEnd = [0], CountOnly = true }).Count);
    }

    [Fact]
    public void Garbage_commands_decode_to_a_clean_error_never_a_crash()
    {
        var rng = new Random(42);
        var valid = Log(7, 50);
        for (var i = 0; i < 20_000; i++)
        {
            byte[] bytes;
            if (i % 2 == 0)
            {
                bytes = new byte[rng.Next(0, 64)];
                rng.NextBytes(bytes);
            }
            else
            {
                bytes = (byte[])valid[rng.Next(valid.Count)].Clone();
                if (bytes.Length > 0) bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8));
                if (rng.Next(4) == 0) bytes = bytes[..rng.Next(bytes.Length + 1)];
            }
            try
            {
                var c = KvCommand.Decode(bytes);
                Assert.Equal(bytes, c.Encode()); // anything that decodes is a command that encodes to the same bytes
            }
            catch (InvalidDataException)
            {
            }
        }
    }
}

public sealed class LeaseTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public LeaseTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void A_lease_expires_by_the_clock_through_the_log_and_keep_alive_renews_it()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.Parse("2026-01-01T00:00:00Z", System.Globalization.CultureInfo.InvariantCulture));
        using (var store = KvStore.Open(_dir, time: time))
        {
            var lease = store.GrantLease(10).Id;
            store.Put(new PutRequest { Key = B("session/a"), Value = B("1"), Lease = lease });
            store.Put(new PutRequest { Key = B("session/b"), Value = B("2"), Lease = lease });
            store.Put(B("other"), B("3"));
            Assert.Throws<LeaseNotFoundException>(() => store.Put(new PutRequest { Key = B("x"), Lease = lease + 1 }));
            var ttl = store.TimeToLive(lease)!.Value;
            Assert.Equal(10, ttl.Lease.Ttl);
            Assert.Equal(["session/a", "session/b"], ttl.Lease.Keys.Select(k => Encoding.UTF8.GetString(k)));

            time.Advance(TimeSpan.FromSeconds(8));
            Assert.Equal(0, store.ExpireLeases());
            Assert.Equal(2, store.TimeToLive(lease)!.Value.RemainingSeconds);
            Assert.Equal(10, store.KeepAlive(lease));
            time.Advance(TimeSpan.FromSeconds(8));
            Assert.Equal(0, store.ExpireLeases());
            var before = store.Revision;
            // The store's own timer (on the fake clock) finds the lease expired and revokes it through the log.
            time.Advance(TimeSpan.FromSeconds(3));
            Assert.Equal(0, store.ExpireLeases());
            // Both keys went at one revision; the other key stayed.
            Assert.Equal(before + 1, store.Revision);
            Assert.Null(store.Get(B("session/a")));
            Assert.Null(store.Get(B("session/b")));
            Assert.NotNull(store.Get(B("other")));
            Assert.Null(store.TimeToLive(lease));
            Assert.Throws<LeaseNotFoundException>(() => store.KeepAlive(lease));
            Assert.Empty(store.Leases());
        }
    }

    [Fact]
    public void Revoke_deletes_the_keys_and_a_reopened_store_gives_leases_their_full_ttl()
    {
        var time = new Microsoft.Extensions.Time.Testing.FakeTimeProvider();
        long keep, drop;
        using (var store = KvStore.Open(_dir, time: time))
        {
            keep = store.GrantLease(60).Id;
            drop = store.GrantLease(60).Id;
            Assert.Throws<LeaseExistsException>(() => store.GrantLease(5, keep));
            store.Put(new PutRequest { Key = B("k1"), Lease = keep });
            store.Put(new PutRequest { Key = B("k2"), Lease = drop });
            // Moving a key to another lease detaches it from the first.
            store.Put(new PutRequest { Key = B("k3"), Lease = drop });
            store.Put(new PutRequest { Key = B("k3"), Lease = keep, Value = B("moved") });
            Assert.Equal(1, store.RevokeLease(drop).Deleted);
            Assert.Equal(2, store.TimeToLive(keep)!.Value.Lease.Keys.Count);
            Assert.Throws<LeaseNotFoundException>(() => store.RevokeLease(drop));
            time.Advance(TimeSpan.FromSeconds(50));
        }
        using (var store = KvStore.Open(_dir, time: time))
        {
            Assert.Equal(60, store.TimeToLive(keep)!.Value.RemainingSeconds);
            Assert.Single(store.Leases());
            Assert.Equal("moved", Encoding.UTF8.GetString(store.Get(B("k3"))!.Value));
        }
    }
}

public sealed class ReadViewTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void A_read_view_is_a_snapshot_and_its_gets_allocate_nothing()
    {
        using var store = KvStore.Open(_dir, new KvOptions { Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } });
        var keys = Enumerable.Range(0, 2_000).Select(i => Encoding.ASCII.GetBytes($"key/{i:D5}")).ToArray();
        foreach (var k in keys) store.Put(k, k);
        using (var view = store.BeginRead())
        {
            Assert.Equal(2_000, view.Revision);
            store.Put(keys[0], Encoding.ASCII.GetBytes("changed"));
            long sum = 0;
            long allocated = 0;
            for (var pass = 0; pass < 2; pass++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                foreach (var k in keys)
                {
                    Assert.True(view.TryGet(k, out var e));
                    sum += e.Value.Length + e.Version;
                }
                allocated = GC.GetAllocatedBytesForCurrentThread() - before;
            }
            Assert.Equal(0, allocated);
            Assert.True(view.TryGet(keys[0], out var first));
            Assert.True(first.Value.SequenceEqual(keys[0]), "the view must not see the later put");
            Assert.Equal(1, first.ModRevision);
            Assert.False(view.TryGet("missing"u8, out _));
            Assert.True(sum > 0);
        }
        Assert.Equal("changed", Encoding.ASCII.GetString(store.Get(keys[0])!.Value));
        store.Defragment(); // no view open: the swap does not wait
        using var after = store.BeginRead();
        Assert.True(after.TryGet(keys[1], out var e1) && e1.Value.SequenceEqual(keys[1]));
    }
}
