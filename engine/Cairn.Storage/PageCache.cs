using System.Security.Cryptography;

namespace Cairn.Storage;

/// <summary>
/// Plaintext of encrypted pages, decrypted once from the mapping and kept within a byte budget (the autoscaler's
/// lever). A hit is one array read by page number: lock-free, allocation-free, no object between the table and the
/// page. Eviction is CLOCK. A buffer that leaves the cache may still be in use by a transaction that found it
/// earlier, so it waits in limbo until every transaction that began before it left has ended (epochs), and is wiped
/// before reuse.
/// </summary>
internal sealed unsafe class PageCache : IDisposable
{
    private readonly Database _db;
    private readonly PageCipher _cipher;
    private readonly int _pageSize;
    private long _budget;

    // By page number: the plaintext of the page or run starting there (its length is the run's page count times the
    // page size, so a lookup checks the length it expects). Replaced by a larger array under _gate.
    private byte[]?[] _table = new byte[]?[1024];
    private readonly Lock _gate = new();                  // guards everything below
    private byte[] _referenced = new byte[1024];          // CLOCK bit per page number (benignly racy)
    private int[] _slot = new int[1024];                  // position of a resident page number in _resident
    private readonly List<ulong> _resident = [];
    private int _hand;
    private long _bytes;
    private long _epoch = 1;
    private readonly Queue<(long Epoch, byte[] Buffer)> _limbo = new();
    private readonly Stack<byte[]> _spare = new();        // wiped single-page buffers, guarded by itself
    private long _limboBytes;
    private int _limboCount;

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
        set { Interlocked.Exchange(ref _budget, value); lock (_gate) EvictOverBudget(ulong.MaxValue); }
    }

    /// <summary>The plaintext of the page or run at <paramref name="pgno"/>, decrypting it on a miss.</summary>
    public ReadOnlySpan<byte> Get(ulong pgno, int pages, byte* mapBase)
    {
        var table = Volatile.Read(ref _table);
        if (pgno < (ulong)table.Length)
        {
            var buffer = Volatile.Read(ref table[pgno]);
            if (buffer is not null && buffer.Length == pages * _pageSize)
            {
                var referenced = _referenced;
                if (pgno < (ulong)referenced.Length && referenced[pgno] == 0) referenced[pgno] = 1;
                return buffer;
            }
        }
        return Load(pgno, pages, mapBase);
    }

    private ReadOnlySpan<byte> Load(ulong pgno, int pages, byte* mapBase)
    {
        var length = pages * _pageSize;
        var buffer = Rent(length);
        var sealedRun = new ReadOnlySpan<byte>(mapBase + (long)pgno * _pageSize, length);
        if (!_cipher.TryOpen(sealedRun, buffer, pgno))
        {
            Return(buffer);
            throw new CorruptDatabaseException((long)pgno, pages == 1
                ? "authentication tag mismatch (the page is damaged, misplaced, from another file, or not a page of this size)"
                : $"authentication tag mismatch on an overflow run of {pages} pages");
        }
        string? problem = Node.PageNumber(buffer) != pgno ? $"holds page {Node.PageNumber(buffer)}"
            : Node.Kind(buffer) == PageKind.Overflow ? (Node.RunPages(buffer) != pages ? "overflow run length differs from its reference" : null)
            : pages != 1 ? "is referenced as an overflow run but is a tree page"
            : Node.CheckStructure(buffer);
        if (problem is not null)
        {
            Return(buffer);
            throw new CorruptDatabaseException((long)pgno, problem);
        }
        lock (_gate)
        {
            if (pgno >= (ulong)_table.Length) Grow(pgno);
            var existing = _table[pgno];
            if (existing is not null)
            {
                if (existing.Length == length)
                {
                    Return(buffer); // another reader decrypted it first; ours was never seen
                    return existing;
                }
                Retire(pgno);
            }
            _slot[pgno] = _resident.Count;
            _resident.Add(pgno);
            _referenced[pgno] = 1;
            _bytes += length;
            Volatile.Write(ref _table[pgno], buffer);
            EvictOverBudget(keep: pgno);
            return buffer;
        }
    }

    private void Grow(ulong pgno)
    {
        var size = Math.Max((long)pgno + 1, _table.Length * 2L);
        var table = new byte[]?[size];
        Array.Copy(_table, table, _table.Length);
        var referenced = new byte[size];
        Array.Copy(_referenced, referenced, _referenced.Length);
        var slot = new int[size];
        Array.Copy(_slot, slot, _slot.Length);
        _referenced = referenced;
        _slot = slot;
        Volatile.Write(ref _table, table);
    }

    /// <summary>Drops pages the writer is about to rewrite: their numbers were free, so no transaction can be reading them.</summary>
    public void Invalidate(ReadOnlySpan<ulong> pgnos)
    {
        lock (_gate)
        {
            foreach (var pg in pgnos)
            {
                if (pg < (ulong)_table.Length && _table[pg] is not null) Retire(pg);
            }
        }
    }

    private void EvictOverBudget(ulong keep)
    {
        var sweeps = 0;
        var floor = keep == ulong.MaxValue ? 0 : 1;
        while (_bytes > Interlocked.Read(ref _budget) && _resident.Count > floor && sweeps < 4 * _resident.Count + 8)
        {
            sweeps++;
            if (_hand >= _resident.Count) _hand = 0;
            var pg = _resident[_hand];
            if (pg == keep || _referenced[pg] != 0)
            {
                _referenced[pg] = 0;
                _hand++;
                continue;
            }
            Retire(pg);
        }
        Recycle();
    }

    /// <summary>Takes a page out of the cache; its buffer waits until no transaction that might hold it is left.</summary>
    private void Retire(ulong pgno)
    {
        var buffer = _table[pgno]!;
        Volatile.Write(ref _table[pgno], null);
        var at = _slot[pgno];
        var last = _resident[^1];
        _resident[at] = last;
        _slot[last] = at;
        _resident.RemoveAt(_resident.Count - 1);
        _bytes -= buffer.Length;
        _limboBytes += buffer.Length;
        _limbo.Enqueue((Interlocked.Increment(ref _epoch), buffer));
        Volatile.Write(ref _limboCount, _limbo.Count);
    }

    /// <summary>Called when a transaction ends: buffers it was holding back may now be wiped and reused.</summary>
    public void RecycleIfPending()
    {
        if (Volatile.Read(ref _limboCount) == 0) return;
        lock (_gate) Recycle();
    }

    private void Recycle()
    {
        if (_limbo.Count == 0) return;
        var oldest = _db.OldestTransactionEpoch();
        while (_limbo.TryPeek(out var item) && item.Epoch <= oldest)
        {
            _limbo.Dequeue();
            _limboBytes -= item.Buffer.Length;
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
        return GC.AllocateUninitializedArray<byte>(length); // runs: exact length, so the table can tell them apart
    }

    /// <summary>Wipes plaintext and keeps single-page buffers for reuse.</summary>
    private void Return(byte[] buffer)
    {
        CryptographicOperations.ZeroMemory(buffer);
        if (buffer.Length != _pageSize) return;
        lock (_spare)
        {
            if (_spare.Count < 1024) _spare.Push(buffer);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            foreach (var pg in _resident) CryptographicOperations.ZeroMemory(_table[pg]);
            foreach (var (_, b) in _limbo) CryptographicOperations.ZeroMemory(b);
            _resident.Clear();
            _limbo.Clear();
            Array.Clear(_table);
            _bytes = _limboBytes = 0;
        }
    }
}
