using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

/// <summary>Empty log entries (no-ops), commands passed as slices, and the replicated cluster records.</summary>
public sealed class ClusterTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public ClusterTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static KvOptions Fast => new() { Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } };

    [Fact]
    public void Empty_entries_advance_the_applied_index_and_change_neither_revision_nor_hash()
    {
        var log = TestLogs.Random(seed: 3, count: 300);
        using var plain = KvStateMachine.Open(Path.Combine(_dir, "plain"), Fast);
        using var padded = KvStateMachine.Open(Path.Combine(_dir, "padded"), Fast);
        var rng = new Random(4);
        ulong index = 0;
        foreach (var (command, i) in log.Select((c, i) => (c, i)))
        {
            plain.Apply((ulong)i + 1, command);
            // The padded store sees the same commands with runs of empty entries between them, in random batches.
            var batch = new List<(ulong, ReadOnlyMemory<byte>)>();
            for (var n = rng.Next(3); n > 0; n--) batch.Add((++index, ReadOnlyMemory<byte>.Empty));
            var before = (padded.Revision, padded.Hash().Hash);
            if (batch.Count > 0)
            {
                var noops = padded.ApplyBatch(batch);
                Assert.All(noops, r => Assert.True(r.Response is null && r.Error is null, $"entry {r.Index}: a no-op has neither response nor error"));
                Assert.Equal(index, padded.AppliedIndex);
                Assert.Equal(before, (padded.Revision, padded.Hash().Hash));
            }
            var applied = padded.Apply(++index, command);
            Assert.Equal(index, applied.Index);
        }
        Assert.Equal(index, padded.AppliedIndex);
        Assert.True(index > (ulong)log.Count, "the test must have inserted no-ops");
        Assert.Equal(plain.Revision, padded.Revision);
        Assert.Equal(plain.Hash(), padded.Hash());
        Assert.Equal(plain.ClusterMetadata(), padded.ClusterMetadata(), TestLogs.RecordComparer);
        // A single empty entry through Apply, too.
        var r = padded.Apply(index + 1, ReadOnlySpan<byte>.Empty);
        Assert.True(r.Response is null && r.Error is null);
        Assert.Equal(index + 1, padded.AppliedIndex);
    }

    [Fact]
    public void Commands_passed_as_slices_of_larger_buffers_apply_like_arrays()
    {
        var log = TestLogs.Random(seed: 8, count: 200);
        using var arrays = KvStateMachine.Open(Path.Combine(_dir, "arrays"), Fast);
        using var slices = KvStateMachine.Open(Path.Combine(_dir, "slices"), Fast);
        var arrayResults = arrays.ApplyBatch([.. log.Select((c, i) => ((ulong)i + 1, c))]);
        // As the server passes them: each command after a 16-byte envelope of its own, with junk after it.
        var entries = new List<(ulong, ReadOnlyMemory<byte>)>();
        foreach (var (c, i) in log.Select((c, i) => (c, i)))
        {
            var frame = new byte[16 + c.Length + 5];
            Array.Fill(frame, (byte)0xAB);
            c.CopyTo(frame, 16);
            entries.Add(((ulong)i + 1, frame.AsMemory(16, c.Length)));
        }
        var sliceResults = slices.ApplyBatch(entries);
        Assert.Equal(arrayResults.Select(r => (r.Index, r.Error?.GetType(), r.Response?.GetType())), sliceResults.Select(r => (r.Index, r.Error?.GetType(), r.Response?.GetType())));
        Assert.Equal(arrays.Hash(), slices.Hash());
        Assert.Equal(TestLogs.Dump(arrays.Storage), TestLogs.Dump(slices.Storage));
    }

    [Fact]
    public void Cluster_records_follow_a_model_move_no_revision_make_no_events_and_survive_reopen_and_defragment()
    {
        var path = Path.Combine(_dir, "kv");
        var model = new SortedDictionary<byte[], byte[]>(ByteOrder.Instance);
        var rng = new Random(21);
        long puts = 0;
        ulong index = 0;
        using (var sm = KvStateMachine.Open(path, Fast))
        {
            for (var i = 0; i < 400; i++)
            {
                var key = B($"member/{rng.Next(12):D2}");
                KvCommand command;
                if (rng.Next(4) == 0)
                {
                    command = new KvCommand { Put = new PutRequest { Key = B($"k{rng.Next(20)}"), Value = B($"{i}") } };
                    puts++;
                }
                else if (rng.Next(3) == 0)
                {
                    command = new KvCommand { Cluster = (key, null) }; // deleting a missing record is fine too
                    model.Remove(key);
                }
                else
                {
                    var value = new byte[rng.Next(0, 200)];
                    rng.NextBytes(value);
                    command = new KvCommand { Cluster = (key, value) };
                    model[key] = value;
                }
                var hashBefore = sm.Hash().Hash;
                var r = sm.Apply(++index, command.Encode());
                Assert.Null(r.Error);
                Assert.Equal(puts, sm.Revision);
                if (command.Cluster is not null)
                {
                    Assert.Equal(new ResponseHeader(puts), Assert.IsType<ResponseHeader>(r.Response));
                    Assert.Equal(hashBefore, sm.Hash().Hash);
                }
                if (i % 50 == 0) Assert.Equal(model.Select(kv => (kv.Key, kv.Value)), sm.ClusterMetadata(), TestLogs.RecordComparer);
            }
            Assert.Equal(model.Select(kv => (kv.Key, kv.Value)), sm.ClusterMetadata(), TestLogs.RecordComparer);
            // Watchers saw only the puts: replaying every change from revision 1 finds exactly one event per put.
            Assert.Equal(puts, TestLogs.EventCount(sm, 1));
            // Refused: an empty key, a key over the limit.
            Assert.IsType<KvException>(sm.Apply(++index, new KvCommand { Cluster = ([], B("x")) }.Encode()).Error);
            Assert.IsType<TooLargeException>(sm.Apply(++index, new KvCommand { Cluster = (new byte[3000], B("x")) }.Encode()).Error);
            sm.Defragment();
            Assert.Equal(model.Select(kv => (kv.Key, kv.Value)), sm.ClusterMetadata(), TestLogs.RecordComparer);
        }
        using (var sm = KvStateMachine.Open(path, Fast))
        {
            Assert.Equal(model.Select(kv => (kv.Key, kv.Value)), sm.ClusterMetadata(), TestLogs.RecordComparer);
            Assert.Equal(puts, sm.Revision);
            Assert.Equal(index, sm.AppliedIndex);
        }
    }

    [Fact]
    public void Cluster_commands_round_trip_through_the_codec_with_one_encoding_each()
    {
        var set = new KvCommand { Cluster = (B("member/1"), B("node-a 10.0.0.1:2380")) };
        var delete = new KvCommand { Cluster = (B("member/1"), null) };
        var emptyValue = new KvCommand { Cluster = (B("member/2"), []) };
        foreach (var c in new[] { set, delete, emptyValue })
        {
            var bytes = c.Encode();
            var back = KvCommand.Decode(bytes);
            Assert.Equal(c.Cluster!.Value.Key, back.Cluster!.Value.Key);
            Assert.Equal(c.Cluster.Value.Value, back.Cluster.Value.Value);
            Assert.Equal(bytes, back.Encode());
            Assert.Null(back.Put);
            Assert.Equal(0, back.CompactRevision);
        }
        // A delete and a set of an empty value are different commands; unknown flag bits are refused.
        Assert.NotEqual(delete.Encode(), new KvCommand { Cluster = (B("member/1"), []) }.Encode());
        var forged = delete.Encode();
        forged[^1] = 2;
        Assert.Throws<InvalidDataException>(() => KvCommand.Decode(forged));
        // The tags of the existing commands did not move (old logs still decode).
        Assert.Equal(1, new KvCommand { Put = new PutRequest { Key = B("k") } }.Encode()[0]);
        Assert.Equal(8, new KvCommand { NoSpaceAlarm = true }.Encode()[0]);
        Assert.Equal(9, set.Encode()[0]);
    }

    [Fact]
    public void A_file_without_the_cluster_tree_gets_it_when_opened()
    {
        var path = Path.Combine(_dir, "old");
        using (var sm = KvStateMachine.Open(path, Fast)) sm.Apply(1, new KvCommand { Put = new PutRequest { Key = B("a"), Value = B("1") } }.Encode());
        // Make it a file from before the cluster tree existed.
        using (var db = Database.Open(path, Fast.Storage))
        {
            using var tx = db.BeginWrite();
            Assert.True(tx.DeleteTree("kv.cluster"));
            tx.Commit();
        }
        using (var db = Database.Open(path, Fast.Storage))
        using (var tx = db.BeginRead()) Assert.DoesNotContain("kv.cluster", tx.GetTreeNames());
        using var reopened = KvStateMachine.Open(path, Fast);
        Assert.Empty(reopened.ClusterMetadata());
        Assert.Null(reopened.Apply(2, new KvCommand { Cluster = (B("m"), B("v")) }.Encode()).Error);
        Assert.Single(reopened.ClusterMetadata());
    }
}

