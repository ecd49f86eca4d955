namespace Cairn.Scaling;

/// <summary>
/// The one place every allocator that holds real memory reports to. Each source is named and visible in every
/// <see cref="MemorySample"/>; the totals are
/// <list type="bullet">
/// <item>RAM in use = Σ <see cref="SourceKind.Native"/> + max(Σ <see cref="SourceKind.ManagedHeap"/>, Σ <see cref="SourceKind.Managed"/>),</item>
/// <item>storage in use = Σ <see cref="SourceKind.Storage"/>.</item>
/// </list>
/// The max is there because the page cache, the pools and the watch buffers are managed arrays: they are inside the
/// heap's committed bytes, which lag until the next GC, so the larger of the two is the honest lower bound.
/// </summary>
public sealed class MemoryAccountant
{
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private IMemorySource[] _sources = [];  // copy-on-write under _gate, so Sample reads without the lock

    /// <summary>An accountant that stamps samples with <paramref name="time"/> (the system clock by default).</summary>
    public MemoryAccountant(TimeProvider? time = null) => _time = time ?? TimeProvider.System;

    /// <summary>The registered sources, in registration order.</summary>
    public IReadOnlyList<IMemorySource> Sources => Volatile.Read(ref _sources);

    /// <summary>Registers <paramref name="source"/> and returns it.</summary>
    /// <exception cref="ArgumentException">A source with the same name is already registered.</exception>
    public T Add<T>(T source) where T : IMemorySource
    {
        ArgumentNullException.ThrowIfNull(source);
        ArgumentException.ThrowIfNullOrWhiteSpace(source.Name);
        lock (_gate)
        {
            foreach (var s in _sources)
            {
                if (s.Name == source.Name)
                {
                    throw new ArgumentException($"a source named \"{source.Name}\" is already registered; give each source its own name or remove the old one first.", nameof(source));
                }
            }
            Volatile.Write(ref _sources, [.. _sources, source]);
        }
        return source;
    }

    /// <summary>Registers a figure read from <paramref name="bytes"/> (e.g. the storage engine's page-cache bytes).</summary>
    public DelegateSource Add(string name, SourceKind kind, Func<long> bytes) => Add(new DelegateSource(name, bytes, kind));

    /// <summary>Removes the source named <paramref name="name"/>; false when there is none.</summary>
    public bool Remove(string name)
    {
        lock (_gate)
        {
            var i = Array.FindIndex(_sources, s => s.Name == name);
            if (i < 0) return false;
            Volatile.Write(ref _sources, [.. _sources.AsSpan(0, i), .. _sources.AsSpan(i + 1)]);
            return true;
        }
    }

    /// <summary>
    /// Reads every source now. A source that throws is reported with 0 bytes and its error rather than failing the
    /// sample: one closed database must not blind the autoscaler to the rest.
    /// </summary>
    public MemorySample Sample()
    {
        var sources = Volatile.Read(ref _sources);
        var figures = new SourceFigure[sources.Length];
        long native = 0, heap = 0, managed = 0, storage = 0;
        for (var i = 0; i < sources.Length; i++)
        {
            var figure = Read(sources[i]);
            figures[i] = figure;
            switch (figure.Kind)
            {
                case SourceKind.Native: native += figure.Bytes; break;
                case SourceKind.ManagedHeap: heap += figure.Bytes; break;
                case SourceKind.Managed: managed += figure.Bytes; break;
                case SourceKind.Storage: storage += figure.Bytes; break;
            }
        }
        return new MemorySample(_time.GetUtcNow(), native + Math.Max(heap, managed), storage) { Figures = figures };
    }

    private static SourceFigure Read(IMemorySource source)
    {
        string name = source.Name;
        var kind = source.Kind;
        try
        {
            if (source is IDetailedMemorySource detailed)
            {
                var detail = new List<SourceDetail>();
                var bytes = detailed.Read(detail);
                return new SourceFigure(name, kind, Math.Max(0, bytes), detail);
            }
            return new SourceFigure(name, kind, Math.Max(0, source.Bytes), []);
        }
#pragma warning disable CA1031 // a failing source is reported in its figure; the sample goes on
        catch (Exception e)
#pragma warning restore CA1031
        {
            return new SourceFigure(name, kind, 0, [], $"{e.GetType().Name}: {e.Message}");
        }
    }
}
