using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>Limits and storage settings of a key-value store; <see cref="Validate"/> refuses unsafe values.</summary>
public sealed record KvOptions
{
    /// <summary>Longest key accepted, in bytes.</summary>
    public int MaxKeyBytes { get; init; } = 2000;

    /// <summary>Largest value accepted, in bytes (etcd's default request limit).</summary>
    public int MaxValueBytes { get; init; } = 1536 * 1024;

    /// <summary>Storage quota in bytes (0: none). A write that would take the database past it raises the NOSPACE alarm and is refused.</summary>
    public long QuotaBytes { get; init; } = 2L << 30;

    /// <summary>Responses a live watcher may have waiting before it falls back to catching up from the store.</summary>
    public int WatchQueueCapacity { get; init; } = 128;

    /// <summary>How often idle watchers that asked for progress notifications get one (etcd's default: 10 minutes).</summary>
    public TimeSpan WatchProgressInterval { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>The page size a new store file gets when <see cref="StorageOptions.PageSize"/> is 0 (the default): 16 KiB, as history keys carry the user key escaped plus a revision.</summary>
    public const int DefaultPageSize = 16384;

    /// <summary>
    /// How long batches applied without a sync (<c>durable: false</c>) may stay in one open storage transaction before
    /// it is committed — etcd's backend batch interval. Batches between commits share their pages' writes: a leaf that
    /// many batches change is written once. Any read of the store first commits what is applied, so reads always see
    /// it. The log (the WAL) is what makes these batches durable; a restart replays it from the applied index the
    /// store recorded. Zero: commit every batch.
    /// </summary>
    public TimeSpan BackendCommitInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Entries applied in one open storage transaction beyond which it is committed whatever the interval (etcd's batch limit).</summary>
    public int BackendCommitEntries { get; init; } = 10_000;

    /// <summary>
    /// Bytes of commands applied in one open storage transaction beyond which it is committed: they are kept (so a
    /// refused command in a later batch can roll back and apply them again), in a buffer of this size made once.
    /// </summary>
    public int BackendCommitBytes { get; init; } = 4 << 20;

    /// <summary>
    /// Storage settings. Their <see cref="StorageOptions.PageSize"/> of 0 (the default) means <see cref="DefaultPageSize"/>
    /// here, so <c>new StorageOptions { MasterKey = k }</c> keeps the key-value store's page size.
    /// </summary>
    public StorageOptions Storage { get; init; } = new();

    /// <summary><see cref="Storage"/> with the page size filled in (<see cref="DefaultPageSize"/> when 0): what the store's files are opened with.</summary>
    internal StorageOptions StorageWithDefaults => Storage.PageSize == 0 ? Storage with { PageSize = DefaultPageSize } : Storage;

    /// <summary>Throws <see cref="ArgumentException"/> naming the fix when a setting is out of range.</summary>
    public void Validate()
    {
        var storage = StorageWithDefaults;
        storage.Validate();
        if (WatchQueueCapacity < 1) throw new ArgumentException($"WatchQueueCapacity {WatchQueueCapacity} must be at least 1.");
        if (BackendCommitInterval < TimeSpan.Zero) throw new ArgumentException($"BackendCommitInterval {BackendCommitInterval} must not be negative (zero commits every batch).");
        if (BackendCommitEntries < 1) throw new ArgumentException($"BackendCommitEntries {BackendCommitEntries} must be at least 1.");
        if (BackendCommitBytes < 64 << 10) throw new ArgumentException($"BackendCommitBytes {BackendCommitBytes} must be at least 64 KiB.");
        var storageKey = Math.Max(1024, storage.PageSize / 4 - 32);
        if (MaxKeyBytes < 1 || 2 * MaxKeyBytes + 10 > storageKey)
        {
            throw new ArgumentException($"MaxKeyBytes {MaxKeyBytes} does not fit pages of {storage.PageSize} bytes (history keys need 2 × key + 10 ≤ {storageKey}); lower it or raise Storage.PageSize.");
        }
        if (MaxValueBytes < 0 || MaxValueBytes > Database.MaxValueSize - 64)
        {
            throw new ArgumentException($"MaxValueBytes {MaxValueBytes} is out of range: 0 to {Database.MaxValueSize - 64}.");
        }
    }
}
