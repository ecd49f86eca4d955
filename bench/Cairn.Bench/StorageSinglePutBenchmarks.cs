using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using LightningDB;
using static Cairn.Bench.StorageData;

namespace Cairn.Bench;

/// <summary>
/// Durable single-put transactions against the loaded data set: each put is its own transaction (RocksDB: a Put with
/// sync=true), inserting a key that is not in the data set (<see cref="StorageData.ExtraKey"/>, round-robin over
/// 100,000, so a long run ends up overwriting). The mean is per commit; every one waits for the disk.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[Config(typeof(StorageConfig))]
public class StorageSinglePutBenchmarks
{
    private const int Commits = 100;

    private CairnFixture? _cairn;
    private LmdbFixture? _lmdb;
    private RocksFixture? _rocks;
    private long _next;

    [GlobalSetup(Target = nameof(SinglePut_Cairn))]
    public void SetupCairn()
    {
        _cairn = new CairnFixture("put");
        _cairn.Preload();
    }

    [GlobalSetup(Target = nameof(SinglePut_Lmdb))]
    public void SetupLmdb()
    {
        _lmdb = new LmdbFixture("put", noSync: false);
        _lmdb.Preload();
    }

    [GlobalSetup(Target = nameof(SinglePut_RocksDb))]
    public void SetupRocksDb()
    {
        _rocks = new RocksFixture("put");
        _rocks.Preload();
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cairn?.Dispose();
        _lmdb?.Dispose();
        _rocks?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Commits), BenchmarkCategory("SinglePutDurable")]
    public void SinglePut_Lmdb()
    {
        var env = _lmdb!.Env;
        var db = _lmdb.Db;
        for (var n = 0; n < Commits; n++)
        {
            var i = ExtraKey(_next++);
            using var tx = env.BeginTransaction();
            tx.Put(db, Key(i), Value(i)).ThrowOnError();
            tx.Commit().ThrowOnError();
        }
    }

    [Benchmark(OperationsPerInvoke = Commits), BenchmarkCategory("SinglePutDurable")]
    public void SinglePut_Cairn()
    {
        var db = _cairn!.Db;
        for (var n = 0; n < Commits; n++)
        {
            var i = ExtraKey(_next++);
            using var tx = db.BeginWrite();
            tx.OpenTree(TreeName).Put(Key(i), Value(i));
            tx.Commit(durable: true);
        }
    }

    [Benchmark(OperationsPerInvoke = Commits), BenchmarkCategory("SinglePutDurable")]
    public void SinglePut_RocksDb()
    {
        var db = _rocks!.Db;
        var synced = _rocks.Synced;
        for (var n = 0; n < Commits; n++)
        {
            var i = ExtraKey(_next++);
            db.Put(Key(i), Value(i), writeOptions: synced);
        }
    }
}
