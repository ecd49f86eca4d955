namespace Cairn.Scaling;

/// <summary>
/// The managed heap from <see cref="GC.GetGCMemoryInfo()"/>: committed bytes are the figure that counts (what the GC
/// holds from the OS); heap size and fragmented bytes are the detail. All three are as of the last GC.
/// </summary>
public sealed class ManagedHeapSource : IDetailedMemorySource
{
    /// <summary>Detail line: bytes in the heap (live objects plus fragmentation) after the last GC.</summary>
    public const string HeapSizeDetail = "heap-size";

    /// <summary>Detail line: free space between objects after the last GC.</summary>
    public const string FragmentedDetail = "fragmented";

    /// <summary>Detail line: committed bytes (the figure itself).</summary>
    public const string CommittedDetail = "committed";

    /// <summary>A source named <paramref name="name"/>.</summary>
    public ManagedHeapSource(string name = "managed-heap")
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public SourceKind Kind => SourceKind.ManagedHeap;

    /// <summary>Committed bytes of the managed heap.</summary>
    public long Bytes => GC.GetGCMemoryInfo().TotalCommittedBytes;

    /// <inheritdoc/>
    public long Read(ICollection<SourceDetail> detail)
    {
        ArgumentNullException.ThrowIfNull(detail);
        var info = GC.GetGCMemoryInfo();
        detail.Add(new SourceDetail(CommittedDetail, info.TotalCommittedBytes));
        detail.Add(new SourceDetail(HeapSizeDetail, info.HeapSizeBytes));
        detail.Add(new SourceDetail(FragmentedDetail, info.FragmentedBytes));
        return info.TotalCommittedBytes;
    }
}
