using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.CompilerServices;
using System.Text;

namespace Cairn.Storage;

/// <summary>Per-transaction state of one named tree: its root and counters as this transaction sees them.</summary>
internal sealed class TreeState(string name, byte[] nameBytes, TreeRoot root)
{
    public readonly string Name = name;
    public readonly byte[] NameBytes = nameBytes;
    public TreeRoot Root = root;
    public bool Dirty;     // changed in this write transaction: the catalog must be updated at commit
    public bool Deleted;   // dropped in this write transaction

    /// <summary>Starts the state over for a new write transaction (the writer reuses its state objects).</summary>
    public void Reset(TreeRoot root)
    {
        Root = root;
        Dirty = false;
        Deleted = false;
    }
}

/// <summary>
/// What read and write transactions share: one committed state, page access through the mapping (verified on first
/// touch) or, for the writer, its dirty copies, and the trees opened so far.
/// </summary>
public abstract unsafe class Transaction : IDisposable
{
    internal const int MaxDepth = 64;

    internal readonly Database Db;
    internal readonly int PageSize;
    internal MetaState Meta;
    internal Mapping Map;
    internal Dictionary<ulong, byte[]>? Dirty;   // the writer's pages; null in readers
    internal readonly TreeState Catalog;
    internal readonly List<TreeState> OpenTrees;
    private readonly Dictionary<string, TreeState>? _stateCache;   // the writer's: a tree's state object is reused by the next write transaction
    internal int Version;                         // bumped by every change (and by each new write transaction in a reused object); cursors from an older version are stale
    private Cursor? _spareCursor;
    private protected bool Finished;

    private protected Transaction(Database db, MetaState meta, Mapping map, WriterScratch? scratch = null)
    {
        Db = db;
        PageSize = db.PageSize;
        Meta = meta;
        Map = map;
        if (scratch is null)
        {
            Catalog = new TreeState("", [], meta.Catalog);
            OpenTrees = [];
        }
        else
        {
            // The writer's bookkeeping lives in the database's scratch, reused by every write transaction.
            Catalog = scratch.Catalog;
            Catalog.Reset(meta.Catalog);
            OpenTrees = scratch.OpenTrees;
            _stateCache = scratch.States;
        }
    }

    /// <summary>The id of the commit this transaction reads (a reader) or will create (the writer).</summary>
    public abstract ulong Id { get; }

    /// <summary>The database this transaction belongs to.</summary>
    public Database Database => Db;

    /// <summary>Opens the tree called <paramref name="name"/>.</summary>
    /// <exception cref="KeyNotFoundException">No tree has that name.</exception>
    public Tree OpenTree(string name)
    {
        if (TryOpenTree(name, out var tree)) return tree;
        throw new KeyNotFoundException($"No tree named '{name}'; create it in a write transaction with CreateTree.");
    }

    /// <summary>Opens the tree called <paramref name="name"/> when it exists.</summary>
    public bool TryOpenTree(string name, out Tree tree)
    {
        ThrowIfFinished();
        foreach (var t in OpenTrees)
        {
            if (string.Equals(t.Name, name, StringComparison.Ordinal))
            {
                tree = new Tree(this, t);
                return !t.Deleted;
            }
        }
        TreeState? cached = null;
        var nameBytes = _stateCache is not null && _stateCache.TryGetValue(name, out cached) ? cached.NameBytes : EncodeName(name);
        if (!new Tree(this, Catalog).TryGet(nameBytes, out var rootBytes))
        {
            tree = default;
            return false;
        }
        if (rootBytes.Length != TreeRoot.Size) throw new CorruptDatabaseException((long)Catalog.Root.Root, $"catalog entry for tree '{name}' has {rootBytes.Length} bytes, expected {TreeRoot.Size}");
        TreeState state;
        if (cached is not null)
        {
            state = cached;
            state.Reset(TreeRoot.Read(rootBytes));
        }
        else
        {
            state = new TreeState(name, nameBytes, TreeRoot.Read(rootBytes));
            if (_stateCache is { Count: < 256 }) _stateCache[name] = state;
        }
        OpenTrees.Add(state);
        tree = new Tree(this, state);
        return true;
    }

