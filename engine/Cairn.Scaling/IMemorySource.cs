namespace Cairn.Scaling;

/// <summary>Where a source's bytes live, which decides how <see cref="MemoryAccountant"/> adds them up.</summary>
public enum SourceKind
{
    /// <summary>
    /// Managed objects an allocator holds (page cache, buffer pools, watch buffers). They are part of the managed
    /// heap, so RAM in use counts the larger of the heap and the sum of these parts, never both.
    /// </summary>
    Managed,

    /// <summary>The managed heap as a whole (<see cref="ManagedHeapSource"/>).</summary>
    ManagedHeap,

    /// <summary>Memory outside the managed heap (resident mapped pages, native allocations): added to RAM in use.</summary>
    Native,

    /// <summary>Bytes on disk (database file, WAL, snapshots): storage in use, not RAM.</summary>
    Storage,
}

/// <summary>One named figure the accountant reads at every sample. Reading it must be cheap and thread-safe.</summary>
public interface IMemorySource
{
    /// <summary>The figure's name, unique within an accountant (e.g. "page-cache").</summary>
    string Name { get; }

    /// <summary>Where the bytes live.</summary>
    SourceKind Kind { get; }

    /// <summary>The bytes held now.</summary>
    long Bytes { get; }
}

/// <summary>A source that also breaks its figure down (the managed heap: heap size, fragmentation).</summary>
public interface IDetailedMemorySource : IMemorySource
{
    /// <summary>Reads the figure and its breakdown from one consistent observation.</summary>
    /// <param name="detail">Receives the breakdown; the figure itself is the return value.</param>
    long Read(ICollection<SourceDetail> detail);
}

/// <summary>One line of a source's breakdown.</summary>
public readonly record struct SourceDetail(string Name, long Bytes);
