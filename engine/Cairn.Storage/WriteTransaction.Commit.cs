namespace Cairn.Storage;

/// <summary>
/// Commit, in the order the bytes reach the disk: update the catalog, save the free list, grow the file, write the
/// pages sorted by number, sync, write the meta record, sync, publish to readers.
/// </summary>
public sealed partial class WriteTransaction
{
    private List<ReadOnlyMemory<byte>> _gather => _scratch.Gather;
    private List<ulong> _written => _scratch.Written;

    /// <summary>Commits, durably when <see cref="StorageOptions.SyncOnCommit"/> is set (the default).</summary>
    public void Commit() => Commit(Db.Options.SyncOnCommit);

    /// <summary>
    /// Commits. When <paramref name="durable"/>, the commit survives a power cut once this returns, and so does every
    /// commit before it. When not, it is visible to readers at once and becomes durable at the next durable commit or
    /// <see cref="Database.Sync"/>; a crash before that returns the database to the last durable commit, intact.
    /// A durable commit of a transaction that changed nothing is a barrier: it makes the earlier commits made without
    /// a sync durable (as <see cref="Database.Sync"/> does), and costs nothing when they already are.
    /// </summary>
    /// <exception cref="IOException">The disk refused a write or a sync. Nothing is committed; the database stays at its last commit and usable.</exception>
    public void Commit(bool durable)
    {
        ThrowIfFinished();
        Span<byte> root = stackalloc byte[TreeRoot.Size];
        try
        {
            foreach (var t in OpenTrees)
            {
                if (!t.Dirty) continue;
                if (t.Deleted) Delete(Catalog, t.NameBytes);
                else
                {
                    t.Root.Write(root);
                    Put(Catalog, t.NameBytes, root);
                }
            }
            if (Dirty!.Count == 0 && _freed.Count == 0 && _freedYoung.Count == 0)
            {
                // Nothing changed: no new commit, but a durable one still promises that everything before it is durable.
                if (durable) Db.MakeDurable();
                Finish();
                return;
            }
            SaveFreeList();

            Meta.TxnId = Id;
            Meta.Catalog = Catalog.Root;
            Meta.FreeTree = _freeTree.Root;
            Map = Db.EnsureCapacity(Meta.PageCount, Map);
            WritePages();
            Db.Options.Failpoint?.Invoke(Failpoints.BeforeDataSync);
            if (!durable) Db.MarkWrittenSinceDurable(_written);
            Db.Publish(Meta, durable);
        }
        catch
        {
            Finish();
            throw;
        }
        Finish();
    }

    private void WritePages()
    {
        var dirty = Dirty!;
        if (_scratch.PageNumbers.Length < dirty.Count) _scratch.PageNumbers = new ulong[Math.Max(dirty.Count, _scratch.PageNumbers.Length * 2)];
        dirty.Keys.CopyTo(_scratch.PageNumbers, 0);
        var pgnos = _scratch.PageNumbers.AsSpan(0, dirty.Count);
        pgnos.Sort();
        var seed = Db.ChecksumSeed;
        var file = Db.File;
        var cipher = Db.Cipher;
        // Every page about to be written, run interiors included (before sealing hides the page kind).
        _written.Clear();
        foreach (var pg in pgnos)
        {
            var b = dirty[pg];
            var n = b[0] == (byte)PageKind.Overflow ? Node.RunPages(b) : 1;
            for (var i = 0; i < n; i++) _written.Add(pg + (ulong)i);
        }
        // Pages about to be rewritten leave the cache first: their numbers were free, so no reader holds them.
        Db.Cache?.Invalidate(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_written));
        _gather.Clear();
        ulong runStart = 0, next = 0;
        long bytes = 0;
        foreach (var pg in pgnos)
        {
            var buf = dirty[pg];
            var pages = buf[0] == (byte)PageKind.Overflow ? Node.RunPages(buf) : 1;
            var span = buf.AsSpan(0, pages * PageSize);
            if (cipher is not null) cipher.Seal(span, pg);
            else
            {
                PageSeal.Seal(span, seed);
                for (var i = 0; i < pages; i++) Map.ClearVerified(pg + (ulong)i);
            }
            if (_gather.Count > 0 && (pg != next || _gather.Count >= 512 || bytes >= 8 << 20))
            {
                file.Write(_gather, (long)runStart * PageSize);
                _gather.Clear();
                bytes = 0;
            }
            if (_gather.Count == 0) runStart = pg;
            _gather.Add(buf.AsMemory(0, pages * PageSize));
            bytes += pages * PageSize;
            next = pg + (ulong)pages;
        }
        if (_gather.Count > 0) file.Write(_gather, (long)runStart * PageSize);
        _gather.Clear();
    }
}
