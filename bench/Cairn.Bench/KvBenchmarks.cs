using System.Buffers.Binary;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Engines;
using Cairn.Kv;
using Cairn.Storage;

namespace Cairn.Bench;

/// <summary>Shared set-up of the embedded key-value store benchmarks (issue 4): a store in a temporary directory.</summary>
internal sealed class KvFixture : IDisposable
{
    public const int Keys = 100_000;

    public KvFixture(bool sync = true)
    {
        Directory = System.IO.Directory.CreateTempSubdirectory("cairn-bench-kv-").FullName;
        Store = KvStore.Open(Directory, new KvOptions { QuotaBytes = 0, Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = sync } });
    }

    public string Directory { get; }

    public KvStore Store { get; }

    public static byte[] Key(int i)
    {
        var k = new byte[16];
        BinaryPrimitives.WriteUInt64BigEndian(k, (ulong)i * 0x9E3779B97F4A7C15UL);
        BinaryPrimitives.WriteUInt64BigEndian(k.AsSpan(8), (ulong)i);
        return k;
    }

    /// <summary>Loads <see cref="Keys"/> keys with 100-byte values, 1,000 puts per applied batch.</summary>
    public void Load()
    {
        var value = new byte[100];
        var m = Store.Machine;
        for (var start = 0; start < Keys; start += 1_000)
        {
            var batch = new List<(ulong, byte[])>();
            for (var i = start; i < start + 1_000; i++) batch.Add((m.AppliedIndex + 1 + (ulong)(i - start), new KvCommand { Put = new PutRequest { Key = Key(i), Value = value } }.Encode()));
            m.ApplyBatch(batch, durable: start + 1_000 >= Keys);
        }
    }

    public void Dispose()
    {
        Store.Dispose();
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}

/// <summary>Reads from the embedded store: point gets (one thread and all cores) and 100-key ranges.</summary>
[MemoryDiagnoser]
[Config(typeof(StorageConfig))]
public class KvReadBenchmarks
{
    private KvFixture? _kv;
    private byte[][] _keys = [];

    [GlobalSetup]
    public void Setup()
    {
        _kv = new KvFixture();
        _kv.Load();
        var rng = new Random(1);
        _keys = [.. Enumerable.Range(0, 10_000).Select(_ => KvFixture.Key(rng.Next(KvFixture.Keys)))];
    }

    [GlobalCleanup]
    public void Cleanup() => _kv?.Dispose();

    [Benchmark(Baseline = true, OperationsPerInvoke = 10_000)]
    public long Get()
    {
        long sum = 0;
        foreach (var k in _keys) sum += _kv!.Store.Get(k)!.Value.Length;
        return sum;
    }

    /// <summary>Point gets through a read view: spans into the store, no allocation per get.</summary>
    [Benchmark(OperationsPerInvoke = 10_000)]
    public long Get_ReadView()
    {
        long sum = 0;
        using var view = _kv!.Store.BeginRead();
        foreach (var k in _keys)
        {
            if (view.TryGet(k, out var e)) sum += e.Value.Length;
        }
        return sum;
    }

    [Benchmark(OperationsPerInvoke = 10_000)]
    public long Get_AllCores()
    {
        long sum = 0;
        Parallel.For(0, Environment.ProcessorCount, t =>
        {
            long mine = 0;
            for (var i = t; i < _keys.Length; i += Environment.ProcessorCount) mine += _kv!.Store.Get(_keys[i])!.Value.Length;
            Interlocked.Add(ref sum, mine);
        });
        return sum;
    }

    [Benchmark(OperationsPerInvoke = 100)]
    public long Range100()
    {
        long n = 0;
        for (var i = 0; i < 100; i++)
        {
            n += _kv!.Store.Range(new RangeRequest { Key = _keys[i], RangeEnd = [0], Limit = 100 }).Kvs.Count;
        }
        return n;
    }
}

/// <summary>Writes: durable puts from one thread and from 16 concurrent writers (group commit), and not-synced puts.</summary>
[MemoryDiagnoser]
[Config(typeof(StorageConfig))]
public class KvWriteBenchmarks
{
    private KvFixture? _durable;
    private KvFixture? _unsynced;
    private int _next;
    private readonly byte[] _value = new byte[100];

    [GlobalSetup]
    public void Setup()
    {
        _durable = new KvFixture(sync: true);
        _unsynced = new KvFixture(sync: false);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _durable?.Dispose();
        _unsynced?.Dispose();
    }

