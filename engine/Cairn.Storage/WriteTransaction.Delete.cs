
namespace Cairn.Storage;

/// <summary>Delete: remove from the leaf, then merge underfull pages into a sibling and shrink the root.</summary>
public sealed partial class WriteTransaction
{
    internal bool Delete(TreeState tree, ReadOnlySpan<byte> key)
    {
        ThrowIfFinished();
        if (key.Length == 0 || key.Length > Db.MaxKeySize) ThrowKeySize(key.Length);
        if (tree.Root.Root == 0) return false;
        EnsurePool(2 * (tree.Root.Depth + 1)); // the path and a sibling per level
        var leafLevel = Descend(tree, key, out var index, out var exact);
        if (!exact) return false;
        Version++;
        TouchPath(tree, leafLevel + 1);
        var leaf = DirtyPage(_pathPg[leafLevel]);
        if (Node.LeafIsOverflow(leaf, index))
        {
            var pages = PagesFor(Node.LeafValueLength(leaf, index), PageSize);
            FreeRun(Node.LeafOverflowPage(leaf, index), pages);
            tree.Root.OverflowPages -= (ulong)pages;
        }
        Node.Remove(leaf, index);
        tree.Root.Entries--;
        Rebalance(tree, leafLevel);
        return true;
    }

    /// <summary>
    /// After a removal at <paramref name="level"/>: an empty page leaves its parent; a page under a quarter full is
    /// merged into a sibling when both fit in one page. The root shrinks when it has a single child or nothing.
    /// </summary>
    private void Rebalance(TreeState tree, int level)
    {
        var pg = _pathPg[level];
        var page = DirtyPage(pg);
        var isLeaf = Node.Kind(page) == PageKind.Leaf;
        var count = Node.Count(page);

        if (level == 0)
        {
            if (isLeaf && count == 0)
            {
                FreeRun(pg, 1);
                tree.Root = default;
            }
            else if (!isLeaf && count == 1)
            {
                var child = Node.BranchChild(page, 0);
                FreeRun(pg, 1);
                tree.Root.Root = child;
                tree.Root.Depth--;
                tree.Root.BranchPages--;
            }
            return;
        }

        var usable = Node.Usable(PageSize);
        if (count > 0 && Node.Used(page) >= usable / 4) return;

        var parentLevel = level - 1;
        var parent = DirtyPage(_pathPg[parentLevel]);
        var at = _pathIx[parentLevel];
        if (count == 0)
        {
            FreeRun(pg, 1);
            if (isLeaf) tree.Root.LeafPages--;
            else tree.Root.BranchPages--;
            RemoveChild(parent, at);
            Rebalance(tree, parentLevel);
            return;
        }
        if (Node.Count(parent) < 2) return; // no sibling to merge with

        // Merge the right page of a sibling pair into the left one.
        var leftAt = at > 0 ? at - 1 : at;
        var leftPg = Node.BranchChild(parent, leftAt);
        var rightPg = Node.BranchChild(parent, leftAt + 1);
        var sep = Node.BranchKey(parent, leftAt + 1);
        var need = Node.Used(GetNode(leftPg)) + Node.Used(GetNode(rightPg)) + (isLeaf ? 0 : sep.Length);
        if (need > usable) return;
        sep.CopyTo(_sep);
        _sepLength = sep.Length;

        if (!IsDirty(leftPg))
        {
            leftPg = CopyOnWrite(leftPg);
            Node.SetBranchChild(parent, leftAt, leftPg);
        }
        var left = DirtyPage(leftPg);
        var right = GetNode(rightPg);
        var rightCount = Node.Count(right);
        for (var k = 0; k < rightCount; k++)
        {
            if (!isLeaf && k == 0)
            {
                // The right page's keyless first entry takes the separator that bounded it in the parent.
                var n = Node.WriteBranchEntry(_raw, _sep.AsSpan(0, _sepLength), Node.BranchChild(right, 0));
                Node.InsertRaw(left, Node.Count(left), _raw.AsSpan(0, n));
            }
            else
            {
                Node.InsertRaw(left, Node.Count(left), Node.RawEntry(right, k));
            }
        }
        FreeRun(rightPg, 1);
        if (isLeaf) tree.Root.LeafPages--;
        else tree.Root.BranchPages--;
        RemoveChild(parent, leftAt + 1);
        Rebalance(tree, parentLevel);
    }

    /// <summary>Removes child entry <paramref name="at"/> from a branch page, keeping its first entry keyless.</summary>
    private void RemoveChild(Span<byte> parent, int at)
    {
        Node.Remove(parent, at);
        if (at == 0 && Node.Count(parent) > 0 && Node.BranchKey(parent, 0).Length > 0)
        {
            var child = Node.BranchChild(parent, 0);
            Node.Remove(parent, 0);
            Span<byte> first = stackalloc byte[Node.BranchEntryHeader];
            Node.WriteBranchEntry(first, default, child);
            Node.InsertRaw(parent, 0, first);
        }
    }
}
