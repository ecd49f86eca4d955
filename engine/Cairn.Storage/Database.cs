using System.Buffers;
using System.Security.Cryptography;
using Cairn.Crypto;

namespace Cairn.Storage;

/// <summary>
/// An embedded database: one file of B+trees, one writer at a time, any number of readers that never block it.
/// Open it with <see cref="Open"/>, read in <see cref="BeginRead"/>, write in <see cref="BeginWrite()"/>.
/// </summary>
public sealed partial class Database : IDisposable
{
    private readonly IPageFile _file;
    private readonly SemaphoreSlim _writer = new(1, 1);

    // Guards _current, _durable, _mapping swaps and the reader table.
    private readonly Lock _lock = new();
    private MetaState _current;           // the latest commit, what new readers see
    private MetaState _durable;           // the latest commit whose meta record is on disk and synced
    private int _durableSlot;             // meta page (0 or 1) holding _durable; the next durable write goes to the other
    private Mapping _mapping;
    private ulong[] _readerTxn = new ulong[16]; // snapshot of each reader slot; 0 = free
    private long[] _readerEpoch = new long[16]; // page-cache epoch at which each reader began
    private long _writerEpoch = long.MaxValue;  // same for the writer; MaxValue = no writer
    private int _readers;
    private bool _disposed;

    private readonly Stack<byte[]> _pageBuffers = new();   // dirty-page buffers kept between write transactions
    private WriterScratch? _scratch;

    internal WriterScratch Scratch => _scratch ??= new WriterScratch(PageSize);

    private Database(string path, IPageFile file, StorageOptions options, MetaState meta, int slot, MetaState other, PageCipher? cipher)
    {
        Cipher = cipher;
        _slotMeta[slot] = meta;
        _slotMeta[slot ^ 1] = other;
        Path = path;
        Options = options;
        _file = file;
        _current = meta;
        _durable = meta;
        _durableSlot = slot;
        PageSize = meta.PageSize;
        ChecksumSeed = meta.ChecksumSeed;
        MaxKeySize = Math.Max(1024, PageSize / 4 - 32);
        MaxInlineEntry = Node.Usable(PageSize) / 2 - 2;
        if (cipher is not null) Cache = new PageCache(this, cipher, options.PageCacheBytes);
        var capacity = Math.Max(options.MapReserveBytes, RoundUp(file.Length, 1L << 20));
        _mapping = Mapping.Create(file.Handle, capacity, PageSize);
    }

    /// <summary>The largest value accepted, in bytes (64 MiB).</summary>
    public const int MaxValueSize = 64 << 20;

    /// <summary>The file this database lives in.</summary>
    public string Path { get; }

    /// <summary>The options it was opened with.</summary>
    public StorageOptions Options { get; }

    /// <summary>Page size, fixed when the file was created.</summary>
    public int PageSize { get; }

    /// <summary>The longest key accepted, in bytes (at least 1 KiB; larger pages allow more).</summary>
    public int MaxKeySize { get; }

    internal int MaxInlineEntry { get; }

    internal ulong ChecksumSeed { get; }

    internal IPageFile File => _file;

    internal PageCipher? Cipher { get; }

    internal PageCache? Cache { get; }

    /// <summary>True when every page is sealed with AES-256-GCM.</summary>
    public bool IsEncrypted => Cipher is not null;

    /// <summary>Bytes below the high-water mark of the latest commit: pages in use plus free pages waiting for reuse.</summary>
    public long DataSize { get { lock (_lock) return (long)_current.PageCount * PageSize; } }

    /// <summary>Plaintext bytes the page cache holds now (0 when not encrypted).</summary>
    public long PageCacheBytes => Cache?.Bytes ?? 0;

    /// <summary>The page cache's budget in bytes; raise or lower it while open (the autoscaler's lever).</summary>
    public long PageCacheBudget
    {
        get => Cache?.Budget ?? 0;
        set { if (Cache is not null) Cache.Budget = Math.Max(16L * PageSize, value); }
    }

    private readonly List<string> _warnings = [];

    /// <summary>Warnings raised at open (also passed to <see cref="StorageOptions.Warning"/>).</summary>
    public IReadOnlyList<string> Warnings => _warnings;

    /// <summary>Id of the latest committed transaction.</summary>
    public ulong LastCommittedTransaction { get { lock (_lock) return _current.TxnId; } }

