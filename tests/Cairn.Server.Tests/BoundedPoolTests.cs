namespace Cairn.Server.Tests;

/// <summary>The pool behind proposals, waiters and received messages: bounded, last in first out, and loud about a double return.</summary>
public sealed class BoundedPoolTests
{
    private sealed class Item : IPooled
    {
        public bool InPool { get; set; }
    }

    [Fact]
    public void It_hands_back_what_was_returned_and_keeps_no_more_than_its_capacity()
    {
        var pool = new BoundedPool<Item>(capacity: 40);
        Assert.Null(pool.TryRent());
        var items = Enumerable.Range(0, 50).Select(_ => new Item()).ToList();
        foreach (var item in items) pool.Return(item);
        Assert.Equal(40, pool.Count);
        Assert.All(items.Take(40), i => Assert.True(i.InPool));
        Assert.All(items.Skip(40), i => Assert.False(i.InPool));   // dropped: the pool was full

        var rented = new HashSet<Item>(ReferenceEqualityComparer.Instance);
        while (pool.TryRent() is { } r)
        {
            Assert.False(r.InPool);
            Assert.True(rented.Add(r));                            // never the same object twice
        }
        Assert.True(rented.SetEquals(items.Take(40)));
    }

    [Fact]
    public void Returning_an_object_twice_throws_and_leaves_the_pool_as_it_was()
    {
        var pool = new BoundedPool<Item>(capacity: 8);
        var item = new Item();
        pool.Return(item);
        var e = Assert.Throws<InvalidOperationException>(() => pool.Return(item));
        Assert.Contains("twice", e.Message);
        Assert.Equal(1, pool.Count);
        Assert.Same(item, pool.TryRent());
        Assert.Null(pool.TryRent());
    }
}
