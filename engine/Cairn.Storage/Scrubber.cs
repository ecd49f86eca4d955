using System.Buffers;

namespace Cairn.Storage;

/// <summary>What one <see cref="Scrubber.Step"/> did.</summary>
/// <param name="PagesVerified">Pages read from the file and checked (an overflow run counts its pages).</param>
/// <param name="PassCompleted">This step reached the end of the file's trees: the pass is over, the next step starts another.</param>
/// <param name="Damage">Pages that failed, each named (<see cref="CorruptDatabaseException.PageNumber"/>); the step carried on past them.</param>
public sealed record ScrubStep(int PagesVerified, bool PassCompleted, IReadOnlyList<CorruptDatabaseException> Damage);

/// <summary>
/// A background check of a whole database a few pages at a time, as a RAID scrub reads every disk block: each
/// <see cref="Step"/> verifies the next pages in use — tag or checksum, page number, structure — and stops after about
/// as many as it is allowed, remembering where, so a pass over the file can be spread over hours.
/// <para>
/// Each step reads through a read transaction of its own, so it never blocks the writer and pins no page between steps;
/// and it reads the bytes from the file, not from the page cache, so damage under a page that is cached (and would only
/// be found after a restart) is found too. The walk visits the catalog, every named tree in name order and the free-page
/// tree, each in key order; where it resumes is a tree name and a key, which stay meaningful while the writer replaces
/// pages between steps (a page written after the walk passed its keys is new and read back when next needed). A damaged
/// branch page hides its subtree for that pass, and the walk goes on with the next sibling. Not thread-safe: one
/// scrubber per caller.
/// </para>
/// </summary>
public sealed class Scrubber
{
    private enum Phase { Catalog, Trees, FreePages }

    private Phase _phase;
    private byte[]? _tree;      // the named tree being walked (UTF-8 name), in Phase.Trees
    private byte[]? _resume;    // resume at the first key ≥ this in the current tree; null: from its start
    private readonly List<byte[]> _buffers = [];   // one page buffer per tree level (the walk holds a page per level)
    private int _pageSize;

    /// <summary>Passes completed so far.</summary>
    public long PassesCompleted { get; private set; }

    /// <summary>
    /// Verifies the next pages of <paramref name="database"/>, about <paramref name="maxPages"/> of them (a step ends at
    /// a leaf boundary, so it may read a few more: the branch pages above its first leaf, and a whole overflow run), and
    /// reports what it found. After the last page of a pass, the next step starts a new pass.
    /// </summary>
    public ScrubStep Step(Database database, int maxPages)
    {
        ArgumentNullException.ThrowIfNull(database);
        ArgumentOutOfRangeException.ThrowIfLessThan(maxPages, 1);
        if (database.PageSize != _pageSize)
        {
            _buffers.Clear();
            _pageSize = database.PageSize;
        }
        using var tx = database.BeginRead();
        var walk = new Walk(this, tx, maxPages);
        var completed = false;
        while (!walk.BudgetSpent)
        {
            var root = NextRoot(tx, walk, out var done);
            if (done)
            {
                completed = true;
                break;
            }
            if (root is { } r && walk.Tree(r.Root, r.Depth, _resume) is { } stop)
            {
                _resume = stop; // spent inside this tree: resume at the next leaf's first key
                break;
            }
            Advance(tx);
        }
        if (completed)
        {
            PassesCompleted++;
            _phase = Phase.Catalog;
            _tree = null;
            _resume = null;
        }
        return new ScrubStep(walk.Pages, completed, walk.Damage);
    }

