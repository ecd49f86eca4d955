using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Cairn.Crypto;
using Cairn.Storage;
using static Cairn.Bench.StorageData;

namespace Cairn.Bench;

/// <summary>
/// The storage read suite with encryption on, beside unencrypted Cairn as the baseline (same data set as
/// <see cref="StorageReadBenchmarks"/>): random point gets and a full scan with a page cache that holds everything
/// (after warm-up every page is decrypted once), and with a page cache a tenth of the data (misses decrypt).
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[Config(typeof(StorageConfig))]
public class EncryptedStorageBenchmarks
{
    private string? _dir;
    private Database? _plain;
    private Database? _encrypted;
    private Database? _tenth;

    private Database Load(string name, StorageOptions options)
    {
        _dir ??= Directory.CreateTempSubdirectory("cairn-bench-encrypted-").FullName;
        var db = Database.Open(Path.Combine(_dir, name), options);
        for (var start = 0; start < KeyCount; start += BatchSize)
        {
            using var tx = db.BeginWrite();
            var tree = tx.CreateTree(TreeName);
            for (var i = start; i < start + BatchSize; i++) tree.Put(Key(i), Value(i));
            tx.Commit(durable: start + BatchSize >= KeyCount);
        }
        return db;
    }

    private static StorageOptions Encrypted(long cacheBytes) => new()
    {
        MasterKey = new StaticKeyProvider(Enumerable.Range(1, 32).Select(i => (byte)i).ToArray(), "bench key"),
        PageCacheBytes = cacheBytes,
    };

    [GlobalSetup(Targets = [nameof(Get_Plain), nameof(Scan_Plain)])]
    public void SetupPlain()
    {
        _plain = Load("plain", new StorageOptions());
        Check(nameof(Get_Plain), Get(_plain), ExpectedLookupSum());
    }

    [GlobalSetup(Targets = [nameof(Get_Encrypted), nameof(Scan_Encrypted)])]
    public void SetupEncrypted()
    {
        _encrypted = Load("encrypted", Encrypted(1L << 30));
        Check(nameof(Get_Encrypted), Scan(_encrypted), ExpectedScanSum(KeyCount)); // warms the cache with every page
    }

    [GlobalSetup(Targets = [nameof(Get_EncryptedTenthCache), nameof(Scan_EncryptedTenthCache)])]
    public void SetupTenth()
    {
        _tenth = Load("tenth", Encrypted(1L << 30));
        _tenth.PageCacheBudget = _tenth.GetStats().PageCount * _tenth.PageSize / 10;
        Check(nameof(Get_EncryptedTenthCache), Get(_tenth), ExpectedLookupSum());
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _plain?.Dispose();
        _encrypted?.Dispose();
        _tenth?.Dispose();
        if (_dir is not null) Directory.Delete(_dir, recursive: true);
    }

    private static long Get(Database db)
    {
        using var tx = db.BeginRead();
        var tree = tx.OpenTree(TreeName);
        long sum = 0;
        foreach (var i in LookupOrder)
        {
            if (tree.TryGet(Key(i), out var v)) sum += v[0] + v.Length;
        }
        return sum;
    }

    private static long Scan(Database db)
    {
        using var tx = db.BeginRead();
        long sum = 0;
        foreach (var e in tx.OpenTree(TreeName).All()) sum += e.Key[0] + e.Value.Length;
        return sum;
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = LookupCount), BenchmarkCategory("EncryptedGet")]
    public long Get_Plain() => Get(_plain!);

    [Benchmark(OperationsPerInvoke = LookupCount), BenchmarkCategory("EncryptedGet")]
    public long Get_Encrypted() => Get(_encrypted!);

    [Benchmark(OperationsPerInvoke = LookupCount), BenchmarkCategory("EncryptedGet")]
    public long Get_EncryptedTenthCache() => Get(_tenth!);

    [Benchmark(Baseline = true), BenchmarkCategory("EncryptedScan")]
    public long Scan_Plain() => Scan(_plain!);

    [Benchmark, BenchmarkCategory("EncryptedScan")]
    public long Scan_Encrypted() => Scan(_encrypted!);

    [Benchmark, BenchmarkCategory("EncryptedScan")]
    public long Scan_EncryptedTenthCache() => Scan(_tenth!);
}