    /// <summary>Names of every tree in this transaction's view, in byte order of their UTF-8 names.</summary>
    public IReadOnlyList<string> GetTreeNames()
    {
        ThrowIfFinished();
        var names = new List<string>();
        foreach (var e in new Tree(this, Catalog).All())
        {
            // A name CreateTree could not have written (empty, too long, not UTF-8) would not open again: damage.
            string? name = null;
            if (e.Key.Length is >= 1 and <= 255)
            {
                try
                {
                    name = StrictUtf8.GetString(e.Key);
                }
                catch (DecoderFallbackException)
                {
                }
            }
            if (name is null) throw new CorruptDatabaseException((long)Catalog.Root.Root, $"the catalog holds a tree name that is not 1 to 255 bytes of UTF-8 ({e.Key.Length} bytes: {Convert.ToHexString(e.Key[..Math.Min(e.Key.Length, 32)])})");
            names.Add(name);
        }
        return names;
    }

    private static readonly UTF8Encoding StrictUtf8 = new(false, true);

    internal static byte[] EncodeName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        var bytes = Encoding.UTF8.GetBytes(name);
        if (bytes.Length is 0 or > 255) throw new ArgumentException($"Tree name '{name}' is {bytes.Length} UTF-8 bytes; use 1 to 255.", nameof(name));
        return bytes;
    }

    /// <summary>A B+tree page (branch or leaf), verified on first touch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ReadOnlySpan<byte> GetNode(ulong pgno)
    {
        var p = GetPage(pgno);
        if ((uint)(p[0] - 1) > 1) ThrowNotNode(pgno, p[0]);
        return p;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal ReadOnlySpan<byte> GetPage(ulong pgno)
    {
        if (Dirty is not null && Dirty.TryGetValue(pgno, out var buf)) return buf.AsSpan(0, PageSize);
        if (pgno >= Meta.PageCount || pgno < 2) ThrowPastEnd(pgno);
        if (Db.Cache is { } cache) return cache.Get(pgno, 1, Map.Base);
        var p = Map.Base + (long)pgno * PageSize;
        if (!Map.IsVerified(pgno)) VerifyPage(pgno, p);
        return new ReadOnlySpan<byte>(p, PageSize);
    }

    /// <summary>An overflow run of <paramref name="pages"/> pages starting at <paramref name="pgno"/>.</summary>
    internal ReadOnlySpan<byte> GetRun(ulong pgno, int pages)
    {
        if (Dirty is not null && Dirty.TryGetValue(pgno, out var buf))
        {
            if (buf.Length < pages * PageSize || buf[0] != (byte)PageKind.Overflow) ThrowNotRun(pgno);
            return buf.AsSpan(0, pages * PageSize);
        }
        if (pgno < 2 || pgno + (ulong)pages > Meta.PageCount) ThrowPastEnd(pgno);
        if (Db.Cache is { } cache) return cache.Get(pgno, pages, Map.Base);
        var p = Map.Base + (long)pgno * PageSize;
        if (!Map.IsVerified(pgno)) VerifyPage(pgno, p);
        var run = new ReadOnlySpan<byte>(p, pages * PageSize);
        if (run[0] != (byte)PageKind.Overflow || Node.RunPages(run) != pages) ThrowNotRun(pgno);
        return run;
    }

    /// <summary>The value of leaf entry <paramref name="i"/>: inline, or in its overflow run.</summary>
    internal ReadOnlySpan<byte> LeafValue(ReadOnlySpan<byte> leaf, int i)
    {
        var payload = Node.LeafPayload(leaf, i);
        if (!Node.LeafIsOverflow(leaf, i)) return payload;
        var length = Node.LeafValueLength(leaf, i);
        var run = GetRun(BinaryPrimitives.ReadUInt64LittleEndian(payload), PagesFor(length, PageSize));
        return run.Slice(Node.HeaderSize, length);
    }

    internal static int PagesFor(int valueLength, int pageSize) => (int)(((long)valueLength + Node.HeaderSize + Node.TrailerSize + pageSize - 1) / pageSize);

    private void VerifyPage(ulong pgno, byte* p)
    {
        var page = new ReadOnlySpan<byte>(p, PageSize);
        if (Node.PageNumber(page) != pgno)
        {
            throw new CorruptDatabaseException((long)pgno, $"holds page {Node.PageNumber(page)} (misplaced or overwritten page)");
        }
        var length = PageSize;
        if (Node.Kind(page) == PageKind.Overflow)
        {
            var pages = Node.RunPages(page);
            if (pages < 1 || pgno + (ulong)pages > Meta.PageCount) throw new CorruptDatabaseException((long)pgno, $"overflow run of {pages} pages runs past the end of the file");
            length = pages * PageSize;
        }
        var whole = new ReadOnlySpan<byte>(p, length);
        if (!PageSeal.Check(whole, Db.ChecksumSeed))
        {
            throw new CorruptDatabaseException((long)pgno, "checksum mismatch");
        }
        if (Node.Kind(page) != PageKind.Overflow && Node.CheckStructure(page) is { } problem)
        {
            throw new CorruptDatabaseException((long)pgno, problem);
        }
        Map.MarkVerified(pgno);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowPastEnd(ulong pgno) => throw new CorruptDatabaseException((long)pgno, "is referenced but lies past the end of the committed file");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotNode(ulong pgno, byte kind) => throw new CorruptDatabaseException((long)pgno, $"is referenced as a tree page but has kind {kind}");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowNotRun(ulong pgno) => throw new CorruptDatabaseException((long)pgno, "is referenced as an overflow run but is not one of that length");

    internal Cursor RentCursor(TreeState tree)
    {
        var c = _spareCursor ?? new Cursor();
        _spareCursor = null;
        c.Attach(this, tree);
        return c;
    }

    internal void ReturnCursor(Cursor c) => _spareCursor = c;

    internal bool IsFinished => Finished;

    internal void ThrowIfFinished()
    {
        if (Finished) ThrowFinished();
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowFinished() => throw new ObjectDisposedException("Transaction", "The transaction has been committed or disposed; begin a new one.");

    /// <summary>Ends the transaction. A write transaction that was not committed is rolled back.</summary>
    public abstract void Dispose();
}

/// <summary>Checksums in the page trailer of an unencrypted database.</summary>
internal static class PageSeal
{
    public static void Seal(Span<byte> run, ulong seed)
    {
        var body = run[..^Node.TrailerSize];
        var trailer = run[^Node.TrailerSize..];
        trailer.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(trailer, XxHash3.HashToUInt64(body, (long)seed));
    }

    public static bool Check(ReadOnlySpan<byte> run, ulong seed)
    {
        var body = run[..^Node.TrailerSize];
        var trailer = run[^Node.TrailerSize..];
        return BinaryPrimitives.ReadUInt64LittleEndian(trailer) == XxHash3.HashToUInt64(body, (long)seed)
            && !trailer[8..].ContainsAnyExcept((byte)0);
    }
}

/// <summary>
/// A read-only view of one commit. It never blocks the writer and is never blocked by it; pages it can see are not
/// reused until it ends, so end it promptly (Dispose).
/// </summary>
public sealed class ReadTransaction : Transaction
{
    private readonly int _slot;

    internal ReadTransaction(Database db, MetaState meta, Mapping map, int slot) : base(db, meta, map) => _slot = slot;

    /// <inheritdoc/>
    public override ulong Id => Meta.TxnId;

    /// <inheritdoc/>
    public override void Dispose()
    {
        if (Finished) return;
        Finished = true;
        Db.EndRead(_slot, Map);
    }
}
