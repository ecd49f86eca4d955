using System.Collections.Immutable;
using Xunit.Abstractions;

namespace Cairn.Storage.Tests;

/// <summary>
/// Random operation sequences over several trees checked against a sorted-dictionary model. The model is
/// immutable, so each committed transaction keeps its own snapshot and every open reader is checked against exactly
/// the state it should see. The database is verified every few commits and reopened between phases.
/// </summary>
public sealed class ModelTests(ITestOutputHelper output)
{
    private static readonly string[] TreeNames = ["alpha", "beta", "gamma", "delta"];

    private sealed record Model(ImmutableDictionary<string, ImmutableSortedDictionary<byte[], byte[]>> Trees)
    {
        public static readonly Model Empty = new(ImmutableDictionary<string, ImmutableSortedDictionary<byte[], byte[]>>.Empty);
    }

    [Theory]
    [InlineData(1, 4096, false)]
    [InlineData(2, 4096, false)]
    [InlineData(3, 8192, false)]
    [InlineData(4, 4096, true)]   // encrypted, with a page cache far smaller than the data (evictions all along)
    public void Random_operations_match_the_model(int seed, int pageSize, bool encrypted)
    {
        const int operations = 40_000; // four seeds: 160,000 operations
        using var dir = new TempDir();
        var path = dir.File("model.cairn");
        var rng = new Random(seed);
        var committed = Model.Empty;
        var options = new StorageOptions { PageSize = pageSize, SyncOnCommit = false };
        if (encrypted)
        {
            options = options with { MasterKey = Cairn.Crypto.StaticKeyProvider.CreateRandom(), PageCacheBytes = 64L * pageSize };
        }
        var db = Database.Open(path, options);
        var readers = new List<(ReadTransaction Tx, Model Model)>();
        var keys = MakeKeySpace(rng, db.MaxKeySize);
        var done = 0;
        var commits = 0;
        try
        {
            while (done < operations)
            {
                // A phase: a few hundred transactions, then close everything and reopen.
                var phaseEnd = Math.Min(operations, done + 8_000);
                while (done < phaseEnd)
                {
                    MaybeCheckReaders(rng, readers);
                    if (rng.Next(4) == 0 && readers.Count < 5)
                    {
                        readers.Add((db.BeginRead(), committed));
                    }
                    using (var tx = db.BeginWrite())
                    {
                        var working = committed;
                        var ops = rng.Next(1, 120);
                        for (var i = 0; i < ops; i++, done++)
                        {
                            working = Step(rng, tx, working, keys, seed, done);
                        }
                        if (rng.Next(5) == 0)
                        {
                            // Roll back: nothing of this transaction may show.
                        }
                        else
                        {
                            tx.Commit(durable: rng.Next(10) == 0);
                            committed = working;
                            commits++;
                            if (commits % 40 == 0) db.Verify();
                        }
                    }
                    using (var check = db.BeginRead())
                    {
                        AssertEqual(check, committed, $"seed {seed}, after {done} ops, latest commit");
                    }
                }
                foreach (var r in readers)
                {
                    AssertEqual(r.Tx, r.Model, $"seed {seed}, reader at {r.Tx.Id} before reopen");
                    r.Tx.Dispose();
                }
                readers.Clear();
                db.Verify();
                db.Dispose();
                db = Database.Open(path, options with { PageSize = 4096 }); // an existing file keeps its page size
                Assert.Equal(pageSize, db.PageSize);
                using (var check = db.BeginRead())
                {
                    AssertEqual(check, committed, $"seed {seed}, after reopen at op {done}");
                }
            }
            output.WriteLine($"seed {seed}: {done} operations, {commits} commits, {db.GetStats()}");
        }
        finally
        {
            foreach (var r in readers) r.Tx.Dispose();
            db.Dispose();
        }
    }

    private static byte[][] MakeKeySpace(Random rng, int maxKey)
    {
        var set = new SortedSet<byte[]>(ByteOrder.Instance);
        while (set.Count < 3000)
        {
            var len = rng.Next(100) switch
            {
                0 => rng.Next(200, maxKey + 1),
                < 10 => 1 + rng.Next(3),
                _ => rng.Next(4, 40),
            };
            var k = new byte[len];
            rng.NextBytes(k);
            if (rng.Next(3) == 0) k[0] = (byte)'p'; // a shared prefix for prefix scans
            set.Add(k);
        }
        return [.. set];
    }

    private static byte[] MakeValue(Random rng)
    {
        var len = rng.Next(100) switch
        {
            0 => rng.Next(20_000, 200_000),   // overflow run of many pages
            < 4 => rng.Next(1_500, 6_000),    // around the inline limit
            < 10 => 0,
            _ => rng.Next(1, 120),
        };
        var v = new byte[len];
        rng.NextBytes(v);
        return v;
    }

