namespace Cairn.Storage;

/// <summary>
/// A position in a tree: a stack of (page, index) from the root to a leaf entry. Moves both ways. In a write
/// transaction a change to any tree makes the cursor stale: position it again (Seek, First, Last) before use.
/// </summary>
public sealed unsafe class Cursor : IDisposable
{
    private readonly ulong[] _pg = new ulong[Transaction.MaxDepth];
    private readonly int[] _ix = new int[Transaction.MaxDepth];
    private Transaction _tx = null!;
    private TreeState _tree = null!;
    private int _leaf = -1;          // level of the leaf in the stack; -1 = not positioned
    private byte* _leafPage;         // the leaf at _pg[_leaf]: a mapped page, a page-cache buffer or a dirty page, all
                                     // pinned and unchanged while the cursor is valid (a change bumps the version)
    private int _leafCount;
    private int _version;

    internal Cursor() { }

    internal void Attach(Transaction tx, TreeState tree)
    {
        _tx = tx;
        _tree = tree;
        _leaf = -1;
    }

    /// <summary>True when the cursor is on an entry.</summary>
    public bool IsValid => _leaf >= 0 && _version == _tx.Version;

    /// <summary>The key under the cursor.</summary>
    public ReadOnlySpan<byte> Key
    {
        get
        {
            CheckValid();
            return Node.LeafKey(Leaf, _ix[_leaf]);
        }
    }

    /// <summary>The value under the cursor.</summary>
    public ReadOnlySpan<byte> Value
    {
        get
        {
            CheckValid();
            return _tx.LeafValue(Leaf, _ix[_leaf]);
        }
    }

    private ReadOnlySpan<byte> Leaf => new(_leafPage, _tx.PageSize);

    private void SetLeaf(int level, ReadOnlySpan<byte> page)
    {
        _leaf = level;
        _leafPage = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref System.Runtime.InteropServices.MemoryMarshal.GetReference(page));
        _leafCount = Node.Count(page);
    }

    /// <summary>Moves to the first entry; false when the tree is empty.</summary>
    public bool First() => Edge(last: false);

    /// <summary>Moves to the last entry; false when the tree is empty.</summary>
    public bool Last() => Edge(last: true);

    /// <summary>Moves to the first entry with key ≥ <paramref name="key"/>; false when there is none.</summary>
    public bool Seek(ReadOnlySpan<byte> key)
    {
        _tx.ThrowIfFinished();
        _version = _tx.Version;
        _leaf = -1;
        var pg = _tree.Root.Root;
        if (pg == 0) return false;
        for (var level = 0; level < Transaction.MaxDepth; level++)
        {
            var p = _tx.GetNode(pg);
            _pg[level] = pg;
            if (Node.Kind(p) == PageKind.Branch)
            {
                var i = Node.BranchSearch(p, key);
                _ix[level] = i;
                pg = Node.BranchChild(p, i);
                continue;
            }
            var j = Node.LeafSearch(p, key, out _);
            SetLeaf(level, p);
            if (j < Node.Count(p))
            {
                _ix[level] = j;
                return true;
            }
            _ix[level] = Node.Count(p) - 1;
            return Next();
        }
        throw new CorruptDatabaseException((long)pg, $"tree '{_tree.Name}' is deeper than {Transaction.MaxDepth} levels (a cycle?)");
    }

    /// <summary>Moves to the next entry; false (and no longer valid) past the last.</summary>
    public bool Next()
    {
        CheckValid();
        if (_ix[_leaf] + 1 < _leafCount)
        {
            _ix[_leaf]++;
            return true;
        }
        for (var level = _leaf - 1; level >= 0; level--)
        {
            var b = _tx.GetNode(_pg[level]);
            if (_ix[level] + 1 < Node.Count(b))
            {
                _ix[level]++;
                return Descend(level, Node.BranchChild(b, _ix[level]), last: false);
            }
        }
        _leaf = -1;
        return false;
    }

    /// <summary>Moves to the previous entry; false (and no longer valid) before the first.</summary>
    public bool Prev()
    {
        CheckValid();
        if (_ix[_leaf] > 0)
        {
            _ix[_leaf]--;
            return true;
        }
        for (var level = _leaf - 1; level >= 0; level--)
        {
            if (_ix[level] > 0)
            {
                _ix[level]--;
                return Descend(level, Node.BranchChild(_tx.GetNode(_pg[level]), _ix[level]), last: true);
            }
        }
        _leaf = -1;
        return false;
    }

    private bool Edge(bool last)
    {
        _tx.ThrowIfFinished();
        _version = _tx.Version;
        _leaf = -1;
        var pg = _tree.Root.Root;
        return pg != 0 && Descend(-1, pg, last);
    }

    /// <summary>Walks from <paramref name="pg"/> (the child at <paramref name="parentLevel"/> + 1) down its leftmost or rightmost edge.</summary>
    private bool Descend(int parentLevel, ulong pg, bool last)
    {
        for (var level = parentLevel + 1; level < Transaction.MaxDepth; level++)
        {
            var p = _tx.GetNode(pg);
            _pg[level] = pg;
            var count = Node.Count(p);
            if (Node.Kind(p) == PageKind.Branch)
            {
                _ix[level] = last ? count - 1 : 0;
                pg = Node.BranchChild(p, _ix[level]);
                continue;
            }
            if (count == 0)
            {
                // Only an empty root leaf can hold nothing, and an empty tree has no root.
                throw new CorruptDatabaseException((long)pg, $"empty leaf inside tree '{_tree.Name}'");
            }
            _ix[level] = last ? count - 1 : 0;
            SetLeaf(level, p);
            return true;
        }
        throw new CorruptDatabaseException((long)pg, $"tree '{_tree.Name}' is deeper than {Transaction.MaxDepth} levels (a cycle?)");
    }

    private void CheckValid()
    {
        _tx.ThrowIfFinished();
        if (_leaf < 0) throw new InvalidOperationException("The cursor is not on an entry; call First, Last or Seek and check the result.");
        if (_version != _tx.Version) throw new InvalidOperationException("The transaction changed a tree since this cursor was positioned; call Seek, First or Last again.");
    }

    /// <summary>Releases the cursor. Cursors hold no pages; this only detaches it.</summary>
    public void Dispose() => _leaf = -1;
}