/// <summary>Random logs and comparisons shared by the cluster and snapshot tests.</summary>
internal static class TestLogs
{
    public static readonly IEqualityComparer<(byte[] Key, byte[] Value)> RecordComparer = new Records();

    private sealed class Records : IEqualityComparer<(byte[] Key, byte[] Value)>
    {
        public bool Equals((byte[] Key, byte[] Value) x, (byte[] Key, byte[] Value) y) => x.Key.AsSpan().SequenceEqual(y.Key) && x.Value.AsSpan().SequenceEqual(y.Value);

        public int GetHashCode((byte[] Key, byte[] Value) obj) => obj.Key.Length;
    }

    /// <summary>
    /// Puts (some with leases), deletes, transactions, lease grants and revokes, cluster records, compactions and empty
    /// entries; some are refused (a revoked lease, a future compaction), which is part of the log too.
    /// </summary>
    public static List<byte[]> Random(int seed, int count, long firstLease = 1)
    {
        var rng = new Random(seed);
        var leases = new List<long>();
        var nextLease = firstLease;
        var log = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = Encoding.UTF8.GetBytes($"k/{rng.Next(60):D2}");
            var value = new byte[rng.Next(0, 300)];
            rng.NextBytes(value);
            KvCommand? c = rng.Next(24) switch
            {
                < 10 => new KvCommand { Put = new PutRequest { Key = key, Value = value, Lease = leases.Count > 0 && rng.Next(4) == 0 ? leases[rng.Next(leases.Count)] : 0 } },
                < 13 => new KvCommand { Delete = new DeleteRangeRequest { Key = key, RangeEnd = rng.Next(4) == 0 ? RangeRequest.Prefix(key.AsSpan(0, 3)) : [] } },
                < 15 => new KvCommand { Txn = new TxnRequest { Compares = [new Compare { Key = key, Target = CompareTarget.Version, Result = CompareResult.Greater, Number = 1 }], Success = [new TxnOp { Put = new PutRequest { Key = key, Value = value } }], Failure = [new TxnOp { Delete = new DeleteRangeRequest { Key = key } }] } },
                < 17 => new KvCommand { LeaseGrant = (Grant(leases, ref nextLease), rng.Next(5, 100)) },
                < 18 => new KvCommand { LeaseRevoke = leases.Count > 0 ? leases[rng.Next(leases.Count)] : 999 },
                < 21 => new KvCommand { Cluster = (Encoding.UTF8.GetBytes($"member/{rng.Next(6)}"), rng.Next(4) == 0 ? null : value) },
                < 22 => new KvCommand { CompactRevision = Math.Max(1, i / 3) },
                _ => null,
            };
            log.Add(c?.Encode() ?? []);
        }
        return log;
    }

    private static long Grant(List<long> leases, ref long next)
    {
        leases.Add(next);
        return next++;
    }

    /// <summary>Every record of every tree, as text, for comparing two stores byte for byte.</summary>
    public static Dictionary<string, string> Dump(Database db)
    {
        var all = new Dictionary<string, string>();
        using var tx = db.BeginRead();
        foreach (var name in tx.GetTreeNames())
        {
            all[name] = "(tree)";
            foreach (var e in tx.OpenTree(name).All()) all[name + "/" + Convert.ToHexString(e.Key)] = Convert.ToHexString(e.Value);
        }
        return all;
    }

    /// <summary>How many events a watch of every key from <paramref name="from"/> replays (none are live: nothing is written meanwhile).</summary>
    public static long EventCount(KvStateMachine sm, long from)
    {
        var target = sm.Revision;
        if (target < from) return 0;
        using var watcher = sm.Watch(new WatchRequest { Key = [0], RangeEnd = [0], StartRevision = from });
        long events = 0;
        var task = Task.Run(async () =>
        {
            await foreach (var r in watcher.ReadAllAsync())
            {
                Assert.False(r.Canceled);
                events += r.Events.Count;
                if (r.Header.Revision >= target) break;
            }
        });
        Assert.True(task.Wait(TimeSpan.FromSeconds(30)), "the replay did not finish");
        return events;
    }

    /// <summary>The state two stores must share after one was installed from the other's snapshot.</summary>
    public static void AssertSameState(KvStateMachine expected, KvStateMachine actual)
    {
        Assert.Equal(expected.AppliedIndex, actual.AppliedIndex);
        Assert.Equal(expected.Revision, actual.Revision);
        Assert.Equal(expected.CompactRevision, actual.CompactRevision);
        Assert.Equal(expected.Hash(), actual.Hash());
        Assert.Equal(expected.NoSpaceAlarm, actual.NoSpaceAlarm);
        Assert.Equal(expected.Leases().Select(l => (l.Id, l.Ttl, Keys: string.Join(",", expected.Lease(l.Id)!.Keys.Select(Convert.ToHexString)))),
            actual.Leases().Select(l => (l.Id, l.Ttl, Keys: string.Join(",", actual.Lease(l.Id)!.Keys.Select(Convert.ToHexString)))));
        Assert.Equal(expected.ClusterMetadata(), actual.ClusterMetadata(), RecordComparer);
        Assert.Equal(Dump(expected.Storage), Dump(actual.Storage));
    }
}

