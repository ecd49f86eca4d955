using System.Buffers.Binary;
using System.Collections;
using System.Text;

namespace Cairn.Storage;

/// <summary>Figures of one tree, from <see cref="Database.GetStats"/> or <see cref="Database.Verify"/>.</summary>
/// <param name="Name">Tree name.</param>
/// <param name="Entries">Keys in the tree.</param>
/// <param name="Depth">Levels from root to leaf (0 when empty).</param>
/// <param name="BranchPages">Branch pages.</param>
/// <param name="LeafPages">Leaf pages.</param>
/// <param name="OverflowPages">Pages holding large values.</param>
public sealed record TreeStats(string Name, long Entries, int Depth, long BranchPages, long LeafPages, long OverflowPages);

/// <summary>Figures of the whole file.</summary>
/// <param name="TransactionId">The commit described.</param>
/// <param name="PageSize">Bytes per page.</param>
/// <param name="PageCount">Pages in use or free (the file may be longer: it grows ahead).</param>
/// <param name="FreePages">Pages on the free list, waiting for reuse.</param>
/// <param name="FileSize">Bytes in the file.</param>
/// <param name="Trees">Every named tree.</param>
public sealed record StorageStats(ulong TransactionId, int PageSize, long PageCount, long FreePages, long FileSize, IReadOnlyList<TreeStats> Trees)
{
    /// <summary>A few lines for people.</summary>
    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfoInvariant($"transaction {TransactionId}, page size {PageSize}, {PageCount} pages ({FreePages} free), file {FileSize} bytes"));
        foreach (var t in Trees)
        {
            sb.AppendLine().Append(CultureInfoInvariant($"  tree '{t.Name}': {t.Entries} keys, depth {t.Depth}, {t.BranchPages} branch + {t.LeafPages} leaf + {t.OverflowPages} overflow pages"));
        }
        return sb.ToString();
    }

    private static string CultureInfoInvariant(FormattableString s) => FormattableString.Invariant(s);
}

/// <summary>Walks a whole committed state: every page reachable once or free, keys ordered, checksums valid, counters true.</summary>
internal sealed class Verifier
{
    private readonly ReadTransaction _tx;
    private readonly BitArray _seen;
    private readonly List<TreeStats> _trees = [];
    private long _free;

    public Verifier(ReadTransaction tx)
    {
        _tx = tx;
        _seen = new BitArray(checked((int)tx.Meta.PageCount));
        _seen[0] = _seen[1] = true; // meta pages
    }

    public StorageStats Run(long fileSize)
    {
        var meta = _tx.Meta;
        CheckTree("(catalog)", meta.Catalog);
        foreach (var name in _tx.GetTreeNames())
        {
            var tree = _tx.OpenTree(name);
            _trees.Add(CheckTree(name, tree.State.Root));
        }
        CheckTree("(free pages)", meta.FreeTree);
        var c = _tx.RentCursor(new TreeState("(free pages)", [], meta.FreeTree));
        for (var ok = c.First(); ok; ok = c.Next())
        {
            var value = c.Value;
            if (value.Length % 8 != 0) throw new CorruptDatabaseException((long)meta.FreeTree.Root, "free-list record with a malformed value");
            for (var i = 0; i < value.Length; i += 8)
            {
                var pg = BinaryPrimitives.ReadUInt64LittleEndian(value[i..]);
                Mark(pg, "listed as free");
                _free++;
            }
        }
        _tx.ReturnCursor(c);
        for (var pg = 0; pg < _seen.Length; pg++)
        {
            if (!_seen[pg]) throw new CorruptDatabaseException(pg, "is neither reachable nor free (leaked)");
        }
        return new StorageStats(meta.TxnId, _tx.PageSize, (long)meta.PageCount, _free, fileSize, _trees);
    }

    private void Mark(ulong pg, string how)
    {
        if (pg >= (ulong)_seen.Length) throw new CorruptDatabaseException((long)pg, $"{how} but lies past the end of the file");
        if (_seen[(int)pg]) throw new CorruptDatabaseException((long)pg, $"{how} but is already in use elsewhere (reachable twice)");
        _seen[(int)pg] = true;
    }

    private TreeStats CheckTree(string name, TreeRoot root)
    {
        long entries = 0, branches = 0, leaves = 0, overflow = 0;
        // The walk recurses once per level: a forged depth must not turn into a stack overflow.
        if (root.Depth < 0 || root.Depth > Transaction.MaxDepth) throw new CorruptDatabaseException((long)root.Root, $"tree '{name}' records a depth of {root.Depth}; a tree has at most {Transaction.MaxDepth} levels");
        if (root.Root != 0) Walk(name, root.Root, 1, root.Depth, default, default, false, ref entries, ref branches, ref leaves, ref overflow);
        else if (root.Depth != 0 || root.Entries != 0) throw new CorruptDatabaseException($"tree '{name}' is empty but its counters say {root.Entries} keys, depth {root.Depth}");
        if ((ulong)entries != root.Entries || (ulong)branches != root.BranchPages || (ulong)leaves != root.LeafPages || (ulong)overflow != root.OverflowPages)
        {
            throw new CorruptDatabaseException((long)root.Root,
                $"tree '{name}' holds {entries} keys in {branches}/{leaves}/{overflow} branch/leaf/overflow pages but its counters say {root.Entries} in {root.BranchPages}/{root.LeafPages}/{root.OverflowPages}");
        }
        return new TreeStats(name, entries, root.Depth, branches, leaves, overflow);
    }

