using System.Runtime.InteropServices;
using BenchmarkDotNet.Attributes;
using Cairn.Raft;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Bench;

/// <summary>
/// Entries committed per second through a three-member cluster of pure cores over an in-memory network (no disk):
/// each invoke proposes <see cref="Proposers"/> entries at once (as that many concurrent clients would) and delivers
/// messages until all are committed on the leader. One op = one committed entry.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(StorageConfig))]
public class RaftClusterBenchmarks
{
    [Params(1, 16, 256)]
    public int Proposers { get; set; }

    private RaftNode[] _nodes = [];
    private readonly Queue<Message> _network = new();
    private readonly byte[] _data = new byte[16];

    [GlobalSetup]
    public void Setup()
    {
        ulong[] ids = [1, 2, 3];
        _nodes = [.. ids.Select(id => new RaftNode(new RaftOptions { Id = id, Members = ids, ElectionTicks = 10, Seed = 1 }))];
        while (_nodes[0].Role != Role.Leader)
        {
            _nodes[0].Tick();
            Pump();
        }
    }

    private void Pump()
    {
        do
        {
            foreach (var n in _nodes)
            {
                while (n.GetReady() is { } r)
                {
                    // Queued past Advance without a copy: safe here because these logs are never compacted (see Ready).
                    foreach (var m in r.Messages) _network.Enqueue(m);
                    n.Advance(r);
                }
            }
            while (_network.TryDequeue(out var m)) _nodes[m.To - 1].Step(m);
        }
        while (_nodes.Any(n => n.GetReady() is { } r && Requeue(n, r)));
    }

    private bool Requeue(RaftNode n, Ready r)
    {
        foreach (var m in r.Messages) _network.Enqueue(m);
        n.Advance(r);
        return true;
    }

    [Benchmark(OperationsPerInvoke = 256)]
    public ulong Commit()
    {
        var leader = _nodes[0];
        var rounds = 256 / Proposers;
        for (var round = 0; round < rounds; round++)
        {
            for (var p = 0; p < Proposers; p++) leader.Propose(_data);
            Pump();
        }
        return leader.Commit;
    }
}

/// <summary>
/// The write-ahead log's group commit against the raw fsync rate of this disk: one `Save` of 1, 16 or 256 entries
/// (100 bytes each) is one write and one fdatasync. The baseline is a bare 128-byte write + fdatasync. One op = one
/// Save (divide by the batch for entries).
/// </summary>
[MemoryDiagnoser]
[Config(typeof(StorageConfig))]
public partial class WalBenchmarks
{
    [Params(1, 16, 256)]
    public int Batch { get; set; }

    private string _dir = "";
    private Wal? _wal;
    private ulong _index;
    private LogEntry[] _entries = [];
    private SafeFileHandle? _raw;
    private long _rawOffset;
    private readonly byte[] _rawBuffer = new byte[128];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Directory.CreateTempSubdirectory("cairn-bench-wal-").FullName;
        _wal = Wal.Open(_dir, new WalOptions { SegmentBytes = 256L << 20 });
        _entries = new LogEntry[Batch];
        _raw = File.OpenHandle(Path.Combine(_dir, "raw"), FileMode.Create, FileAccess.ReadWrite, FileShare.None, FileOptions.None, 64L << 20);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _wal?.Dispose();
        _raw?.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(Baseline = true)]
    public void RawWriteAndFdatasync()
    {
        RandomAccess.Write(_raw!, _rawBuffer, _rawOffset);
        _rawOffset = (_rawOffset + 128) % (64L << 20);
        _ = FDataSync((int)_raw!.DangerousGetHandle());
    }

    [Benchmark]
    public void Save()
    {
        for (var i = 0; i < Batch; i++) _entries[i] = new LogEntry(++_index, 1, new byte[100]);
        _wal!.Save(new HardState(1, 1, _index), _entries);
    }

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FDataSync(int fd);
}
