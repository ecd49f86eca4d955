using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>A key's current state, as spans valid until its <see cref="KvReadView"/> is disposed.</summary>
public readonly ref struct KvEntry
{
    internal KvEntry(ReadOnlySpan<byte> key, IndexEntry index, ReadOnlySpan<byte> value)
    {
        Key = key;
        Value = value;
        CreateRevision = index.Create;
        ModRevision = index.Mod;
        Version = index.Version;
        Lease = index.Lease;
    }

    /// <summary>The key.</summary>
    public ReadOnlySpan<byte> Key { get; }

    /// <summary>The value.</summary>
    public ReadOnlySpan<byte> Value { get; }

    /// <summary>Revision that created this incarnation of the key.</summary>
    public long CreateRevision { get; }

    /// <summary>Revision of the last change.</summary>
    public long ModRevision { get; }

    /// <summary>Puts since creation.</summary>
    public long Version { get; }

    /// <summary>Attached lease (0: none).</summary>
    public long Lease { get; }
}

/// <summary>
/// One consistent snapshot of the key space for many reads without allocation: point lookups return spans into the
/// store's pages. Lookups keep no state in the view, so many threads may read one view at once (the member's sessions
/// share the latest through <see cref="KvStateMachine.AcquireLatest"/>); dispose it once, after its last reader.
/// </summary>
public sealed class KvReadView : IDisposable
{
    private readonly KvStateMachine _machine;
    private readonly ReadTransaction _tx;
    private readonly Tree _index;
    private readonly Tree _history;
    private readonly bool _empty;
    private bool _disposed;

    internal KvReadView(KvStateMachine machine, KvOptions options)
    {
        _machine = machine;
        var db = machine.EnterRead();
        try
        {
            _tx = db.BeginRead();
            var m = new Mvcc(_tx, options);
            Revision = m.Revision;
            _empty = !_tx.TryOpenTree(Mvcc.IndexTree, out _index) | !_tx.TryOpenTree(Mvcc.HistoryTree, out _history);
        }
        catch
        {
            _tx?.Dispose();
            machine.ExitRead();
            throw;
        }
    }

    /// <summary>The revision this view reads.</summary>
    public long Revision { get; }

    /// <summary>Looks up <paramref name="key"/> (its index entry, then its value in the history); allocates nothing.</summary>
    public bool TryGet(ReadOnlySpan<byte> key, out KvEntry entry)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!_empty && _index.TryGet(key, out var stored) && new IndexEntry(stored) is { Deleted: false } e)
        {
            Span<byte> historyKey = stackalloc byte[KvEncoding.HistoryKeyBytes];
            KvEncoding.WriteHistoryKey(historyKey, e.Mod, e.Sub);
            if (!_history.TryGet(historyKey, out var record)) throw new InvalidDataException($"the history record of key {Convert.ToHexString(key)} at revision {e.Mod}.{e.Sub} is missing");
            entry = new KvEntry(key, e, new HistoryRecord(record).Value);
            return true;
        }
        entry = default;
        return false;
    }

    /// <summary>Ends the view.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _tx.Dispose();
        _machine.ExitRead();
    }
}