    private void Walk(string name, ulong pg, int level, int depth, ReadOnlySpan<byte> lo, ReadOnlySpan<byte> hi, bool hasHi,
        ref long entries, ref long branches, ref long leaves, ref long overflow)
    {
        if (level > depth) throw new CorruptDatabaseException((long)pg, $"tree '{name}' is deeper than its recorded depth {depth}");
        Mark(pg, $"in tree '{name}'");
        var p = _tx.GetNode(pg);
        var count = Node.Count(p);
        if (Node.Kind(p) == PageKind.Branch)
        {
            if (level == depth) throw new CorruptDatabaseException((long)pg, $"branch page at leaf depth in tree '{name}'");
            branches++;
            for (var i = 0; i < count; i++)
            {
                var childLo = i == 0 ? lo : Node.BranchKey(p, i);
                if (i > 0)
                {
                    if (childLo.IsEmpty) throw new CorruptDatabaseException((long)pg, $"empty separator key at entry {i}");
                    if (i > 1 && Node.BranchKey(p, i - 1).SequenceCompareTo(childLo) >= 0) throw new CorruptDatabaseException((long)pg, $"separator keys out of order at entry {i}");
                    if (!lo.IsEmpty && childLo.SequenceCompareTo(lo) < 0) throw new CorruptDatabaseException((long)pg, $"separator at entry {i} is below the page's lower bound");
                    if (hasHi && childLo.SequenceCompareTo(hi) >= 0) throw new CorruptDatabaseException((long)pg, $"separator at entry {i} is above the page's upper bound");
                }
                var childHasHi = i + 1 < count || hasHi;
                var childHi = i + 1 < count ? Node.BranchKey(p, i + 1) : hi;
                Walk(name, Node.BranchChild(p, i), level + 1, depth, childLo, childHi, childHasHi, ref entries, ref branches, ref leaves, ref overflow);
                p = _tx.GetNode(pg);
            }
            return;
        }
        if (level != depth) throw new CorruptDatabaseException((long)pg, $"leaf at level {level} in tree '{name}' of depth {depth}");
        if (count == 0) throw new CorruptDatabaseException((long)pg, $"empty leaf in tree '{name}'");
        leaves++;
        for (var i = 0; i < count; i++)
        {
            var key = Node.LeafKey(p, i);
            if (key.IsEmpty) throw new CorruptDatabaseException((long)pg, $"empty key at entry {i}");
            if (i > 0 && Node.LeafKey(p, i - 1).SequenceCompareTo(key) >= 0) throw new CorruptDatabaseException((long)pg, $"keys out of order at entry {i}");
            if (!lo.IsEmpty && key.SequenceCompareTo(lo) < 0) throw new CorruptDatabaseException((long)pg, $"key at entry {i} is below the page's lower bound");
            if (hasHi && key.SequenceCompareTo(hi) >= 0) throw new CorruptDatabaseException((long)pg, $"key at entry {i} is at or above the page's upper bound");
            if (Node.LeafIsOverflow(p, i))
            {
                var run = Node.LeafOverflowPage(p, i);
                var pages = Transaction.PagesFor(Node.LeafValueLength(p, i), _tx.PageSize);
                for (var k = 0; k < pages; k++) Mark(run + (ulong)k, $"in an overflow run of tree '{name}'");
                _ = _tx.GetRun(run, pages); // verifies the checksum
                overflow += pages;
            }
        }
        entries += count;
    }
}

public sealed partial class Database
{
    /// <summary>
    /// Walks the latest commit: every page reachable exactly once or free, keys in order, checksums valid, counters
    /// true. Returns the figures; throws <see cref="CorruptDatabaseException"/> naming the page on damage.
    /// </summary>
    public StorageStats Verify()
    {
        using var tx = BeginRead();
        return new Verifier(tx).Run(_file.Length);
    }

    /// <summary>Figures of the latest commit: pages, free pages, file size, and each tree's keys, depth and pages.</summary>
    public StorageStats GetStats()
    {
        using var tx = BeginRead();
        var trees = new List<TreeStats>();
        foreach (var name in tx.GetTreeNames())
        {
            var r = tx.OpenTree(name).State.Root;
            trees.Add(new TreeStats(name, (long)r.Entries, r.Depth, (long)r.BranchPages, (long)r.LeafPages, (long)r.OverflowPages));
        }
        long free = 0;
        foreach (var e in new Tree(tx, new TreeState("(free pages)", [], tx.Meta.FreeTree)).All()) free += e.Value.Length / 8;
        return new StorageStats(tx.Meta.TxnId, PageSize, (long)tx.Meta.PageCount, free, _file.Length, trees);
    }
}
