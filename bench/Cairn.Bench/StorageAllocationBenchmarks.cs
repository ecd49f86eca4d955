using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Cairn.Storage;
using static Cairn.Bench.StorageData;

namespace Cairn.Bench;

/// <summary>
/// Cairn's allocation budget on its hot paths, per operation: a point get, a scan step and a put must allocate nothing
/// (the Allocated column reads 0 B, or "-"). Per-invoke objects (the transaction) are spread over the invoke's operations.
/// <see cref="Put_OpenTransaction"/> overwrites keys inside one write transaction kept open across invokes (the put path
/// alone, once its pages are dirty); <see cref="PutCommit"/> is the whole cycle, begin + puts + durable commit.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[Config(typeof(StorageConfig))]
public class StorageAllocationBenchmarks
{
    private CairnFixture _cairn = null!;
    private WriteTransaction? _writer;
    private Tree _writeTree;
    private int _round;

    [GlobalSetup(Targets = [nameof(Get), nameof(ScanStep), nameof(PutCommit)])]
    public void Setup()
    {
        _cairn = new CairnFixture("alloc");
        _cairn.Preload();
    }

    [GlobalSetup(Target = nameof(Put_OpenTransaction))]
    public void SetupWriter()
    {
        Setup();
        _writer = _cairn.Db.BeginWrite();
        _writeTree = _writer.OpenTree(TreeName);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _writer?.Dispose();
        _cairn.Dispose();
    }

    [Benchmark(OperationsPerInvoke = LookupCount), BenchmarkCategory("CairnAllocation")]
    public long Get()
    {
        using var tx = _cairn.Db.BeginRead();
        var tree = tx.OpenTree(TreeName);
        long sum = 0;
        foreach (var i in LookupOrder)
        {
            if (tree.TryGet(Key(i), out var v)) sum += v.Length;
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = KeyCount), BenchmarkCategory("CairnAllocation")]
    public long ScanStep()
    {
        using var tx = _cairn.Db.BeginRead();
        var tree = tx.OpenTree(TreeName);
        long sum = 0;
        foreach (var e in tree.All()) sum += e.Key[0] + e.Value.Length;
        return sum;
    }

    [Benchmark(OperationsPerInvoke = BatchSize), BenchmarkCategory("CairnAllocation")]
    public void Put_OpenTransaction()
    {
        var odd = (_round++ & 1) != 0;
        for (var i = 0; i < BatchSize; i++) _writeTree.Put(Key(i), odd ? OtherValue(i) : Value(i));
    }

    [Benchmark(OperationsPerInvoke = BatchSize), BenchmarkCategory("CairnAllocation")]
    public void PutCommit()
    {
        var odd = (_round++ & 1) != 0;
        using var tx = _cairn.Db.BeginWrite();
        var tree = tx.OpenTree(TreeName);
        for (var i = 0; i < BatchSize; i++) tree.Put(Key(i), odd ? OtherValue(i) : Value(i));
        tx.Commit(durable: true);
    }
}
