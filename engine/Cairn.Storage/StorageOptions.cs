namespace Cairn.Storage;

/// <summary>How a database file is created and opened. Every limit is checked by <see cref="Validate"/>.</summary>
public sealed record StorageOptions
{
    /// <summary>Smallest page size accepted.</summary>
    public const int MinPageSize = 4096;

    /// <summary>Largest page size accepted.</summary>
    public const int MaxPageSize = 65536;

    /// <summary>The page size <see cref="Database.Open"/> gives a new file when <see cref="PageSize"/> is 0.</summary>
    public const int DefaultPageSize = 4096;

    /// <summary>
    /// Page size for a new file: a power of two from 4 KiB to 64 KiB, or 0 (the default) for the default of the layer
    /// that opens it — <see cref="DefaultPageSize"/> (4 KiB) for <see cref="Database.Open"/>, 16 KiB for the key-value
    /// store — so that setting another option keeps that layer's choice. An existing file keeps its own page size
    /// whatever this says.
    /// </summary>
    public int PageSize { get; init; }

    /// <summary><see cref="PageSize"/>, or <see cref="DefaultPageSize"/> when it is 0.</summary>
    internal int PageSizeOrDefault => PageSize == 0 ? DefaultPageSize : PageSize;

    /// <summary>
    /// Address space reserved for the read-only mapping up front, in bytes. The file grows beneath it without
    /// remapping; when it outgrows the reservation a larger mapping is made and the old one is released once the
    /// last reader using it ends (readers are never waited for).
    /// </summary>
    public long MapReserveBytes { get; init; } = 16L << 30;

    /// <summary>Smallest step by which the file grows, in bytes (growth is also at least 1/8 of the current size).</summary>
    public long GrowthStepBytes { get; init; } = 1L << 20;

    /// <summary>When false, <see cref="WriteTransaction.Commit()"/> writes without syncing; call <see cref="Database.Sync"/>.</summary>
    public bool SyncOnCommit { get; init; } = true;

    /// <summary>When the file does not exist: create it (true) or fail (false).</summary>
    public bool CreateIfMissing { get; init; } = true;

    /// <summary>
    /// The master key. When set, a new database is created encrypted (AES-256-GCM on every page) and an encrypted one
    /// opens with it; a wrong key is refused at open without changing the file. See docs/encryption.md.
    /// </summary>
    public Cairn.Crypto.IKeyProvider? MasterKey { get; init; }

    /// <summary>
    /// Called with the name at each of the commit path's <see cref="Failpoints"/> (null, the default: nothing). For
    /// tests that stop the process at exactly that moment to prove recovery from it.
    /// </summary>
    public Action<string>? Failpoint { get; init; }

    /// <summary>Budget of decrypted pages kept in memory for an encrypted database, in bytes.</summary>
    public long PageCacheBytes { get; init; } = 256L << 20;

    /// <summary>Receives warnings (e.g. a key file inside the data directory). Also kept in <see cref="Database.Warnings"/>.</summary>
    public Action<string>? Warning { get; init; }

    /// <summary>
    /// When one meta page is damaged, open at the other (the previous durable commit) instead of refusing. An explicit
    /// operator decision: the newest commit is given up.
    /// </summary>
    public bool AllowMetaFallback { get; init; }

    /// <summary>Test hook: wraps the file layer (fault injection). Not for production use.</summary>
    internal Func<IPageFile, IPageFile>? FileWrapper { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the fix when a setting is out of range.</summary>
    public void Validate()
    {
        if (PageSize != 0 && (PageSize < MinPageSize || PageSize > MaxPageSize || (PageSize & (PageSize - 1)) != 0))
        {
            throw new ArgumentException($"PageSize {PageSize} is not allowed: use a power of two from {MinPageSize} to {MaxPageSize}, or 0 for the default.");
        }
        var pageSize = PageSizeOrDefault;
        if (MapReserveBytes < 1L << 20)
        {
            throw new ArgumentException($"MapReserveBytes {MapReserveBytes} is too small: reserve at least 1 MiB (the default is 16 GiB of address space, which costs no memory).");
        }
        if (PageCacheBytes < 16L * pageSize)
        {
            throw new ArgumentException($"PageCacheBytes {PageCacheBytes} is below 16 pages ({16L * pageSize} bytes); give the page cache at least that.");
        }
        if (GrowthStepBytes < pageSize)
        {
            throw new ArgumentException($"GrowthStepBytes {GrowthStepBytes} is smaller than a page ({pageSize}); use at least one page.");
        }
    }
}
