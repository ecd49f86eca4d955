namespace Cairn.Storage;

/// <summary>
/// The one write transaction: changes are made to private copies of pages (copy-on-write) and become visible to new
/// readers only at <see cref="Commit()"/>. Dispose without commit rolls everything back.
/// </summary>
public sealed partial class WriteTransaction : Transaction
{
    private ulong _baseTxn;
    private ulong _oldestReader;   // oldest snapshot any reader (or the last commit) can see
    private ulong _oldestDurable;  // min(_oldestReader, last durable commit): the bar for pages the durable state may hold
    private readonly TreeState _freeTree;

    // Descent path of the current operation: page and index at each level, root first.
    private readonly WriterScratch _scratch;
    private readonly ulong[] _pathPg;
    private readonly int[] _pathIx;

    // Scratch space for splits and merges (one page each), reused by every operation.
    private readonly byte[] _pageCopy;
    private readonly byte[] _raw;
    private readonly byte[] _sep;
    private int _sepLength;
    private readonly int[] _sizes;

    internal WriteTransaction(Database db, MetaState meta, Mapping map, ulong oldestReader, ulong oldestDurable) : base(db, meta, map, db.Scratch)
    {
        _scratch = db.Scratch;
        _freeTree = _scratch.FreeTree;
        Begin(meta, map, oldestReader, oldestDurable);
        _pathPg = _scratch.PathPg;
        _pathIx = _scratch.PathIx;
        _pageCopy = _scratch.PageCopy;
        _raw = _scratch.Raw;
        _sep = _scratch.Sep;
        _sizes = _scratch.Sizes;
    }

    /// <summary>Starts this object's (next) transaction on the committed state <paramref name="meta"/>.</summary>
    internal void Begin(MetaState meta, Mapping map, ulong oldestReader, ulong oldestDurable)
    {
        Meta = meta;
        Map = map;
        Catalog.Reset(meta.Catalog);
        OpenTrees.Clear();
        Version++;
        _baseTxn = meta.TxnId;
        _oldestReader = oldestReader;
        _oldestDurable = oldestDurable;
        _scratch.Reset();
        Dirty = _scratch.Dirty;
        _freeTree.Reset(meta.FreeTree);
        _freeExhausted = false;
        _freeBusy = false;
        _freeVersion = 0;
        _sepLength = 0;
        Finished = false;
    }

    /// <inheritdoc/>
    public override ulong Id => _baseTxn + 1;

    /// <summary>Opens the tree called <paramref name="name"/>, creating it empty when it does not exist.</summary>
    public Tree CreateTree(string name)
    {
        if (TryOpenTree(name, out var tree)) return tree;
        foreach (var t in OpenTrees)
        {
            if (string.Equals(t.Name, name, StringComparison.Ordinal))
            {
                // Dropped earlier in this transaction and now created again: start empty.
                t.Deleted = false;
                t.Dirty = true;
                t.Root = default;
                return new Tree(this, t);
            }
        }
        var state = new TreeState(name, EncodeName(name), default) { Dirty = true };
        OpenTrees.Add(state);
        Version++;
        return new Tree(this, state);
    }

    /// <summary>Removes the tree called <paramref name="name"/> and frees its pages; false when there is none.</summary>
    public bool DeleteTree(string name)
    {
        if (!TryOpenTree(name, out var tree)) return false;
        var state = tree.State;
        if (state.Root.Root != 0) FreeSubtree(state.Root.Root, 0);
        state.Root = default;
        state.Deleted = true;
        state.Dirty = true;
        Version++;
        return true;
    }

    private void FreeSubtree(ulong pgno, int level)
    {
        if (level >= MaxDepth) throw new CorruptDatabaseException((long)pgno, "tree deeper than the maximum (a cycle?)");
        var p = GetNode(pgno);
        var count = Node.Count(p);
        if (Node.Kind(p) == PageKind.Branch)
        {
            for (var i = 0; i < count; i++) FreeSubtree(Node.BranchChild(GetNode(pgno), i), level + 1);
        }
        else
        {
            for (var i = 0; i < count; i++)
            {
                p = GetNode(pgno);
                if (Node.LeafIsOverflow(p, i)) FreeRun(Node.LeafOverflowPage(p, i), PagesFor(Node.LeafValueLength(p, i), PageSize));
            }
        }
        FreeRun(pgno, 1);
    }

    /// <summary>Rolls back when not committed, and lets the next writer in.</summary>
    public override void Dispose()
    {
        if (Finished) return;
        Finish();
    }

    private void Finish()
    {
        Finished = true;
        foreach (var buf in Dirty!.Values) ReturnBuffer(buf);
        Dirty.Clear();
        Dirty = null; // the dictionary belongs to the database's scratch, which the next writer reuses
        Map.Release();
        Db.EndWrite();
    }
}

/// <summary>
/// The writer's working memory, kept by the database between write transactions (there is one writer at a time), so
/// a commit does not allocate its bookkeeping again.
/// </summary>
internal sealed class WriterScratch(int pageSize)
{
    public readonly Dictionary<ulong, byte[]> Dirty = [];
    public readonly TreeState Catalog = new("", [], default);
    public readonly TreeState FreeTree = new("(free pages)", [], default);
    public readonly List<TreeState> OpenTrees = [];
    public readonly Dictionary<string, TreeState> States = new(StringComparer.Ordinal);
    public readonly ulong[] PathPg = new ulong[Transaction.MaxDepth];
    public readonly int[] PathIx = new int[Transaction.MaxDepth];
    public readonly byte[] PageCopy = new byte[pageSize];
    public readonly byte[] Raw = new byte[pageSize];
    public readonly byte[] Sep = new byte[pageSize];
    public readonly int[] Sizes = new int[pageSize / 2];
    public readonly List<ulong> Pool = [];
    public readonly List<ulong> Freed = [];
    public readonly List<ulong> FreedYoung = [];
    public readonly List<ReadOnlyMemory<byte>> Gather = [];
    public readonly List<ulong> Written = [];
    public readonly byte[] FreeKey = new byte[12];
    public readonly List<ulong> FreeSorted = [];   // a free-list record's pages, sorted, while the free list is saved
    public byte[]? FreeValue;                      // a free-list record's value
    public ulong[] PageNumbers = [];               // the dirty pages' numbers, sorted, while they are written

    public void Reset()
    {
        Dirty.Clear();
        Pool.Clear();
        Freed.Clear();
        FreedYoung.Clear();
        Gather.Clear();
        Written.Clear();
    }
}
