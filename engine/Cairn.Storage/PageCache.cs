using System.Buffers;
using System.Security.Cryptography;

namespace Cairn.Storage;

/// <summary>
/// Plaintext of encrypted pages, decrypted once from the mapping and kept within a byte budget (the autoscaler's
/// lever). Lookup is one array read by page number, lock-free and allocation-free. Eviction is CLOCK. A buffer that
/// leaves the cache may still be in use by a transaction that found it earlier, so it waits in limbo until every
/// transaction that began before it left has ended (epochs), and is wiped before reuse.
/// </summary>
internal sealed unsafe class PageCache : IDisposable
{
    private sealed class Entry(byte[] buffer, ulong pgno, int pages)
    {
        public readonly byte[] Buffer = buffer;
        public readonly ulong Pgno = pgno;
        public readonly int Pages = pages;
        public int Index;          // position in _resident
        public volatile bool Referenced = true;
    }

    private readonly Database _db;
    private readonly PageCipher _cipher;
    private readonly int _pageSize;
    private long _budget;

    private Entry?[] _table = new Entry?[1024];           // by page number; replaced (grown) under _gate
    private readonly Lock _gate = new();                  // guards everything below
    private readonly List<Entry> _resident = [];
    private int _hand;
    private long _bytes;
    private long _epoch = 1;
    private readonly Queue<(long Epoch, byte[] Buffer, int Length)> _limbo = new();
    private readonly Stack<byte[]> _spare = new();        // wiped single-page buffers, guarded by itself
    private long _limboBytes;

    public PageCache(Database db, PageCipher cipher, long budget)
    {
        _db = db;
        _cipher = cipher;
        _pageSize = db.PageSize;
        _budget = budget;
    }

    /// <summary>The current epoch; a transaction records it when it begins.</summary>
    public long Epoch => Interlocked.Read(ref _epoch);

    /// <summary>Plaintext bytes held: resident pages plus those waiting for old transactions to end.</summary>
    public long Bytes { get { lock (_gate) return _bytes + _limboBytes; } }

    public long Budget
    {
        get => Interlocked.Read(ref _budget);
        set { Interlocked.Exchange(ref _budget, value); lock (_gate) EvictOverBudget(); }
    }

    /// <summary>The plaintext of the page or run at <paramref name="pgno"/>, decrypting it on a miss.</summary>
    public ReadOnlySpan<byte> Get(ulong pgno, int pages, byte* mapBase)
    {
        var table = Volatile.Read(ref _table);
        if (pgno < (ulong)table.Length)
        {
            var e = Volatile.Read(ref table[pgno]);
            if (e is not null && e.Pages == pages)
            {
                if (!e.Referenced) e.Referenced = true;
                return new ReadOnlySpan<byte>(e.Buffer, 0, pages * _pageSize);
            }
        }
        return Load(pgno, pages, mapBase);
    }

    private ReadOnlySpan<byte> Load(ulong pgno, int pages, byte* mapBase)
    {
        var length = pages * _pageSize;
        var buffer = Rent(length);
        var sealedRun = new ReadOnlySpan<byte>(mapBase + (long)pgno * _pageSize, length);
        if (!_cipher.TryOpen(sealedRun, buffer.AsSpan(0, length), pgno))
        {
            Return(buffer);
            throw new CorruptDatabaseException((long)pgno, pages == 1
                ? "authentication tag mismatch (the page is damaged, misplaced, from another file, or not a page of this size)"
                : $"authentication tag mismatch on an overflow run of {pages} pages");
        }
        var plain = buffer.AsSpan(0, length);
        string? problem = Node.PageNumber(plain) != pgno ? $"holds page {Node.PageNumber(plain)}"
            : Node.Kind(plain) == PageKind.Overflow ? (Node.RunPages(plain) != pages ? "overflow run length differs from its reference" : null)
            : pages != 1 ? "is referenced as an overflow run but is a tree page"
            : Node.CheckStructure(plain);
        if (problem is not null)
        {
            Return(buffer);
            throw new CorruptDatabaseException((long)pgno, problem);
        }
        lock (_gate)
        {
            if (pgno >= (ulong)_table.Length)
            {
                var bigger = new Entry?[Math.Max((long)pgno + 1, _table.Length * 2L)];
                Array.Copy(_table, bigger, _table.Length);
                Volatile.Write(ref _table, bigger);
            }
            var existing = _table[pgno];
            if (existing is not null)
            {
                if (existing.Pages == pages)
                {
                    Return(buffer); // another reader decrypted it first; ours was never seen
                    return new ReadOnlySpan<byte>(existing.Buffer, 0, length);
                }
                Retire(existing);
            }
            var entry = new Entry(buffer, pgno, pages) { Index = _resident.Count };
            _resident.Add(entry);
            _bytes += length;
            Volatile.Write(ref _table[pgno], entry);
            EvictOverBudget(keep: entry);
            return new ReadOnlySpan<byte>(buffer, 0, length);
        }
    }

