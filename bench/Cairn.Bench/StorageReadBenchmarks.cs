using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LightningDB;
using static Cairn.Bench.StorageData;

namespace Cairn.Bench;

/// <summary>
/// Reads from a loaded data set (1M keys of 16 bytes, 100-byte values; see <see cref="StorageData"/>): random point gets
/// in one read transaction per invoke, and a full ordered scan. LMDB is the baseline of each category.
/// Only the engine a benchmark measures is loaded in its process (load time is not measured).
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[Config(typeof(StorageConfig))]
public class StorageReadBenchmarks
{
    private CairnFixture? _cairn;
    private LmdbFixture? _lmdb;
    private RocksFixture? _rocks;

    [GlobalSetup(Targets = [nameof(Get_Cairn), nameof(Scan_Cairn)])]
    public void SetupCairn()
    {
        _cairn = new CairnFixture("read");
        _cairn.Preload();
        Check(nameof(Get_Cairn), Get_Cairn(), ExpectedLookupSum());
        Check(nameof(Scan_Cairn), Scan_Cairn(), ExpectedScanSum(KeyCount));
    }

    [GlobalSetup(Targets = [nameof(Get_Lmdb), nameof(Scan_Lmdb)])]
    public void SetupLmdb()
    {
        _lmdb = new LmdbFixture("read", noSync: false);
        _lmdb.Preload();
        Check(nameof(Get_Lmdb), Get_Lmdb(), ExpectedLookupSum());
        Check(nameof(Scan_Lmdb), Scan_Lmdb(), ExpectedScanSum(KeyCount));
    }

    [GlobalSetup(Targets = [nameof(Get_RocksDb), nameof(Scan_RocksDb)])]
    public void SetupRocksDb()
    {
        _rocks = new RocksFixture("read");
        _rocks.Preload();
        Check(nameof(Get_RocksDb), Get_RocksDb(), ExpectedLookupSum());
        Check(nameof(Scan_RocksDb), Scan_RocksDb(), ExpectedScanSum(KeyCount));
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cairn?.Dispose();
        _lmdb?.Dispose();
        _rocks?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = LookupCount), BenchmarkCategory("PointGet")]
    public long Get_Lmdb()
    {
        var db = _lmdb!.Db;
        using var tx = _lmdb.Env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        long sum = 0;
        foreach (var i in LookupOrder)
        {
            var (rc, _, value) = tx.Get(db, Key(i));
            if (rc == MDBResultCode.Success)
            {
                var v = value.AsSpan();
                sum += v[0] + v.Length;
            }
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = LookupCount), BenchmarkCategory("PointGet")]
    public long Get_Cairn()
    {
        using var tx = _cairn!.Db.BeginRead();
        var tree = tx.OpenTree(TreeName);
        long sum = 0;
        foreach (var i in LookupOrder)
        {
            if (tree.TryGet(Key(i), out var v)) sum += v[0] + v.Length;
        }
        return sum;
    }

    /// <summary>Plain <c>RocksDb.Get</c>: it returns a new byte[] per hit, which shows in the allocation column.</summary>
    [Benchmark(OperationsPerInvoke = LookupCount), BenchmarkCategory("PointGet")]
    public long Get_RocksDb()
    {
        var db = _rocks!.Db;
        long sum = 0;
        foreach (var i in LookupOrder)
        {
            var v = db.Get(Key(i));
            if (v is not null) sum += v[0] + v.Length;
        }
        return sum;
    }

    [Benchmark(Baseline = true), BenchmarkCategory("Scan")]
    public long Scan_Lmdb()
    {
        using var tx = _lmdb!.Env.BeginTransaction(TransactionBeginFlags.ReadOnly);
        using var cursor = tx.CreateCursor(_lmdb.Db);
        long sum = 0;
        var (rc, key, value) = cursor.First();
        while (rc == MDBResultCode.Success)
        {
            sum += key.AsSpan()[0] + value.AsSpan().Length;
            (rc, key, value) = cursor.Next();
        }
        return sum;
    }

    [Benchmark, BenchmarkCategory("Scan")]
    public long Scan_Cairn()
    {
        using var tx = _cairn!.Db.BeginRead();
        var tree = tx.OpenTree(TreeName);
        long sum = 0;
        foreach (var e in tree.All()) sum += e.Key[0] + e.Value.Length;
        return sum;
    }

    [Benchmark, BenchmarkCategory("Scan")]
    public long Scan_RocksDb()
    {
        using var it = _rocks!.Db.NewIterator();
        long sum = 0;
        for (it.SeekToFirst(); it.Valid(); it.Next()) sum += it.GetKeySpan()[0] + it.GetValueSpan().Length;
        return sum;
    }
}
