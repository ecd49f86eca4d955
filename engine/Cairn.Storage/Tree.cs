namespace Cairn.Storage;

/// <summary>
/// A handle on one named B+tree inside a transaction: keys and values are byte strings ordered bytewise.
/// Valid until the transaction ends. Spans it returns point into the database's pages: valid until the transaction
/// ends, and in a write transaction only until the next change to the tree.
/// </summary>
public readonly struct Tree
{
    private readonly Transaction _tx;
    internal readonly TreeState State;

    internal Tree(Transaction tx, TreeState state)
    {
        _tx = tx;
        State = state;
    }

    /// <summary>The tree's name.</summary>
    public string Name => State.Name;

    /// <summary>Number of keys.</summary>
    public long Count => (long)State.Root.Entries;

    /// <summary>Levels from root to leaf (0 when empty).</summary>
    public int Depth => State.Root.Depth;

    /// <summary>Finds <paramref name="key"/>; the value span is valid as described on <see cref="Tree"/>.</summary>
    public bool TryGet(scoped ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value)
    {
        _tx.ThrowIfFinished();
        var pg = State.Root.Root;
        if (pg != 0)
        {
            for (var level = 0; level < Transaction.MaxDepth; level++)
            {
                var p = _tx.GetNode(pg);
                if (Node.Kind(p) == PageKind.Branch)
                {
                    pg = Node.BranchChild(p, Node.BranchSearch(p, key));
                    continue;
                }
                var i = Node.LeafSearch(p, key, out var exact);
                if (exact)
                {
                    value = _tx.LeafValue(p, i);
                    return true;
                }
                break;
            }
        }
        value = default;
        return false;
    }

    /// <summary>True when <paramref name="key"/> is present.</summary>
    public bool ContainsKey(ReadOnlySpan<byte> key) => TryGet(key, out _);

    /// <summary>Inserts or replaces <paramref name="key"/>. Only in a write transaction.</summary>
    /// <exception cref="ArgumentException">The key is empty or longer than <see cref="Database.MaxKeySize"/>, or the value is longer than <see cref="Database.MaxValueSize"/>.</exception>
    public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value) => Writer.Put(State, key, value);

    /// <summary>Removes <paramref name="key"/>; false when it was not there. Only in a write transaction.</summary>
    public bool Delete(ReadOnlySpan<byte> key) => Writer.Delete(State, key);

    private WriteTransaction Writer => _tx as WriteTransaction
        ?? throw new InvalidOperationException("This tree was opened in a read transaction; change it inside BeginWrite().");

    /// <summary>A cursor over this tree; dispose it (or let the transaction end).</summary>
    public Cursor CreateCursor()
    {
        _tx.ThrowIfFinished();
        var c = new Cursor();
        c.Attach(_tx, State);
        return c;
    }

    /// <summary>Entries with <paramref name="start"/> ≤ key &lt; <paramref name="end"/>, in order; an empty end means no upper bound.</summary>
    public RangeEnumerator Range(ReadOnlySpan<byte> start, ReadOnlySpan<byte> end) => new(_tx, State, start, end, prefix: false);

    /// <summary>Entries whose key starts with <paramref name="prefix"/>, in order.</summary>
    public RangeEnumerator Prefix(ReadOnlySpan<byte> prefix) => new(_tx, State, prefix, prefix, prefix: true);

    /// <summary>Every entry, in order.</summary>
    public RangeEnumerator All() => new(_tx, State, default, default, prefix: false);
}

/// <summary>One entry seen by an enumerator: key and value spans valid as described on <see cref="Tree"/>.</summary>
public readonly ref struct TreeEntry(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
{
    /// <summary>The key.</summary>
    public ReadOnlySpan<byte> Key { get; } = key;

    /// <summary>The value.</summary>
    public ReadOnlySpan<byte> Value { get; } = value;
}

/// <summary>A forward scan over a key range, for <c>foreach</c>; allocates nothing once the transaction is warm.</summary>
public ref struct RangeEnumerator
{
    private readonly Transaction _tx;
    private readonly TreeState _tree;
    private readonly ReadOnlySpan<byte> _start;
    private readonly ReadOnlySpan<byte> _end;
    private readonly bool _prefix;
    private Cursor? _cursor;
    private bool _started;

    internal RangeEnumerator(Transaction tx, TreeState tree, ReadOnlySpan<byte> start, ReadOnlySpan<byte> end, bool prefix)
    {
        tx.ThrowIfFinished();
        _tx = tx;
        _tree = tree;
        _start = start;
        _end = end;
        _prefix = prefix;
    }

    /// <summary>Returns this enumerator (foreach pattern).</summary>
    public readonly RangeEnumerator GetEnumerator() => this;

    /// <summary>The entry under the enumerator.</summary>
    public readonly TreeEntry Current => new(_cursor!.Key, _cursor.Value);

    /// <summary>Steps to the next entry in range.</summary>
    public bool MoveNext()
    {
        bool ok;
        if (!_started)
        {
            _started = true;
            _cursor = _tx.RentCursor(_tree);
            ok = _start.IsEmpty ? _cursor.First() : _cursor.Seek(_start);
        }
        else
        {
            ok = _cursor!.Next();
        }
        if (!ok) return false;
        if (_prefix) return _cursor.Key.StartsWith(_end);
        return _end.IsEmpty || _cursor.Key.SequenceCompareTo(_end) < 0;
    }

    /// <summary>Gives the cursor back to the transaction.</summary>
    public void Dispose()
    {
        if (_cursor is null) return;
        _tx.ReturnCursor(_cursor);
        _cursor = null;
    }
}