    /// <summary>Drops pages the writer is about to rewrite: their numbers were free, so no transaction can be reading them.</summary>
    public void Invalidate(ReadOnlySpan<ulong> pgnos)
    {
        lock (_gate)
        {
            var table = _table;
            foreach (var pg in pgnos)
            {
                if (pg < (ulong)table.Length && table[pg] is { } e) Retire(e);
            }
        }
    }

    private void EvictOverBudget(Entry? keep = null)
    {
        var sweeps = 0;
        while (_bytes > Interlocked.Read(ref _budget) && _resident.Count > (keep is null ? 0 : 1) && sweeps < 4 * _resident.Count + 8)
        {
            sweeps++;
            if (_hand >= _resident.Count) _hand = 0;
            var e = _resident[_hand];
            if (e == keep || e.Referenced)
            {
                e.Referenced = false;
                _hand++;
                continue;
            }
            Retire(e);
        }
        Recycle();
    }

    /// <summary>Takes an entry out of the cache; its buffer waits until no transaction that might hold it is left.</summary>
    private void Retire(Entry e)
    {
        Volatile.Write(ref _table[e.Pgno], null);
        var last = _resident[^1];
        _resident[e.Index] = last;
        last.Index = e.Index;
        _resident.RemoveAt(_resident.Count - 1);
        var length = e.Pages * _pageSize;
        _bytes -= length;
        _limboBytes += length;
        _limbo.Enqueue((Interlocked.Increment(ref _epoch), e.Buffer, length));
        Volatile.Write(ref _limboCount, _limbo.Count);
    }

    /// <summary>Called when a transaction ends: buffers it was holding back may now be wiped and reused.</summary>
    public void RecycleIfPending()
    {
        if (Volatile.Read(ref _limboCount) == 0) return;
        lock (_gate) Recycle();
    }

    private int _limboCount;

    private void Recycle()
    {
        if (_limbo.Count == 0) return;
        var oldest = _db.OldestTransactionEpoch();
        while (_limbo.TryPeek(out var item) && item.Epoch <= oldest)
        {
            _limbo.Dequeue();
            _limboBytes -= item.Length;
            Return(item.Buffer);
        }
        Volatile.Write(ref _limboCount, _limbo.Count);
    }

    private byte[] Rent(int length)
    {
        if (length == _pageSize)
        {
            lock (_spare)
            {
                if (_spare.TryPop(out var b)) return b;
            }
            return GC.AllocateUninitializedArray<byte>(_pageSize, pinned: true);
        }
        return ArrayPool<byte>.Shared.Rent(length);
    }

    /// <summary>Wipes plaintext and keeps or gives back the buffer.</summary>
    private void Return(byte[] buffer)
    {
        CryptographicOperations.ZeroMemory(buffer);
        if (buffer.Length == _pageSize)
        {
            lock (_spare)
            {
                if (_spare.Count < 1024) _spare.Push(buffer);
            }
        }
        else
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var e in _resident) CryptographicOperations.ZeroMemory(e.Buffer);
            foreach (var (_, b, _) in _limbo) CryptographicOperations.ZeroMemory(b);
            _resident.Clear();
            _limbo.Clear();
            Array.Clear(_table);
            _bytes = _limboBytes = 0;
        }
    }
}
