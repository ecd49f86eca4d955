namespace Cairn.Kv;

/// <summary>
/// The key-value store embedded in a process, without Raft: each write is a command applied at the next index of a
/// local log, durable when the call returns. Safe to use from many threads; reads never wait for writes.
/// </summary>
public sealed class KvStore : IDisposable
{
    private readonly KvStateMachine _machine;
    private readonly Lock _write = new();
    private ulong _next;

    private KvStore(KvStateMachine machine)
    {
        _machine = machine;
        _next = machine.AppliedIndex + 1;
    }

    /// <summary>Opens (or creates) the store in <paramref name="directory"/> (file <c>kv.cairn</c>).</summary>
    public static KvStore Open(string directory, KvOptions? options = null)
    {
        Directory.CreateDirectory(directory);
        return new KvStore(KvStateMachine.Open(Path.Combine(directory, "kv.cairn"), options));
    }

    /// <summary>The state machine underneath.</summary>
    public KvStateMachine Machine => _machine;

    /// <summary>The current revision.</summary>
    public long Revision => _machine.Revision;

    /// <summary>Puts a key.</summary>
    public PutResponse Put(PutRequest request) => (PutResponse)Write(new KvCommand { Put = request });

    /// <summary>Puts <paramref name="value"/> under <paramref name="key"/>.</summary>
    public PutResponse Put(byte[] key, byte[] value) => Put(new PutRequest { Key = key, Value = value });

    /// <summary>Deletes a key or a range.</summary>
    public DeleteRangeResponse Delete(DeleteRangeRequest request) => (DeleteRangeResponse)Write(new KvCommand { Delete = request });

    /// <summary>Runs a transaction.</summary>
    public TxnResponse Txn(TxnRequest request) => (TxnResponse)Write(new KvCommand { Txn = request });

    /// <summary>Compacts history below <paramref name="revision"/>.</summary>
    public CompactResponse Compact(long revision) => (CompactResponse)Write(new KvCommand { CompactRevision = revision });

    /// <summary>Reads a key or a range.</summary>
    public RangeResponse Range(RangeRequest request) => _machine.Range(request);

    /// <summary>The current key-value under <paramref name="key"/>, or null.</summary>
    public KeyValue? Get(byte[] key)
    {
        var r = _machine.Range(new RangeRequest { Key = key });
        return r.Kvs.Count > 0 ? r.Kvs[0] : null;
    }

    /// <summary>A hash of the key space as of <paramref name="revision"/> (0: current).</summary>
    public (ulong Hash, long Revision, long CompactRevision) Hash(long revision = 0) => _machine.Hash(revision);

    private object Write(KvCommand command)
    {
        var bytes = command.Encode();
        lock (_write)
        {
            var result = _machine.Apply(_next, bytes);
            _next++;
            if (result.Error is not null) throw result.Error;
            return result.Response!;
        }
    }

    /// <summary>Closes the store.</summary>
    public void Dispose() => _machine.Dispose();
}
