using System.Text;
using Cairn.Storage;
using Xunit.Abstractions;

namespace Cairn.Kv.Tests;

/// <summary>Long random sequences of puts, deletes, transactions and compactions, with reads at random revisions, against <see cref="ReferenceModel"/>.</summary>
public sealed class ModelTests(ITestOutputHelper output)
{
    // A small key space with shared prefixes and zero bytes, so ranges, prefixes and history-key escaping all matter.
    private static readonly byte[][] Keys = BuildKeys();

    private static byte[][] BuildKeys()
    {
        var keys = new List<byte[]>();
        foreach (var s in new[] { "a", "ab", "abc", "b", "ba", "c", "foo", "foo/bar", "foo/baz", "z" }) keys.Add(Encoding.ASCII.GetBytes(s));
        keys.Add([(byte)'a', 0]);
        keys.Add([(byte)'a', 0, 0]);
        keys.Add([(byte)'a', 0, 1]);
        keys.Add([0]);
        keys.Add([0, 0xFF]);
        keys.Add([0xFF]);
        keys.Add([0xFF, 0xFF]);
        return [.. keys];
    }

    private sealed class Gen(Random rng)
    {
        public byte[] Key() => Keys[rng.Next(Keys.Length)];

        public byte[] Value()
        {
            var n = rng.Next(100) switch { 0 => 20_000, 1 => 0, _ => rng.Next(1, 40) };
            var v = new byte[n];
            rng.NextBytes(v);
            return v;
        }

        public byte[] End(byte[] key) => rng.Next(5) switch
        {
            0 => [],
            1 => [0],
            2 => RangeRequest.Prefix(key),
            _ => Key(),
        };

        public RangeRequest Range(long revision, long compacted) => new()
        {
            Key = Key(),
            RangeEnd = rng.Next(3) == 0 ? [] : End(Key()),
            Limit = rng.Next(4) == 0 ? rng.Next(1, 4) : 0,
            Revision = rng.Next(3) switch { 0 => 0, 1 => Math.Max(0, revision - rng.Next(0, 30)), _ => rng.Next(0, (int)revision + 3) },
            CountOnly = rng.Next(10) == 0,
            KeysOnly = rng.Next(6) == 0,
            MinModRevision = rng.Next(10) == 0 ? rng.Next(0, (int)revision + 1) : 0,
            MaxCreateRevision = rng.Next(10) == 0 ? rng.Next(0, (int)revision + 1) : 0,
        };

        public PutRequest Put() => new()
        {
            Key = Key(),
            Value = Value(),
            Lease = rng.Next(5) == 0 ? rng.Next(1, 4) : 0,
            PrevKv = rng.Next(2) == 0,
            IgnoreValue = rng.Next(15) == 0,
            IgnoreLease = rng.Next(15) == 0,
        };

        public DeleteRangeRequest Delete()
        {
            var key = Key();
            return new DeleteRangeRequest { Key = key, RangeEnd = rng.Next(2) == 0 ? [] : End(key), PrevKv = rng.Next(2) == 0 };
        }

        public Compare Compare() => new()
        {
            Key = Key(),
            RangeEnd = rng.Next(6) == 0 ? End(Key()) : [],
            Target = (CompareTarget)rng.Next(5),
            Result = (CompareResult)rng.Next(4),
            Value = Value(),
            Number = rng.Next(0, 6),
        };

        public TxnRequest Txn(long revision, long compacted, int depth = 0) => new()
        {
            Compares = [.. Enumerable.Range(0, rng.Next(0, 3)).Select(_ => Compare())],
            Success = Ops(revision, compacted, depth),
            Failure = Ops(revision, compacted, depth),
        };

        private List<TxnOp> Ops(long revision, long compacted, int depth) =>
            [.. Enumerable.Range(0, rng.Next(0, 4)).Select(_ => rng.Next(depth < 1 ? 4 : 3) switch
            {
                0 => new TxnOp { Range = Range(revision, compacted) },
                1 => new TxnOp { Put = Put() },
                2 => new TxnOp { Delete = Delete() },
                _ => new TxnOp { Txn = Txn(revision, compacted, depth + 1) },
            })];

