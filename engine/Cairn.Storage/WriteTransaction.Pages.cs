using System.Buffers;
using System.Buffers.Binary;

namespace Cairn.Storage;

/// <summary>Page allocation, freeing, copy-on-write and the persisted free list.</summary>
public sealed partial class WriteTransaction
{
    // Pages free to use now, sorted descending so the lowest id pops from the end.
    private List<ulong> _pool => _scratch.Pool;
    // Pages this transaction stopped referencing that older readers may still see, split by whether the last
    // durable state may hold them (old) or they were written after it (young: only readers constrain their reuse).
    private List<ulong> _freed => _scratch.Freed;
    private List<ulong> _freedYoung => _scratch.FreedYoung;
    private const uint YoungChunk = 0x8000_0000; // chunk-number bit marking a record of young pages
    private bool _freeExhausted;   // no eligible free-list record is left for this transaction
    private bool _freeBusy;        // inside a free-tree change made by the free list itself: do not load more
    private int _freeVersion;   // bumped whenever _pool or _freed changes (the free-list fixed point watches it)

    private bool IsDirty(ulong pgno) => Dirty!.ContainsKey(pgno);

    private Span<byte> DirtyPage(ulong pgno) => Dirty![pgno].AsSpan(0, PageSize);

    /// <summary>A fresh page for this transaction (reused when the free list has one, else past the end of the file).</summary>
    private ulong AllocPage(out byte[] buffer)
    {
        ulong pgno;
        if (_pool.Count > 0)
        {
            pgno = _pool[^1];
            _pool.RemoveAt(_pool.Count - 1);
            _freeVersion++;
        }
        else
        {
            pgno = Meta.PageCount++;
        }
        buffer = Db.RentPage();
        Dirty!.Add(pgno, buffer);
        return pgno;
    }

    /// <summary>A run of <paramref name="pages"/> consecutive pages for an overflow value.</summary>
    private ulong AllocRun(int pages, out byte[] buffer)
    {
        if (pages == 1) return AllocPage(out buffer);
        ulong pgno = 0;
        // _pool is descending: a run is `pages` consecutive entries each one less than the previous.
        var runEnd = -1;
        for (int i = _pool.Count - 1, len = 1; i > 0; i--)
        {
            len = _pool[i - 1] == _pool[i] + 1 ? len + 1 : 1;
            if (len == pages)
            {
                runEnd = i - 1;
                break;
            }
        }
        if (runEnd >= 0)
        {
            pgno = _pool[runEnd + pages - 1];
            _pool.RemoveRange(runEnd, pages);
            _freeVersion++;
        }
        else
        {
            pgno = Meta.PageCount;
            Meta.PageCount += (ulong)pages;
        }
        buffer = ArrayPool<byte>.Shared.Rent(pages * PageSize);
        Dirty!.Add(pgno, buffer);
        return pgno;
    }

    /// <summary>Stops using <paramref name="pages"/> pages at <paramref name="pgno"/>: back to the pool when this transaction made them, else freed.</summary>
    private void FreeRun(ulong pgno, int pages)
    {
        if (Dirty!.Remove(pgno, out var buf))
        {
            ReturnBuffer(buf);
            for (var i = 0; i < pages; i++) PoolInsert(pgno + (ulong)i);
        }
        else
        {
            for (var i = 0; i < pages; i++)
            {
                var pg = pgno + (ulong)i;
                if (Db.IsWrittenSinceDurable(pg)) _freedYoung.Add(pg);
                else _freed.Add(pg);
            }
        }
        _freeVersion++;
    }

    private void PoolInsert(ulong pgno)
    {
        // Descending order: find the first index whose value is smaller.
        int lo = 0, hi = _pool.Count;
        while (lo < hi)
        {
            var mid = (lo + hi) >> 1;
            if (_pool[mid] > pgno) lo = mid + 1;
            else hi = mid;
        }
        _pool.Insert(lo, pgno);
    }

    private void ReturnBuffer(byte[] buf)
    {
        if (buf.Length == PageSize) Db.ReturnPage(buf);
        else ArrayPool<byte>.Shared.Return(buf);
    }

    /// <summary>
    /// Makes every page on the current path (levels 0..<paramref name="levels"/>-1) a private copy, top-down, so the
    /// parent of each copied page is already private when its child pointer is rewritten.
    /// </summary>
    private void TouchPath(TreeState tree, int levels)
    {
        for (var level = 0; level < levels; level++)
        {
            var pg = _pathPg[level];
            if (IsDirty(pg)) continue;
            var fresh = CopyOnWrite(pg);
            _pathPg[level] = fresh;
            if (level == 0) tree.Root.Root = fresh;
            else Node.SetBranchChild(DirtyPage(_pathPg[level - 1]), _pathIx[level - 1], fresh);
        }
        tree.Dirty = true;
    }

    /// <summary>Copies a clean page to a fresh one, frees the original, returns the copy's number.</summary>
    private ulong CopyOnWrite(ulong pgno)
    {
        var src = GetNode(pgno);
        var fresh = AllocPage(out var buf);
        src.CopyTo(buf);
        Node.SetPageNumber(buf, fresh);
        FreeRun(pgno, 1);
        return fresh;
    }

