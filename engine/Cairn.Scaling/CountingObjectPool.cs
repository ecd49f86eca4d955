using Microsoft.Extensions.ObjectPool;

namespace Cairn.Scaling;

/// <summary>
/// An <see cref="ObjectPool{T}"/> that passes every call to another pool and counts, as a
/// <see cref="SourceKind.Managed"/> source, the objects out of the pool and those it keeps, at a fixed size estimate
/// per object. Retained is returned minus taken again, never below 0, and at most
/// <c>maximumRetained</c> objects when given (a <see cref="DefaultObjectPool{T}"/> drops returns past its limit).
/// </summary>
/// <typeparam name="T">The pooled type.</typeparam>
public sealed class CountingObjectPool<T> : ObjectPool<T>, IMemorySource where T : class
{
    private readonly ObjectPool<T> _inner;
    private readonly long _retainedCeiling;
    private long _rented;    // >= 0, bytes
    private long _retained;  // 0 <= _retained <= _retainedCeiling, bytes

    /// <summary>A counting pool over <paramref name="inner"/>.</summary>
    /// <param name="inner">The pool that does the work.</param>
    /// <param name="bytesPerObject">Estimated bytes one object holds (its fields plus the buffers it owns).</param>
    /// <param name="name">The figure's name.</param>
    /// <param name="maximumRetained">How many objects <paramref name="inner"/> keeps at most, if known.</param>
    public CountingObjectPool(ObjectPool<T> inner, long bytesPerObject, string name, int? maximumRetained = null)
    {
        ArgumentNullException.ThrowIfNull(inner);
        ArgumentOutOfRangeException.ThrowIfNegative(bytesPerObject);
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        if (maximumRetained is < 0) throw new ArgumentOutOfRangeException(nameof(maximumRetained), maximumRetained, "maximumRetained must be 0 or more.");
        _inner = inner;
        BytesPerObject = bytesPerObject;
        Name = name;
        _retainedCeiling = maximumRetained is int max ? max * bytesPerObject : long.MaxValue;
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public SourceKind Kind => SourceKind.Managed;

    /// <summary>The size estimate per object.</summary>
    public long BytesPerObject { get; }

    /// <summary>Bytes of objects taken and not yet returned.</summary>
    public long RentedBytes => Volatile.Read(ref _rented);

    /// <summary>Estimated bytes of objects the pool keeps.</summary>
    public long RetainedBytes => Volatile.Read(ref _retained);

    /// <summary>Rented plus retained bytes.</summary>
    public long Bytes => RentedBytes + RetainedBytes;

    /// <inheritdoc/>
    public override T Get()
    {
        var item = _inner.Get();
        Interlocked.Add(ref _rented, BytesPerObject);
        Counters.SubtractFloor(ref _retained, BytesPerObject);
        return item;
    }

    /// <inheritdoc/>
    public override void Return(T obj)
    {
        _inner.Return(obj);
        Counters.SubtractFloor(ref _rented, BytesPerObject);
        Counters.AddCeiling(ref _retained, BytesPerObject, _retainedCeiling);
    }
}