        public KvCommand Command(long revision, long compacted) => rng.Next(100) switch
        {
            < 42 => new KvCommand { Put = Put() },
            < 60 => new KvCommand { Delete = Delete() },
            < 90 => new KvCommand { Txn = Txn(revision, compacted) },
            < 94 => new KvCommand { LeaseGrant = (rng.Next(1, 5), rng.Next(1, 100)) },
            < 97 => new KvCommand { LeaseRevoke = rng.Next(1, 5) },
            _ => new KvCommand { CompactRevision = Math.Max(1, compacted + rng.Next(-2, 20)) },
        };
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Random_commands_and_reads_match_the_reference(int seed)
    {
        const int commands = 8_000;
        var dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        var options = new KvOptions { MaxValueBytes = 16_000, Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } };
        var model = new ReferenceModel { MaxValue = 16_000 };
        var rng = new Random(seed);
        var gen = new Gen(rng);
        var sm = KvStateMachine.Open(Path.Combine(dir, "kv.cairn"), options);
        ulong index = 0;
        try
        {
            for (var i = 0; i < commands; i++)
            {
                var where = $"seed {seed}, command {i}";
                var command = gen.Command(model.Revision, model.Compacted);
                object? expected;
                Type? expectedError = null;
                try { expected = model.Apply(command); }
                catch (Exception e) when (e is KvException or ArgumentException) { expected = null; expectedError = e.GetType(); }
                var result = sm.Apply(++index, command.Encode(), durable: false);
                if (expectedError is not null)
                {
                    Assert.True(result.Error is not null, $"{where}: expected {expectedError.Name}, got a response");
                    if (expectedError != typeof(ArgumentException)) Assert.True(result.Error!.GetType() == expectedError, $"{where}: expected {expectedError.Name}, got {result.Error}");
                }
                else
                {
                    Assert.True(result.Error is null, $"{where}: unexpected error {result.Error}");
                    AssertSame(expected!, result.Response!, where);
                }
                Assert.Equal(model.Revision, sm.Revision);

                for (var r = 0; r < 2; r++)
                {
                    var q = gen.Range(model.Revision, model.Compacted);
                    RangeResponse? want = null;
                    Type? wantError = null;
                    try { want = model.Range(q); }
                    catch (KvException e) { wantError = e.GetType(); }
                    if (wantError is not null)
                    {
                        var e = Assert.ThrowsAny<KvException>(() => sm.Range(q));
                        Assert.True(e.GetType() == wantError, $"{where}: range expected {wantError.Name}, got {e.GetType().Name}");
                    }
                    else
                    {
                        var got = sm.Range(q);
                        AssertSame(want!, got, $"{where}, range [{Convert.ToHexString(q.Key)}, {Convert.ToHexString(q.RangeEnd)}) at {q.Revision} (store at {model.Revision}, compacted {model.Compacted}, filters {q.MinModRevision}/{q.MaxCreateRevision}): got [{string.Join(",", got.Kvs.Select(k => $"{Convert.ToHexString(k.Key)}@{k.ModRevision}"))}] want [{string.Join(",", want!.Kvs.Select(k => $"{Convert.ToHexString(k.Key)}@{k.ModRevision}"))}]");
                    }
                }

                if (i % 2_000 == 1_999)
                {
                    sm.Storage.Verify();
                    sm.Dispose();
                    sm = KvStateMachine.Open(Path.Combine(dir, "kv.cairn"), options);
                    Assert.Equal(index, sm.AppliedIndex);
                    Assert.Equal(model.Revision, sm.Revision);
                    Assert.Equal(model.Compacted, sm.CompactRevision);
                }
            }
            output.WriteLine($"seed {seed}: {commands} commands, revision {model.Revision}, compacted {model.Compacted}");
        }
        finally
        {
            sm.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    internal static void AssertSame(object expected, object actual, string where, bool top = true)
    {
        switch (expected, actual)
        {
            case (PutResponse e, PutResponse a):
                if (top) Assert.True(e.Header == a.Header, $"{where}: put header {a.Header} vs {e.Header}");
                AssertKv(e.PrevKv, a.PrevKv, $"{where}: put prev");
                break;
            case (DeleteRangeResponse e, DeleteRangeResponse a):
                if (top) Assert.True(e.Header == a.Header, $"{where}: delete header {a.Header} vs {e.Header}");
                Assert.True(e.Deleted == a.Deleted, $"{where}: deleted {a.Deleted} vs {e.Deleted}");
                AssertKvs(e.PrevKvs, a.PrevKvs, $"{where}: delete prev");
                break;
            case (RangeResponse e, RangeResponse a):
                if (top) Assert.True(e.Header == a.Header, $"{where}: range header {a.Header} vs {e.Header}");
                Assert.True(e.Count == a.Count, $"{where}: count {a.Count} vs {e.Count}");
                Assert.True(e.More == a.More, $"{where}: more {a.More} vs {e.More}");
                AssertKvs(e.Kvs, a.Kvs, $"{where}: range");
                break;
            case (TxnResponse e, TxnResponse a):
                if (top) Assert.True(e.Header == a.Header, $"{where}: txn header {a.Header} vs {e.Header}");
                Assert.True(e.Succeeded == a.Succeeded, $"{where}: txn succeeded {a.Succeeded} vs {e.Succeeded}");
                Assert.True(e.Responses.Count == a.Responses.Count, $"{where}: txn responses {a.Responses.Count} vs {e.Responses.Count}");
                for (var i = 0; i < e.Responses.Count; i++)
                {
                    var (er, ar) = (e.Responses[i], a.Responses[i]);
                    AssertSame((object?)er.Range ?? (object?)er.Put ?? (object?)er.Delete ?? er.Txn!, (object?)ar.Range ?? (object?)ar.Put ?? (object?)ar.Delete ?? ar.Txn!, $"{where}: txn op {i}", top: false);
                }
                break;
            case (LeaseGrantResponse e, LeaseGrantResponse a):
                Assert.True(e == a, $"{where}: grant {a} vs {e}");
                break;
            case (LeaseRevokeResponse e, LeaseRevokeResponse a):
                Assert.True(e == a, $"{where}: revoke {a} vs {e}");
                break;
            case (CompactResponse e, CompactResponse a):
                Assert.True(e.Header == a.Header, $"{where}: compact header {a.Header} vs {e.Header}");
                break;
            default:
                Assert.Fail($"{where}: response {actual.GetType().Name}, expected {expected.GetType().Name}");
                break;
        }
    }

    private static void AssertKvs(IReadOnlyList<KeyValue> e, IReadOnlyList<KeyValue> a, string where)
    {
        Assert.True(e.Count == a.Count, $"{where}: {a.Count} kvs vs {e.Count} ({string.Join(",", a.Select(k => Convert.ToHexString(k.Key)))} vs {string.Join(",", e.Select(k => Convert.ToHexString(k.Key)))})");
        for (var i = 0; i < e.Count; i++) AssertKv(e[i], a[i], $"{where}[{i}]");
    }

    private static void AssertKv(KeyValue? e, KeyValue? a, string where)
    {
        if (e is null || a is null)
        {
            Assert.True(e is null && a is null, $"{where}: {(a is null ? "missing" : "unexpected")} key-value");
            return;
        }
        Assert.True(e.Key.AsSpan().SequenceEqual(a.Key), $"{where}: key {Convert.ToHexString(a.Key)} vs {Convert.ToHexString(e.Key)}");
        Assert.True(e.Value.AsSpan().SequenceEqual(a.Value), $"{where}: value of {Convert.ToHexString(a.Key)} differs ({a.Value.Length} vs {e.Value.Length} bytes)");
        Assert.True((e.CreateRevision, e.ModRevision, e.Version, e.Lease) == (a.CreateRevision, a.ModRevision, a.Version, a.Lease),
            $"{where}: {Convert.ToHexString(a.Key)} create/mod/version/lease {(a.CreateRevision, a.ModRevision, a.Version, a.Lease)} vs {(e.CreateRevision, e.ModRevision, e.Version, e.Lease)}");
    }
}