    private const int FreeKeySize = 12; // u64 txn id, u32 chunk, big-endian so records sort by transaction

    /// <summary>
    /// Tops the pool up to <paramref name="needed"/> pages, one free-list record at a time, before an operation
    /// starts its descent (loading edits the free tree, which shares the path arrays). A record is eligible when no
    /// reader can still see its pages: id ≤ the oldest snapshot in use, and for pages the last durable state may hold,
    /// id ≤ the last durable commit too. Only what is needed is loaded, so a commit's cost follows the pages it
    /// touches, not the length of the free list.
    /// </summary>
    private void EnsurePool(int needed)
    {
        if (_freeBusy) return;
        _freeBusy = true;
        try
        {
            while (_pool.Count < needed && !_freeExhausted && _freeTree.Root.Root != 0) LoadOneRecord();
        }
        finally
        {
            _freeBusy = false;
        }
    }

    private byte[] _freeKey => _scratch.FreeKey;

    private void LoadOneRecord()
    {
        var found = false;
        var c = RentCursor(_freeTree);
        for (var ok = c.First(); ok; ok = c.Next())
        {
            var key = c.Key;
            if (key.Length != FreeKeySize) throw new CorruptDatabaseException((long)_freeTree.Root.Root, "free-list record with a malformed key");
            var txn = BinaryPrimitives.ReadUInt64BigEndian(key);
            if (txn > _oldestReader) break;
            var young = (BinaryPrimitives.ReadUInt32BigEndian(key[8..]) & YoungChunk) != 0;
            if (!young && txn > _oldestDurable) continue; // the last durable state may still hold these pages
            var value = c.Value;
            if (value.Length % 8 != 0) throw new CorruptDatabaseException((long)_freeTree.Root.Root, "free-list record with a malformed value");
            for (var i = 0; i < value.Length; i += 8)
            {
                var pg = BinaryPrimitives.ReadUInt64LittleEndian(value[i..]);
                if (pg < 2 || pg >= Meta.PageCount) throw new CorruptDatabaseException((long)pg, "listed as free but lies outside the file");
                PoolInsert(pg);
            }
            key.CopyTo(_freeKey);
            found = true;
            break;
        }
        ReturnCursor(c);
        if (!found)
        {
            _freeExhausted = true;
            return;
        }
        _freeVersion++;
        Delete(_freeTree, _freeKey);
    }

    /// <summary>
    /// Persists the free list: the pages this commit freed under this transaction's id — those the last durable state
    /// may hold (reusable once no reader and no durable state needs them) apart from those written since (reusable once
    /// no reader needs them) — and the pool pages left unused under id 0 (reusable at once, as they already were).
    /// Writing the records can itself take pages from the pool or free pages, so it repeats until the records describe
    /// the state they leave behind (a fixed point, reached in two or three rounds: pages only ever leave the pool
    /// here). Cost is proportional to the pages this commit touched, not to the size of the file.
    /// </summary>
    private void SaveFreeList()
    {
        _freeBusy = true; // writing the records must not load more of them
        var sorted = _scratch.FreeSorted;  // the writer's, reused by every commit
        byte[]? value = _scratch.FreeValue;
        int writtenFreed = 0, writtenYoung = 0, writtenPool = 0;
        for (var round = 0; ; round++)
        {
            if (round > 1000) throw new InvalidOperationException("free-list save did not converge (a bug: please report it)");
            var version = _freeVersion;
            sorted.Clear();
            sorted.AddRange(_freed);
            sorted.Sort();
            WriteRecords(Id, 0, sorted, ref writtenFreed, ref value);
            sorted.Clear();
            sorted.AddRange(_freedYoung);
            sorted.Sort();
            WriteRecords(Id, YoungChunk, sorted, ref writtenYoung, ref value);
            sorted.Clear();
            sorted.AddRange(_pool);
            sorted.Sort();
            WriteRecords(0, 0, sorted, ref writtenPool, ref value);
            if (version == _freeVersion) break;
        }
        _freeBusy = false;
        _scratch.FreeValue = value;
    }

    private void WriteRecords(ulong txn, uint chunkFlag, List<ulong> pages, ref int written, ref byte[]? value)
    {
        Span<byte> key = stackalloc byte[FreeKeySize];
        BinaryPrimitives.WriteUInt64BigEndian(key, txn);
        var perChunk = Math.Max(1, (Db.MaxInlineEntry - Node.LeafEntryHeader - FreeKeySize) / 8);
        if (value is null || value.Length < perChunk * 8) value = new byte[perChunk * 8];
        // Never fewer chunks than an earlier round wrote: deleting one could free a page, which needs one more
        // chunk, and so on for ever. A trailing chunk may be short or empty.
        var chunks = Math.Max(written, (pages.Count + perChunk - 1) / perChunk);
        for (var c = 0; c < chunks; c++)
        {
            var n = Math.Clamp(pages.Count - c * perChunk, 0, perChunk);
            for (var i = 0; i < n; i++) BinaryPrimitives.WriteUInt64LittleEndian(value.AsSpan(i * 8), pages[c * perChunk + i]);
            BinaryPrimitives.WriteUInt32BigEndian(key[8..], (uint)c | chunkFlag);
            Put(_freeTree, key, value.AsSpan(0, n * 8));
        }
        written = chunks;
    }
}