    private static Model Step(Random rng, WriteTransaction tx, Model model, byte[][] keys, int seed, int op)
    {
        var name = TreeNames[rng.Next(TreeNames.Length)];
        var roll = rng.Next(1000);
        if (roll == 0)
        {
            // Drop a whole tree.
            var existed = tx.DeleteTree(name);
            Assert.Equal(model.Trees.ContainsKey(name), existed);
            return new Model(model.Trees.Remove(name));
        }
        var tree = tx.CreateTree(name);
        var content = model.Trees.TryGetValue(name, out var t) ? t : ImmutableSortedDictionary.Create<byte[], byte[]>(ByteOrder.Instance);
        var key = keys[rng.Next(keys.Length)];
        if (roll < 550)
        {
            var value = MakeValue(rng);
            tree.Put(key, value);
            content = content.SetItem(key, value);
        }
        else if (roll < 850)
        {
            if (content.Count > 0 && rng.Next(2) == 0) key = content.Keys.ElementAt(rng.Next(content.Count));
            var removed = tree.Delete(key);
            Assert.True(content.ContainsKey(key) == removed, $"seed {seed} op {op}: delete returned {removed}");
            content = content.Remove(key);
        }
        else if (roll < 990)
        {
            var found = tree.TryGet(key, out var v);
            Assert.True(content.TryGetValue(key, out var expected) == found, $"seed {seed} op {op}: get found={found}");
            if (found) Assert.True(v.SequenceEqual(expected), $"seed {seed} op {op}: wrong value in write transaction");
        }
        else
        {
            AssertTree(tree, content, $"seed {seed} op {op}: scan inside the write transaction");
        }
        return new Model(model.Trees.SetItem(name, content));
    }

    private static void MaybeCheckReaders(Random rng, List<(ReadTransaction Tx, Model Model)> readers)
    {
        if (readers.Count == 0) return;
        var i = rng.Next(readers.Count);
        var (tx, model) = readers[i];
        if (rng.Next(3) == 0) AssertEqual(tx, model, $"reader at transaction {tx.Id}");
        else
        {
            // Point reads against the snapshot.
            foreach (var (name, content) in model.Trees)
            {
                var tree = tx.OpenTree(name);
                var n = 0;
                foreach (var (k, v) in content)
                {
                    if (n++ % 7 != 0) continue;
                    Assert.True(tree.TryGet(k, out var got) && got.SequenceEqual(v), $"reader at {tx.Id}: key missing or wrong in '{name}'");
                }
            }
        }
        if (rng.Next(4) == 0)
        {
            tx.Dispose();
            readers.RemoveAt(i);
        }
    }

    private static void AssertEqual(Transaction tx, Model model, string context)
    {
        var names = tx.GetTreeNames();
        Assert.True(model.Trees.Keys.OrderBy(n => n, StringComparer.Ordinal).SequenceEqual(names.OrderBy(n => n, StringComparer.Ordinal)),
            $"{context}: trees [{string.Join(",", names)}] but the model has [{string.Join(",", model.Trees.Keys)}]");
        foreach (var (name, content) in model.Trees) AssertTree(tx.OpenTree(name), content, $"{context}, tree '{name}'");
    }

    private static void AssertTree(Tree tree, ImmutableSortedDictionary<byte[], byte[]> content, string context)
    {
        Assert.True(content.Count == tree.Count, $"{context}: count {tree.Count}, model {content.Count}");
        using var expected = content.GetEnumerator();
        foreach (var e in tree.All())
        {
            Assert.True(expected.MoveNext(), $"{context}: more entries than the model");
            Assert.True(e.Key.SequenceEqual(expected.Current.Key), $"{context}: key {Convert.ToHexString(e.Key)} where the model has {Convert.ToHexString(expected.Current.Key)}");
            Assert.True(e.Value.SequenceEqual(expected.Current.Value), $"{context}: value differs at key {Convert.ToHexString(e.Key)}");
        }
        Assert.False(expected.MoveNext(), $"{context}: fewer entries than the model");

        // Backwards with a cursor, and a prefix scan.
        using var c = tree.CreateCursor();
        var reversed = content.Reverse().GetEnumerator();
        for (var ok = c.Last(); ok; ok = c.Prev())
        {
            Assert.True(reversed.MoveNext() && c.Key.SequenceEqual(reversed.Current.Key), $"{context}: backward scan differs");
        }
        Assert.False(reversed.MoveNext(), $"{context}: backward scan ended early");
        var prefixCount = 0;
        foreach (var e in tree.Prefix("p"u8))
        {
            Assert.Equal((byte)'p', e.Key[0]);
            prefixCount++;
        }
        Assert.Equal(content.Keys.Count(k => k[0] == (byte)'p'), prefixCount);
    }
}
