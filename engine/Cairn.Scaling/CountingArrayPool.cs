using System.Buffers;

namespace Cairn.Scaling;

/// <summary>
/// An <see cref="ArrayPool{T}"/> of bytes that passes every call to another pool (<see cref="ArrayPool{T}.Shared"/>
/// by default) and counts, as a <see cref="SourceKind.Managed"/> source:
/// <list type="bullet">
/// <item>rented bytes: the lengths of arrays handed out and not yet returned;</item>
/// <item>retained bytes: an estimate of what the pool keeps for reuse — bytes returned minus bytes rented again,
/// never below 0. It is an upper estimate: a pool may drop what it is given (the shared pool drops arrays past its
/// per-size limits), and a shared pool also hands our returns to other callers.</item>
/// </list>
/// The figure is their sum.
/// </summary>
public sealed class CountingArrayPool : ArrayPool<byte>, IMemorySource
{
    private readonly ArrayPool<byte> _inner;
    private long _rented;    // >= 0: Σ lengths rented − Σ lengths returned, floored (a foreign array may be returned)
    private long _retained;  // >= 0: Σ returned − Σ rented again, floored

    /// <summary>A counting pool named <paramref name="name"/> over <paramref name="inner"/> (the shared pool when null).</summary>
    public CountingArrayPool(string name = "array-pool", ArrayPool<byte>? inner = null)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        Name = name;
        _inner = inner ?? Shared;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public SourceKind Kind => SourceKind.Managed;

    /// <summary>Bytes rented and not yet returned.</summary>
    public long RentedBytes => Volatile.Read(ref _rented);

    /// <summary>Estimated bytes the pool keeps for reuse.</summary>
    public long RetainedBytes => Volatile.Read(ref _retained);

    /// <summary>Rented plus retained bytes.</summary>
    public long Bytes => RentedBytes + RetainedBytes;

    /// <inheritdoc/>
    public override byte[] Rent(int minimumLength)
    {
        var array = _inner.Rent(minimumLength);
        Interlocked.Add(ref _rented, array.Length);
        Counters.SubtractFloor(ref _retained, array.Length);
        return array;
    }

    /// <inheritdoc/>
    public override void Return(byte[] array, bool clearArray = false)
    {
        ArgumentNullException.ThrowIfNull(array);
        _inner.Return(array, clearArray);  // first: an array the pool refuses is not counted as returned
        Counters.SubtractFloor(ref _rented, array.Length);
        Interlocked.Add(ref _retained, array.Length);
    }
}
