namespace Cairn.Server;

/// <summary>An object that can sit in a <see cref="BoundedPool{T}"/>: the pool marks it while it holds it.</summary>
internal interface IPooled
{
    /// <summary>True while the pool holds the object (set and cleared by the pool only).</summary>
    bool InPool { get; set; }
}

/// <summary>
/// Owner: any thread (one short lock per rent or return). A stack of at most <c>capacity</c> objects that grows as
/// objects come back: a return is O(1) and costs the same however full the pool is (unlike ConcurrentBag.Count, which
/// takes every per-thread lock), and a second return of the same object throws instead of handing it out twice.
/// </summary>
internal sealed class BoundedPool<T>(int capacity) where T : class, IPooled
{
    private readonly Lock _lock = new();
    private T[] _items = new T[Math.Min(capacity, 16)];
    private int _count;

    /// <summary>Objects the pool holds now.</summary>
    public int Count => Volatile.Read(ref _count);

    /// <summary>A pooled object, or null when the pool is empty (the caller makes a new one).</summary>
    public T? TryRent()
    {
        lock (_lock)
        {
            if (_count == 0) return null;
            var item = _items[--_count];
            _items[_count] = null!;
            item.InPool = false;
            return item;
        }
    }

    /// <summary>Takes <paramref name="item"/> back (dropped when the pool is full); throws when it is already in the pool.</summary>
    public void Return(T item)
    {
        lock (_lock)
        {
            if (item.InPool) throw new InvalidOperationException($"a {typeof(T).Name} was returned to its pool twice");
            if (_count == _items.Length)
            {
                if (_count >= capacity) return;
                Array.Resize(ref _items, Math.Min(capacity, _count * 2));
            }
            item.InPool = true;
            _items[_count++] = item;
        }
    }
}