    /// <summary>
    /// Id of the latest transaction known durable: its meta record is on disk and synced, so it and every commit before
    /// it survive a crash or a power cut. Equal to <see cref="LastCommittedTransaction"/> unless commits were made without
    /// a sync since (see <see cref="Sync"/>).
    /// </summary>
    public ulong LastDurableTransaction { get { lock (_lock) return _durable.TxnId; } }

    /// <summary>Opens the database at <paramref name="path"/>, creating it when missing (see <see cref="StorageOptions.CreateIfMissing"/>).</summary>
    /// <exception cref="CorruptDatabaseException">The file is damaged; the message names the page.</exception>
    /// <exception cref="IncompatibleFormatException">The file is not a Cairn database, or has another format version.</exception>
    /// <exception cref="DatabaseLockedException">Another process or instance has it open.</exception>
    public static Database Open(string path, StorageOptions? options = null)
    {
        options ??= new StorageOptions();
        options.Validate();
        ArgumentException.ThrowIfNullOrEmpty(path);
        var stale = RemoveStaleCreations(path);
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            if (!options.CreateIfMissing) throw new FileNotFoundException($"No database at {path} and CreateIfMissing is false.", path);
            Create(path, options.PageSizeOrDefault, options.MasterKey, options.Failpoint);
        }
        IPageFile file = OsPageFile.Open(path);
        if (options.FileWrapper is not null) file = options.FileWrapper(file);
        PageCipher? cipher = null;
        try
        {
            var (meta, slot, other) = ReadMeta(file, path, options);
            cipher = OpenCipher(path, meta, options);
            var db = new Database(path, file, options, meta, slot, other, cipher);
            if (stale.Count > 0)
            {
                db.Warn($"removed {stale.Count} file(s) left by a database creation that a crash interrupted: {string.Join(", ", stale)}");
            }
            if (options.MasterKey is KeyFileProvider kf && kf.IsInside(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!))
            {
                db.Warn($"the key file {kf.Path} sits beside the data it protects: anyone who copies the directory has the key. Keep it elsewhere.");
            }
            return db;
        }
        catch
        {
            cipher?.Dispose();
            file.Dispose();
            throw;
        }
    }

    private void Warn(string message)
    {
        _warnings.Add(message);
        Options.Warning?.Invoke(message);
    }

    internal static void SyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux()) return;
        var fd = Native.Open(dir, Native.ORdOnly | Native.ODirectory);
        if (fd < 0) return; // best effort: some file systems refuse to open directories
        _ = Native.FSync(fd);
        _ = Native.Close(fd);
    }

    /// <summary>Starts a read-only transaction that sees the latest commit for its whole life. Never blocks.</summary>
    public ReadTransaction BeginRead()
    {
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var slot = RegisterReader(_current.TxnId, Cache?.Epoch ?? 0);
            _ = _mapping.TryAcquire();
            return new ReadTransaction(this, _current, _mapping, slot);
        }
    }

    /// <summary>Starts the write transaction, waiting while another one is open (there is one writer at a time).</summary>
    public WriteTransaction BeginWrite() => BeginWrite(null);

    /// <summary>
    /// Starts the write transaction in <paramref name="reuse"/> — a transaction of this database that has been
    /// committed or disposed — instead of a new object, so that a writer that commits again and again allocates
    /// nothing (as LMDB's <c>mdb_txn_renew</c> does for readers). The caller owns the object: whatever it held from
    /// the earlier transaction (trees, cursors) is stale, and it must not hand the object to anyone else. Null starts
    /// a new one, as <see cref="BeginWrite()"/> does.
    /// </summary>
    /// <exception cref="ArgumentException"><paramref name="reuse"/> belongs to another database, or is still open.</exception>
    public WriteTransaction BeginWrite(WriteTransaction? reuse)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (reuse is not null)
        {
            if (reuse.Db != this) throw new ArgumentException("The transaction to reuse belongs to another database.", nameof(reuse));
            if (!reuse.IsFinished) throw new ArgumentException("The transaction to reuse is still open: commit or dispose it first.", nameof(reuse));
        }
        _writer.Wait();
        try
        {
            RepairMetaSlot();
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                _ = _mapping.TryAcquire();
                // Pages freed by transaction T were visible to snapshots before T. They may be reused once every reader
                // is at T or later, and (when commits skip the sync) once T is durable, so the synced state stays intact.
                var oldest = _current.TxnId;
                for (var i = 0; i < _readerTxn.Length; i++)
                {
                    if (_readerTxn[i] != 0 && _readerTxn[i] < oldest) oldest = _readerTxn[i];
                }
                _writerEpoch = Cache?.Epoch ?? 0;
                if (reuse is null) return new WriteTransaction(this, _current, _mapping, oldest, Math.Min(oldest, _durable.TxnId));
                reuse.Begin(_current, _mapping, oldest, Math.Min(oldest, _durable.TxnId));
                return reuse;
            }
        }
        catch
        {
            _writer.Release();
            throw;
        }
    }

    /// <summary>
    /// Makes every commit so far durable: syncs the pages written by commits made without a sync, then writes and
    /// syncs their meta record. A no-op when nothing is pending. Waits for an open write transaction to end.
    /// </summary>
    /// <returns>The id of the latest commit, now durable (<see cref="LastDurableTransaction"/>).</returns>
    /// <exception cref="IOException">The disk refused the sync or the meta write: the commits stay visible but not durable; retry.</exception>
    public ulong Sync()
    {
        _writer.Wait();
        try
        {
            lock (_lock) ObjectDisposedException.ThrowIf(_disposed, this);
            RepairMetaSlot();
            return MakeDurable();
        }
        finally
        {
            _writer.Release();
        }
    }

    /// <summary>
    /// Called with the writer lock held: writes the latest commit's meta record durably when it is not yet on disk
    /// (the pages of every commit since the last durable one are synced with it). Returns the durable transaction id.
    /// </summary>
    internal ulong MakeDurable()
    {
        MetaState current;
        lock (_lock) current = _current;
        if (current.TxnId != _durable.TxnId) WriteMetaDurably(current);
        return current.TxnId;
    }

    /// <summary>Syncs the pages already written, then writes the meta record into the slot not holding the last durable one.</summary>
    internal void WriteMetaDurably(MetaState meta)
    {
        _file.Sync();
        Options.Failpoint?.Invoke(Failpoints.BeforeMetaWrite);
        var slot = _durableSlot ^ 1;
        var buf = ArrayPool<byte>.Shared.Rent(MetaState.RecordSize);
        try
        {
            meta.Write(buf);
            try
            {
                _file.Write(buf.AsSpan(0, MetaState.RecordSize), (long)slot * PageSize);
                Options.Failpoint?.Invoke(Failpoints.BeforeMetaSync);
                _file.Sync();
            }
            catch
            {
                // The slot may now hold a partial record, or a record whose commit is being reported as failed.
                // Put back what it held; until that succeeds no page may be reused (RepairMetaSlot).
                if (!TryRestoreMetaSlot(slot)) _suspectSlot = slot;
                throw;
            }
            Options.Failpoint?.Invoke(Failpoints.AfterMetaSync);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buf);
        }
        _slotMeta[slot] = meta;
        lock (_lock)
        {
            _durable = meta;
            _durableSlot = slot;
        }
        _writtenSinceDurable.Clear();
    }

    // Pages written by commits after the last durable one (writer only). The durable state cannot hold them, so when
    // a later commit frees them they may be reused without waiting for the next durable commit.
    private readonly HashSet<ulong> _writtenSinceDurable = [];

    internal bool IsWrittenSinceDurable(ulong pgno) => _writtenSinceDurable.Count != 0 && _writtenSinceDurable.Contains(pgno);

    internal void MarkWrittenSinceDurable(List<ulong> pages)
    {
        foreach (var pg in pages) _writtenSinceDurable.Add(pg);
    }

    private readonly MetaState[] _slotMeta = new MetaState[2]; // what each meta page holds on disk (PageSize 0: unknown)

    private int _suspectSlot = -1; // a meta page whose restore failed: repaired before anything else is written

    private bool TryRestoreMetaSlot(int slot)
    {
        if (_slotMeta[slot].PageSize == 0) return true;
        try
        {
            var buf = new byte[MetaState.RecordSize];
            _slotMeta[slot].Write(buf);
            _file.Write(buf, (long)slot * PageSize);
            _file.Sync();
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>
    /// Called with the writer lock held before anything is written: if a failed meta write could not be undone, undo it
    /// now, or refuse. A failed commit's record must not survive, and its pages must not be reused while it might.
    /// </summary>
    private void RepairMetaSlot()
    {
        if (_suspectSlot < 0) return;
        if (!TryRestoreMetaSlot(_suspectSlot))
        {
            throw new IOException($"Meta page {_suspectSlot} could not be restored after an earlier failed commit; the disk still refuses writes. Free space or fix the disk, then retry.");
        }
        _suspectSlot = -1;
    }

    /// <summary>Called by a committing writer after its pages are written: makes the commit visible to new readers.</summary>
    internal void Publish(MetaState meta, bool durable)
    {
        if (durable) WriteMetaDurably(meta);
        lock (_lock) _current = meta;
    }

    internal void EndWrite()
    {
        lock (_lock) _writerEpoch = long.MaxValue;
        Cache?.RecycleIfPending();
        _writer.Release();
    }

    /// <summary>Grows the file to hold <paramref name="pageCount"/> pages and the mapping to cover it.</summary>
    internal Mapping EnsureCapacity(ulong pageCount, Mapping current)
    {
        var needed = (long)pageCount * PageSize;
        var length = _file.Length;
        if (needed > length)
        {
            var grown = Math.Max(needed, length + Math.Max(Options.GrowthStepBytes, length / 8));
            _file.SetLength(RoundUp(grown, PageSize));
        }
        if (needed <= current.Capacity) return current;
        lock (_lock)
        {
            if (needed > _mapping.Capacity)
            {
                var bigger = Mapping.Create(_file.Handle, RoundUp(Math.Max(needed, _mapping.Capacity * 2), 1L << 20), PageSize);
                _mapping.Release();
                _mapping = bigger;
            }
            _ = _mapping.TryAcquire();
            current.Release();
            return _mapping;
        }
    }

    private int RegisterReader(ulong txn, long epoch)
    {
        var slot = Array.IndexOf(_readerTxn, 0UL);
        if (slot < 0)
        {
            slot = _readerTxn.Length;
            Array.Resize(ref _readerTxn, _readerTxn.Length * 2);
            Array.Resize(ref _readerEpoch, _readerTxn.Length);
        }
        _readerTxn[slot] = txn;
        _readerEpoch[slot] = epoch;
        _readers++;
        return slot;
    }

    /// <summary>The page-cache epoch at which the oldest open transaction began (MaxValue when none is open).</summary>
    internal long OldestTransactionEpoch()
    {
        lock (_lock)
        {
            var oldest = _writerEpoch;
            for (var i = 0; i < _readerTxn.Length; i++)
            {
                if (_readerTxn[i] != 0 && _readerEpoch[i] < oldest) oldest = _readerEpoch[i];
            }
            return oldest;
        }
    }

    internal void EndRead(int slot, Mapping mapping)
    {
        lock (_lock)
        {
            _readerTxn[slot] = 0;
            _readers--;
        }
        mapping.Release();
        Cache?.RecycleIfPending();
    }

    /// <summary>Readers open now.</summary>
    public int OpenReaders { get { lock (_lock) return _readers; } }

    internal byte[] RentPage()
    {
        lock (_pageBuffers)
        {
            if (_pageBuffers.TryPop(out var b)) return b;
        }
        Interlocked.Increment(ref _pageBuffersMade);
        return GC.AllocateUninitializedArray<byte>(PageSize, pinned: true);
    }

    internal void ReturnPage(byte[] b)
    {
        lock (_pageBuffers)
        {
            // Keep up to 64 MiB of page buffers: a 10,000-put random transaction dirties about 9,000 pages.
            if (_pageBuffers.Count < Math.Max(4096, (64 << 20) / PageSize))
            {
                _pageBuffers.Push(b);
                return;
            }
        }
        Interlocked.Decrement(ref _pageBuffersMade);
    }

    private long _pageBuffersMade;   // page buffers of the writer alive: in its dirty pages or kept for reuse

    /// <summary>
    /// Bytes of the writer's page buffers (dirty pages of the open write transaction, and spares kept for reuse, up to
    /// 64 MiB): they grow with the largest transaction so far, and are reused, not garbage.
    /// </summary>
    public long PageBufferBytes => Interlocked.Read(ref _pageBuffersMade) * PageSize;

    /// <summary>Syncs what is pending (see <see cref="Sync"/>), then closes the file. Open transactions must be disposed first.</summary>
    /// <exception cref="IOException">The final sync failed: the file is closed all the same, and the commits since the last durable one are lost.</exception>
    public void Dispose()
    {
        if (_disposed) return;
        try
        {
            Sync();
        }
        finally
        {
            _writer.Wait();
            var close = false;
            lock (_lock)
            {
                if (!_disposed)
                {
                    _disposed = true;
                    _mapping.Release();
                    close = true;
                }
            }
            if (close)
            {
                Cache?.Dispose();
                Cipher?.Dispose();
                _file.Dispose();
            }
            _writer.Release();
        }
    }

    internal static long RoundUp(long value, long multiple) => (value + multiple - 1) / multiple * multiple;
}
