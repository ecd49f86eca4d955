using System.Buffers.Binary;

namespace Cairn.Storage.Tests;

/// <summary>After warm-up, Get, Put (no split), Delete and cursor steps allocate nothing.</summary>
public sealed class AllocationTests
{
    private const int Keys = 20_000;

    private static void KeyFor(int i, Span<byte> k) => BinaryPrimitives.WriteUInt64BigEndian(k, (ulong)i * 0x9E3779B97F4A7C15UL);

    [Fact]
    public void Get_cursor_steps_put_and_delete_allocate_nothing_after_warm_up()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"), new StorageOptions { SyncOnCommit = false });
        Span<byte> key = stackalloc byte[8];
        var value = new byte[100];
        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            for (var i = 0; i < Keys; i++)
            {
                KeyFor(i, key);
                t.Put(key, value);
            }
            tx.Commit();
        }

        using (var r = db.BeginRead())
        {
            var tree = r.OpenTree("t");
            long sum = 0;
            for (var warm = 0; warm < 2; warm++)
            {
                var before = GC.GetAllocatedBytesForCurrentThread();
                for (var i = 0; i < Keys; i++)
                {
                    KeyFor(i, key);
                    if (tree.TryGet(key, out var v)) sum += v.Length;
                }
                var gets = GC.GetAllocatedBytesForCurrentThread() - before;
                before = GC.GetAllocatedBytesForCurrentThread();
                foreach (var e in tree.All()) sum += e.Key.Length;
                var scan = GC.GetAllocatedBytesForCurrentThread() - before;
                if (warm == 1)
                {
                    Assert.Equal(0, gets);
                    Assert.Equal(0, scan);
                }
            }
            Assert.Equal(2L * Keys * (100 + 8), sum);
        }

        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            for (var pass = 0; pass < 3; pass++)
            {
                // Pass 0 copies every page (copy-on-write); later passes find them private already.
                var before = GC.GetAllocatedBytesForCurrentThread();
                for (var i = 0; i < Keys; i++)
                {
                    KeyFor(i, key);
                    value[0] = (byte)pass;
                    t.Put(key, value.AsSpan(0, pass == 2 ? 90 : 100)); // pass 2 changes the size: remove + insert
                }
                var puts = GC.GetAllocatedBytesForCurrentThread() - before;
                if (pass > 0) Assert.Equal(0, puts);
            }
            var deleted = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < Keys; i += 10)
            {
                KeyFor(i, key);
                Assert.True(t.Delete(key));
            }
            Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - deleted);
            tx.Commit();
        }
        db.Verify();
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Small_commits_in_a_transaction_begun_again_allocate_nothing_after_warm_up(bool durable)
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"));
        Span<byte> key = stackalloc byte[8];
        var value = new byte[100];
        WriteTransaction? tx = null;
        long allocated = 0;
        for (var commit = 0; commit < 600; commit++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            tx = db.BeginWrite(tx);
            var t = tx.CreateTree("t");
            for (var i = 0; i < 25; i++)          // a batch of puts over a working set of keys that stays the same size
            {
                KeyFor((commit * 25 + i) % 5_000, key);
                value[0] = (byte)commit;
                t.Put(key, value);
            }
            tx.Commit(durable);
            if (commit >= 300) allocated += GC.GetAllocatedBytesForCurrentThread() - before;  // after the keys, the free list and the buffers have warmed up
        }
        Assert.Equal(0, allocated);
        db.Verify();
    }
}
