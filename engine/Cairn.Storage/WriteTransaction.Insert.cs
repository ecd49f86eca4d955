using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Cairn.Storage;

/// <summary>Put: descend, copy the path, insert into the leaf, split upwards when a page is full.</summary>
public sealed partial class WriteTransaction
{
    internal void Put(TreeState tree, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        ThrowIfFinished();
        if (key.Length == 0 || key.Length > Db.MaxKeySize) ThrowKeySize(key.Length);
        if (value.Length > Database.MaxValueSize) ThrowValueSize(value.Length);
        if (tree.Deleted) throw new InvalidOperationException($"Tree '{tree.Name}' was deleted in this transaction; CreateTree it again first.");
        Version++;
        // Enough free pages for copying the path and splitting every level, loaded before this descent starts.
        EnsurePool(2 * (tree.Root.Depth + 2));

        if (tree.Root.Root == 0)
        {
            var root = AllocPage(out var buf);
            Node.Init(buf.AsSpan(0, PageSize), PageKind.Leaf, root);
            tree.Root = new TreeRoot { Root = root, Depth = 1, LeafPages = 1 };
            tree.Dirty = true;
        }

        var leafLevel = Descend(tree, key, out var index, out var exact);
        TouchPath(tree, leafLevel + 1);
        var leaf = DirtyPage(_pathPg[leafLevel]);
        var inline = Node.LeafEntryHeader + key.Length + value.Length <= Db.MaxInlineEntry;

        if (exact)
        {
            var wasOverflow = Node.LeafIsOverflow(leaf, index);
            if (!wasOverflow && inline && Node.LeafValueLength(leaf, index) == value.Length)
            {
                // Same size: overwrite in place, the common update.
                value.CopyTo(leaf.Slice(Node.LeafPayloadOffset(leaf, index), value.Length));
                return;
            }
            if (wasOverflow)
            {
                FreeRun(Node.LeafOverflowPage(leaf, index), PagesFor(Node.LeafValueLength(leaf, index), PageSize));
                tree.Root.OverflowPages -= (ulong)PagesFor(Node.LeafValueLength(leaf, index), PageSize);
            }
            Node.Remove(leaf, index);
            tree.Root.Entries--;
        }

        int size;
        if (inline)
        {
            size = Node.WriteLeafEntry(_raw, key, 0, value.Length, value);
        }
        else
        {
            var pages = PagesFor(value.Length, PageSize);
            var run = AllocRun(pages, out var buf);
            Node.InitOverflow(buf, run, pages);
            value.CopyTo(buf.AsSpan(Node.HeaderSize));
            Span<byte> ptr = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(ptr, run);
            size = Node.WriteLeafEntry(_raw, key, Node.FlagOverflow, value.Length, ptr);
            tree.Root.OverflowPages += (ulong)pages;
            leaf = DirtyPage(_pathPg[leafLevel]);
        }
        tree.Root.Entries++;

        if (Node.FreeSpace(leaf) >= size + 2)
        {
            Node.InsertRaw(leaf, index, _raw.AsSpan(0, size));
            return;
        }
        SplitAndInsert(tree, leafLevel, index, size);
    }

    /// <summary>Walks from the root to the leaf for <paramref name="key"/>, filling the path; returns the leaf's level.</summary>
    private int Descend(TreeState tree, ReadOnlySpan<byte> key, out int index, out bool exact)
    {
        var pg = tree.Root.Root;
        for (var level = 0; level < MaxDepth; level++)
        {
            var p = GetNode(pg);
            _pathPg[level] = pg;
            if (Node.Kind(p) == PageKind.Branch)
            {
                var i = Node.BranchSearch(p, key);
                _pathIx[level] = i;
                pg = Node.BranchChild(p, i);
                continue;
            }
            index = Node.LeafSearch(p, key, out exact);
            _pathIx[level] = index;
            return level;
        }
        throw new CorruptDatabaseException((long)pg, $"tree '{tree.Name}' is deeper than {MaxDepth} levels (a cycle?)");
    }

