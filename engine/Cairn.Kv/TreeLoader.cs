using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>
/// Fills a fresh database tree by tree, committing every <see cref="BatchRecords"/> records without a sync so one
/// transaction's dirty pages stay bounded; the caller syncs once at the end. Used by defragmentation and by building
/// a store from a snapshot.
/// </summary>
internal sealed class TreeLoader(Database db) : IDisposable
{
    public const int BatchRecords = 10_000;

    private WriteTransaction? _tx;
    private Tree _tree;
    private string? _name;
    private int _pending;

    /// <summary>Records written so far.</summary>
    public long Records { get; private set; }

    /// <summary>Starts (creating it empty) the tree the next records go to.</summary>
    public void BeginTree(string name)
    {
        _tx ??= db.BeginWrite();
        _name = name;
        _tree = _tx.CreateTree(name);
    }

    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        _tree.Put(key, value);
        Records++;
        if (++_pending < BatchRecords) return;
        _tx!.Commit(durable: false);
        _pending = 0;
        _tx = db.BeginWrite();
        _tree = _tx.CreateTree(_name!);
    }

    /// <summary>Commits what is pending (without a sync: call <see cref="Database.Sync"/> after).</summary>
    public void Finish()
    {
        _tx?.Commit(durable: false);
        _tx = null;
    }

    /// <summary>Rolls back what was not committed.</summary>
    public void Dispose()
    {
        _tx?.Dispose();
        _tx = null;
    }
}