/// <summary>The server's span encoder of puts writes exactly what <see cref="KvCommand.Encode"/> writes.</summary>
public sealed class WritePutTests
{
    [Fact]
    public void WritePut_matches_Encode_for_every_flag_and_size_after_the_prefix()
    {
        var random = new Random(3);
        for (var i = 0; i < 200; i++)
        {
            var key = new byte[random.Next(1, 50)];
            var value = new byte[random.Next(0, 3000)];
            random.NextBytes(key);
            random.NextBytes(value);
            var request = new PutRequest { Key = key, Value = value, Lease = random.NextInt64(0, 1000), PrevKv = random.Next(2) == 1, IgnoreValue = random.Next(2) == 1, IgnoreLease = random.Next(2) == 1 };
            var prefix = random.Next(0, 20);
            var fast = new byte[prefix + KvCommand.PutLength(key.Length, value.Length)];   // as a proposal's buffer, envelope first
            KvCommand.WritePut(fast.AsSpan(prefix), key, value, request.Lease, request.PrevKv, request.IgnoreValue, request.IgnoreLease);
            Assert.Equal(new KvCommand { Put = request }.Encode(), fast[prefix..]);
            Assert.Equal(request, KvCommand.Decode(fast.AsSpan(prefix)).Put! with { Key = key, Value = value });
        }
    }
}
