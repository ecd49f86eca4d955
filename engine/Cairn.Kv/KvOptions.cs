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

    /// <summary>Storage settings (page size 16 KiB: history keys carry the user key escaped plus a revision).</summary>
    public StorageOptions Storage { get; init; } = new() { PageSize = 16384 };

    /// <summary>Throws <see cref="ArgumentException"/> naming the fix when a setting is out of range.</summary>
    public void Validate()
    {
        Storage.Validate();
        if (WatchQueueCapacity < 1) throw new ArgumentException($"WatchQueueCapacity {WatchQueueCapacity} must be at least 1.", nameof(WatchQueueCapacity));
        var storageKey = Math.Max(1024, Storage.PageSize / 4 - 32);
        if (MaxKeyBytes < 1 || 2 * MaxKeyBytes + 10 > storageKey)
        {
            throw new ArgumentException($"MaxKeyBytes {MaxKeyBytes} does not fit pages of {Storage.PageSize} bytes (history keys need 2 × key + 10 ≤ {storageKey}); lower it or raise Storage.PageSize.", nameof(MaxKeyBytes));
        }
        if (MaxValueBytes < 0 || MaxValueBytes > Database.MaxValueSize - 64)
        {
            throw new ArgumentException($"MaxValueBytes {MaxValueBytes} is out of range: 0 to {Database.MaxValueSize - 64}.", nameof(MaxValueBytes));
        }
    }
}