    /// <summary>
    /// Inserts the entry in <see cref="_raw"/> (<paramref name="size"/> bytes) at <paramref name="index"/> of the full
    /// page at <paramref name="level"/> by splitting it in two, then inserts the separator into the parent (which may
    /// split in turn, up to a new root).
    /// </summary>
    private void SplitAndInsert(TreeState tree, int level, int index, int size)
    {
        var left = DirtyPage(_pathPg[level]);
        var kind = Node.Kind(left);
        var isLeaf = kind == PageKind.Leaf;
        left.CopyTo(_pageCopy);
        var old = _pageCopy.AsSpan();
        var count = Node.Count(old);
        var total = count + 1;

        // Sizes of the logical sequence (old entries with the new one at index), slots included.
        var sum = 0;
        for (var k = 0; k < total; k++)
        {
            var s = (k == index ? size : Node.EntrySize(old, k < index ? k : k - 1)) + 2;
            _sizes[k] = s;
            sum += s;
        }
        var usable = Node.Usable(PageSize);
        int split;
        if (index == count && IsRightmost(level))
        {
            // Appending past the right edge (sequential load): leave the left page full, start the right one.
            split = count;
        }
        else
        {
            split = -1;
            var best = int.MaxValue;
            var leftSum = 0;
            for (var s = 1; s < total; s++)
            {
                leftSum += _sizes[s - 1];
                var rightSum = sum - leftSum;
                if (!isLeaf) rightSum -= KeyLengthAt(old, index, size, s, isLeaf); // the right page's first key moves up
                if (leftSum > usable || rightSum > usable) continue;
                var diff = Math.Abs(leftSum - rightSum);
                if (diff < best)
                {
                    best = diff;
                    split = s;
                }
            }
            if (split < 0) throw new InvalidOperationException("no split point fits (a bug: entry limits are too large for the page size)");
        }

        // The separator is the first key of the right page; copy it out before pages change.
        var sepKey = EntryKey(old, index, size, split, isLeaf);
        sepKey.CopyTo(_sep);
        _sepLength = sepKey.Length;

        var leftPg = _pathPg[level];
        Node.Init(left, kind, leftPg);
        for (var k = 0; k < split; k++) Node.InsertRaw(left, k, EntryRaw(old, index, size, k));

        var rightPg = AllocPage(out var rbuf);
        var right = rbuf.AsSpan(0, PageSize);
        Node.Init(right, kind, rightPg);
        Span<byte> first = stackalloc byte[Node.BranchEntryHeader];
        for (var k = split; k < total; k++)
        {
            var raw = EntryRaw(old, index, size, k);
            if (!isLeaf && k == split)
            {
                // A branch page's first entry has no key: it covers everything below its second key.
                Node.WriteBranchEntry(first, default, BinaryPrimitives.ReadUInt64LittleEndian(raw[2..]));
                Node.InsertRaw(right, 0, first);
            }
            else
            {
                Node.InsertRaw(right, k - split, raw);
            }
        }
        if (isLeaf) tree.Root.LeafPages++;
        else tree.Root.BranchPages++;

        InsertSeparator(tree, level, rightPg);
    }

    /// <summary>Inserts (separator in <see cref="_sep"/>, <paramref name="child"/>) into the parent of <paramref name="level"/>.</summary>
    private void InsertSeparator(TreeState tree, int level, ulong child)
    {
        if (level == 0)
        {
            var oldRoot = _pathPg[0];
            var root = AllocPage(out var buf);
            var page = buf.AsSpan(0, PageSize);
            Node.Init(page, PageKind.Branch, root);
            var n = Node.WriteBranchEntry(_raw, default, oldRoot);
            Node.InsertRaw(page, 0, _raw.AsSpan(0, n));
            n = Node.WriteBranchEntry(_raw, _sep.AsSpan(0, _sepLength), child);
            Node.InsertRaw(page, 1, _raw.AsSpan(0, n));
            tree.Root.Root = root;
            tree.Root.Depth++;
            tree.Root.BranchPages++;
            return;
        }
        var parentLevel = level - 1;
        var parent = DirtyPage(_pathPg[parentLevel]);
        var at = _pathIx[parentLevel] + 1;
        var size = Node.WriteBranchEntry(_raw, _sep.AsSpan(0, _sepLength), child);
        if (Node.FreeSpace(parent) >= size + 2)
        {
            Node.InsertRaw(parent, at, _raw.AsSpan(0, size));
            return;
        }
        SplitAndInsert(tree, parentLevel, at, size);
    }

    private bool IsRightmost(int level)
    {
        for (var l = 0; l < level; l++)
        {
            if (_pathIx[l] != Node.Count(GetNode(_pathPg[l])) - 1) return false;
        }
        return true;
    }

    /// <summary>Raw bytes of logical entry <paramref name="k"/>: the new entry (in _raw) at <paramref name="index"/>, old ones around it.</summary>
    private ReadOnlySpan<byte> EntryRaw(ReadOnlySpan<byte> old, int index, int size, int k)
    {
        if (k == index) return _raw.AsSpan(0, size);
        return Node.RawEntry(old, k < index ? k : k - 1);
    }

    private ReadOnlySpan<byte> EntryKey(ReadOnlySpan<byte> old, int index, int size, int k, bool isLeaf)
    {
        var raw = EntryRaw(old, index, size, k);
        var klen = BinaryPrimitives.ReadUInt16LittleEndian(raw);
        return raw.Slice(isLeaf ? Node.LeafEntryHeader : Node.BranchEntryHeader, klen);
    }

    private int KeyLengthAt(ReadOnlySpan<byte> old, int index, int size, int k, bool isLeaf) => EntryKey(old, index, size, k, isLeaf).Length;

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ThrowKeySize(int length) =>
        throw new ArgumentException($"Key is {length} bytes; keys must be 1 to {Db.MaxKeySize} bytes.");

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static void ThrowValueSize(int length) =>
        throw new ArgumentException($"Value is {length} bytes; values may be at most {Database.MaxValueSize} bytes (64 MiB).");
}