    /// <summary>The root of the tree the walk is in (null: it cannot be read, skip it); <paramref name="done"/> at the end of the pass.</summary>
    private (ulong Root, int Depth)? NextRoot(ReadTransaction tx, Walk walk, out bool done)
    {
        done = false;
        switch (_phase)
        {
            case Phase.Catalog:
                return (tx.Meta.Catalog.Root, tx.Meta.Catalog.Depth);
            case Phase.Trees:
                if (_tree is null)
                {
                    // Between trees: find the next name (the catalog may have changed since the last step).
                    if (NextTreeName(tx, null, walk) is not { } first)
                    {
                        _phase = Phase.FreePages;
                        return NextRoot(tx, walk, out done);
                    }
                    _tree = first;
                    _resume = null;
                }
                try
                {
                    var name = System.Text.Encoding.UTF8.GetString(_tree);
                    return tx.TryOpenTree(name, out var tree) ? (tree.State.Root.Root, tree.State.Root.Depth) : null; // dropped meanwhile: nothing to walk
                }
                catch (CorruptDatabaseException e)
                {
                    walk.Damage.Add(e);
                    return null;
                }
            case Phase.FreePages:
                return (tx.Meta.FreeTree.Root, tx.Meta.FreeTree.Depth);
            default:
                done = true;
                return null;
        }
    }

    /// <summary>Moves past the tree just finished.</summary>
    private void Advance(ReadTransaction tx)
    {
        _resume = null;
        switch (_phase)
        {
            case Phase.Catalog:
                _phase = Phase.Trees;
                _tree = null;
                break;
            case Phase.Trees:
                var listing = new Walk(this, tx, int.MaxValue);
                var next = NextTreeName(tx, _tree, listing);
                if (listing.Damage.Count > 0 || next is null)
                {
                    _phase = Phase.FreePages; // the catalog cannot be listed (its damage was reported walking it), or no tree is left
                    _tree = null;
                }
                else
                {
                    _tree = next;
                }
                break;
            case Phase.FreePages:
                _phase = Phase.FreePages + 1; // the pass is over
                break;
        }
    }

    /// <summary>The first tree name (UTF-8) after <paramref name="after"/> in byte order; null when none.</summary>
    private static byte[]? NextTreeName(ReadTransaction tx, byte[]? after, Walk walk)
    {
        try
        {
            foreach (var name in tx.GetTreeNames())
            {
                var bytes = Transaction.EncodeName(name);
                if (after is null || bytes.AsSpan().SequenceCompareTo(after) > 0) return bytes;
            }
        }
        catch (CorruptDatabaseException e)
        {
            walk.Damage.Add(e);
        }
        return null;
    }

    private byte[] Buffer(int level)
    {
        while (_buffers.Count <= level) _buffers.Add(GC.AllocateUninitializedArray<byte>(_pageSize));
        return _buffers[level];
    }

    /// <summary>One step's walk: reads pages straight from the file, checks them, counts them against the budget.</summary>
    private sealed unsafe class Walk(Scrubber owner, ReadTransaction tx, int budget)
    {
        public int Pages;
        public readonly List<CorruptDatabaseException> Damage = [];

        public bool BudgetSpent => Pages >= budget;

        /// <summary>
        /// Walks a tree from the first key ≥ <paramref name="resume"/>. Returns null when the tree is done, or the key
        /// to resume at when the budget ran out at a leaf boundary.
        /// </summary>
        public byte[]? Tree(ulong root, int depth, byte[]? resume)
        {
            if (root == 0) return null;
            if (depth < 1 || depth > Transaction.MaxDepth)
            {
                Damage.Add(new CorruptDatabaseException((long)root, $"is the root of a tree that records a depth of {depth}"));
                return null;
            }
            return Visit(root, 1, depth, resume, null, out var stop) ? stop : null;
        }

