namespace Cairn.Scaling;

/// <summary>
/// A figure read from a delegate: the storage engine's page cache (<c>() =&gt; db.PageCacheBytes</c>), the watch
/// buffers, anything that already counts its own bytes.
/// </summary>
public sealed class DelegateSource : IMemorySource
{
    private readonly Func<long> _bytes;

    /// <summary>A source named <paramref name="name"/> reading <paramref name="bytes"/>; managed memory unless told otherwise.</summary>
    public DelegateSource(string name, Func<long> bytes, SourceKind kind = SourceKind.Managed)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(bytes);
        Name = name;
        Kind = kind;
        _bytes = bytes;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public SourceKind Kind { get; }

    /// <inheritdoc/>
    public long Bytes => _bytes();
}
