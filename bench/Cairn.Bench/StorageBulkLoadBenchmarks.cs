using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using static Cairn.Bench.StorageData;

namespace Cairn.Bench;

/// <summary>
/// Bulk load of the whole data set into a fresh, empty database, in transactions (RocksDB: WriteBatches) of
/// <see cref="StorageData.BatchSize"/> puts, each commit synced or not. Every iteration gets a new database
/// (iteration setup, not measured), so each invoke is one complete load; the mean is per put.
/// Not synced means: Cairn <c>Commit(durable: false)</c>, LMDB opened with MDB_NOSYNC, RocksDB <c>sync=false</c>.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[Config(typeof(StorageConfig))]
public class StorageBulkLoadBenchmarks
{
    private const int Puts = KeyCount;

    private CairnFixture? _cairn;
    private LmdbFixture? _lmdb;
    private RocksFixture? _rocks;

    [IterationSetup(Targets = [nameof(Synced_Cairn), nameof(NotSynced_Cairn)])]
    public void NewCairn() => _cairn = new CairnFixture("bulk");

    [IterationSetup(Target = nameof(Synced_Lmdb))]
    public void NewLmdbSynced() => _lmdb = new LmdbFixture("bulk", noSync: false);

    [IterationSetup(Target = nameof(NotSynced_Lmdb))]
    public void NewLmdbNotSynced() => _lmdb = new LmdbFixture("bulk", noSync: true);

    [IterationSetup(Targets = [nameof(Synced_RocksDb), nameof(NotSynced_RocksDb)])]
    public void NewRocksDb() => _rocks = new RocksFixture("bulk");

    /// <summary>Closes and deletes the iteration's database (Cairn and LMDB sync what is pending as they close).</summary>
    [IterationCleanup]
    public void DropDatabase()
    {
        _cairn?.Dispose();
        _lmdb?.Dispose();
        _rocks?.Dispose();
        _cairn = null;
        _lmdb = null;
        _rocks = null;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = Puts), BenchmarkCategory("BulkLoadSynced")]
    public void Synced_Lmdb() => _lmdb!.Load(0, Puts, durable: true);

    [Benchmark(OperationsPerInvoke = Puts), BenchmarkCategory("BulkLoadSynced")]
    public void Synced_Cairn() => _cairn!.Load(0, Puts, durable: true);

    [Benchmark(OperationsPerInvoke = Puts), BenchmarkCategory("BulkLoadSynced")]
    public void Synced_RocksDb() => _rocks!.Load(0, Puts, durable: true);

    [Benchmark(Baseline = true, OperationsPerInvoke = Puts), BenchmarkCategory("BulkLoadNotSynced")]
    public void NotSynced_Lmdb() => _lmdb!.Load(0, Puts, durable: false);

    [Benchmark(OperationsPerInvoke = Puts), BenchmarkCategory("BulkLoadNotSynced")]
    public void NotSynced_Cairn() => _cairn!.Load(0, Puts, durable: false);

    [Benchmark(OperationsPerInvoke = Puts), BenchmarkCategory("BulkLoadNotSynced")]
    public void NotSynced_RocksDb() => _rocks!.Load(0, Puts, durable: false);
}