        /// <summary>
        /// Visits a page and its subtree (keys below <paramref name="hi"/>; null: no bound). True when the budget ran
        /// out: <paramref name="stop"/> is where to resume (null: at the end of the tree, nothing left).
        /// </summary>
        private bool Visit(ulong pg, int level, int depth, byte[]? resume, byte[]? hi, out byte[]? stop)
        {
            stop = null;
            var buffer = owner.Buffer(level);
            if (!Check(pg, 1, buffer))
            {
                return Spent(hi, out stop); // damaged: its subtree is skipped this pass
            }
            ReadOnlySpan<byte> page = buffer;
            if (Node.Kind(page) == PageKind.Branch)
            {
                if (level >= depth)
                {
                    Damage.Add(new CorruptDatabaseException((long)pg, $"is a branch page at leaf depth {depth}"));
                    return Spent(hi, out stop);
                }
                if (resume is null) Pages++; // a branch page on the path to a resume key was counted when first entered
                var count = Node.Count(page);
                var first = resume is null ? 0 : Node.BranchSearch(page, resume);
                for (var i = first; i < count; i++)
                {
                    // This level's buffer stays put while the children use the levels below it.
                    var childHi = i + 1 < count ? Node.BranchKey(page, i + 1).ToArray() : hi;
                    if (Visit(Node.BranchChild(page, i), level + 1, depth, i == first ? resume : null, childHi, out stop)) return true;
                }
                return false;
            }
            if (level != depth)
            {
                Damage.Add(new CorruptDatabaseException((long)pg, $"is a leaf at level {level} of a tree of depth {depth}"));
                return Spent(hi, out stop);
            }
            Pages++;
            var entries = Node.Count(page);
            for (var i = resume is null ? 0 : Node.LeafSearch(page, resume, out _); i < entries; i++)
            {
                if (!Node.LeafIsOverflow(page, i)) continue;
                var pages = Transaction.PagesFor(Node.LeafValueLength(page, i), owner._pageSize);
                var run = ArrayPool<byte>.Shared.Rent(pages * owner._pageSize);
                try
                {
                    Check(Node.LeafOverflowPage(page, i), pages, run);
                }
                finally
                {
                    ArrayPool<byte>.Shared.Return(run);
                }
                Pages += pages;
            }
            return Spent(hi, out stop);
        }

        /// <summary>True (stop at <paramref name="hi"/>) when the budget is spent; false to go on.</summary>
        private bool Spent(byte[]? hi, out byte[]? stop)
        {
            stop = BudgetSpent ? hi : null;
            return BudgetSpent;
        }

        /// <summary>
        /// Reads a page, or an overflow run of <paramref name="pages"/>, from the mapped file into <paramref name="into"/>
        /// and checks it as a first read through the page cache would — whether or not it is cached. False when it is
        /// damaged (recorded in <see cref="Damage"/>).
        /// </summary>
        private bool Check(ulong pg, int pages, byte[] into)
        {
            var length = pages * owner._pageSize;
            if (pg < 2 || pages < 1 || pg + (ulong)pages > tx.Meta.PageCount)
            {
                Damage.Add(new CorruptDatabaseException((long)pg, "is referenced but lies past the end of the committed file"));
                return false;
            }
            var stored = new ReadOnlySpan<byte>(tx.Map.Base + (long)pg * owner._pageSize, length);
            var plain = into.AsSpan(0, length);
            string? problem;
            if (tx.Db.Cipher is { } cipher)
            {
                problem = cipher.TryOpen(stored, plain, pg) ? null
                    : pages == 1 ? "authentication tag mismatch (the page is damaged, misplaced, from another file, or not a page of this size)"
                    : $"authentication tag mismatch on an overflow run of {pages} pages";
            }
            else
            {
                stored.CopyTo(plain);
                problem = PageSeal.Check(plain, tx.Db.ChecksumSeed) ? null : "checksum mismatch";
            }
            problem ??= Node.PageNumber(plain) != pg ? $"holds page {Node.PageNumber(plain)} (misplaced or overwritten page)"
                : pages > 1 || Node.Kind(plain) == PageKind.Overflow
                    ? (Node.Kind(plain) != PageKind.Overflow || Node.RunPages(plain) != pages ? "is referenced as an overflow run but is not one of that length" : null)
                    : Node.CheckStructure(plain);
            if (problem is null) return true;
            Damage.Add(new CorruptDatabaseException((long)pg, problem));
            return false;
        }
    }
}