    [Benchmark(Baseline = true, OperationsPerInvoke = 100)]
    public void Put_Durable_OneWriter()
    {
        for (var i = 0; i < 100; i++) _durable!.Store.Put(KvFixture.Key(_next++), _value);
    }

    [Benchmark(OperationsPerInvoke = 16 * 25)]
    public void Put_Durable_16Writers()
    {
        var basis = Interlocked.Add(ref _next, 16 * 25) - 16 * 25;
        // Sixteen real threads (the pool would start only a couple on two cores): their puts share syncs.
        var threads = Enumerable.Range(0, 16).Select(w => new Thread(() =>
        {
            for (var i = 0; i < 25; i++) _durable!.Store.Put(KvFixture.Key(basis + w * 25 + i), _value);
        })).ToList();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) t.Join();
    }

    [Benchmark(OperationsPerInvoke = 1_000)]
    public void Put_NotSynced_OneWriter()
    {
        for (var i = 0; i < 1_000; i++) _unsynced!.Store.Put(KvFixture.Key(_next++), _value);
    }
}

/// <summary>
/// Watch fan-out: one writer puts 1,000 keys (not synced) while 1,000 watchers on the prefix receive every event.
/// The baseline is the same writer with no watcher, so the ratio is the writer's slowdown; events delivered per second
/// = 1,000 × 1,000 ÷ the mean.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(StorageConfig))]
[SimpleJob(RunStrategy.Monitoring, iterationCount: 5, warmupCount: 1)]
public class KvWatchBenchmarks
{
    [Params(0, 1_000)]
    public int Watchers { get; set; }

    private KvFixture? _kv;
    private readonly byte[] _value = new byte[100];
    private List<Task<long>> _readers = [];
    private CancellationTokenSource? _stop;
    private int _round;

    [IterationSetup]
    public void Setup()
    {
        _kv = new KvFixture(sync: false);
        _stop = new CancellationTokenSource();
        var prefix = "w/"u8.ToArray();
        _readers = [.. Enumerable.Range(0, Watchers).Select(_ =>
        {
            var watcher = _kv.Store.Machine.Watch(new WatchRequest { Key = prefix, RangeEnd = RangeRequest.Prefix(prefix) });
            return Task.Run(async () =>
            {
                long n = 0;
                try
                {
                    await foreach (var r in watcher.ReadAllAsync(_stop.Token))
                    {
                        n += r.Events.Count;
                        if (n >= 1_000) break;
                    }
                }
                catch (OperationCanceledException)
                {
                }
                return n;
            });
        })];
        _round++;
    }

    [Benchmark(OperationsPerInvoke = 1_000)]
    public long PutWithWatchers()
    {
        for (var i = 0; i < 1_000; i++) _kv!.Store.Put(System.Text.Encoding.ASCII.GetBytes($"w/{i:D4}"), _value);
        // Every watcher has every event before the clock stops.
        Task.WaitAll([.. _readers]);
        long delivered = 0;
        foreach (var t in _readers) delivered += t.Result;
        if (delivered != 1_000L * Watchers) throw new InvalidOperationException($"delivered {delivered} events, expected {1_000L * Watchers}");
        return delivered;
    }

    [IterationCleanup]
    public void Cleanup()
    {
        _stop?.Cancel();
        _kv?.Dispose();
    }
}

/// <summary>Compaction of 1,000,000 revisions (1,000 keys each put 1,000 times) in one command.</summary>
[MemoryDiagnoser]
[SimpleJob(RunStrategy.ColdStart, iterationCount: 3, launchCount: 1)]
public class KvCompactBenchmarks
{
    private KvFixture? _kv;

    [IterationSetup]
    public void Setup()
    {
        _kv = new KvFixture(sync: false);
        var m = _kv.Store.Machine;
        var value = new byte[32];
        for (var round = 0; round < 1_000; round++)
        {
            var batch = new List<(ulong, byte[])>(1_000);
            var basis = m.AppliedIndex + 1;
            for (var k = 0; k < 1_000; k++) batch.Add((basis + (ulong)k, new KvCommand { Put = new PutRequest { Key = KvFixture.Key(k), Value = value } }.Encode()));
            m.ApplyBatch(batch, durable: false);
        }
    }

    [Benchmark]
    public long Compact_1M_Revisions() => _kv!.Store.Compact(_kv.Store.Revision).Removed;

    [IterationCleanup]
    public void Cleanup() => _kv?.Dispose();
}
