using System.Buffers.Binary;

namespace Cairn.Storage.Tests;

public sealed class ApiTests
{
    private static byte[] Key(int i)
    {
        var k = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(k, (ulong)i);
        return k;
    }

    [Theory]
    [InlineData(4096)]
    [InlineData(16384)]
    [InlineData(65536)]
    public void Keys_from_one_byte_to_the_limit_and_values_to_sixteen_mebibytes_round_trip(int pageSize)
    {
        using var dir = new TempDir();
        var rng = new Random(pageSize);
        var expected = new SortedDictionary<byte[], byte[]>(ByteOrder.Instance);
        using (var db = Database.Open(dir.File("db"), new StorageOptions { PageSize = pageSize }))
        {
            Assert.True(db.MaxKeySize >= 1024);
            using var tx = db.BeginWrite();
            var tree = tx.CreateTree("t");
            foreach (var len in new[] { 1, 2, 100, 1024, db.MaxKeySize })
            {
                var k = new byte[len];
                rng.NextBytes(k);
                var v = new byte[len * 3];
                rng.NextBytes(v);
                tree.Put(k, v);
                expected[k] = v;
            }
            foreach (var len in new[] { 0, 1, pageSize / 2, pageSize, 5 * pageSize + 17, 16 << 20 })
            {
                var k = new byte[] { 0xFF, (byte)(len % 251), (byte)(len >> 16) };
                var v = new byte[len];
                rng.NextBytes(v);
                tree.Put(k, v);
                expected[k] = v;
            }
            tx.Commit();
        }
        using (var db = Database.Open(dir.File("db")))
        {
            Assert.Equal(pageSize, db.PageSize);
            db.Verify();
            using var tx = db.BeginRead();
            var tree = tx.OpenTree("t");
            Assert.Equal(expected.Count, tree.Count);
            foreach (var (k, v) in expected)
            {
                Assert.True(tree.TryGet(k, out var got));
                Assert.True(got.SequenceEqual(v), $"value of {k.Length}-byte key with {v.Length}-byte value differs");
            }
        }
    }

    [Fact]
    public void Limits_are_refused_with_a_message_that_names_them()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"));
        using var tx = db.BeginWrite();
        var tree = tx.CreateTree("t");
        var e = Assert.Throws<ArgumentException>(() => tree.Put(new byte[db.MaxKeySize + 1], [1]));
        Assert.Contains($"1 to {db.MaxKeySize} bytes", e.Message);
        e = Assert.Throws<ArgumentException>(() => tree.Put([], [1]));
        Assert.Contains("1 to", e.Message);
        e = Assert.Throws<ArgumentException>(() => tree.Put([1], new byte[Database.MaxValueSize + 1]));
        Assert.Contains("64 MiB", e.Message);
        Assert.Throws<ArgumentException>(() => tx.CreateTree(""));
        Assert.Throws<ArgumentException>(() => Database.Open(dir.File("other"), new StorageOptions { PageSize = 3000 }));
    }

    [Fact]
    public void Cursor_seeks_and_steps_both_ways_across_pages()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"));
        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            for (var i = 0; i < 20_000; i += 2) t.Put(Key(i), Key(i * 10));
            tx.Commit();
        }
        using var rtx = db.BeginRead();
        var tree = rtx.OpenTree("t");
        Assert.True(tree.Depth >= 2);
        using var c = tree.CreateCursor();
        Assert.True(c.Seek(Key(1001)));
        Assert.True(c.Key.SequenceEqual(Key(1002)));
        Assert.True(c.Value.SequenceEqual(Key(10020)));
        Assert.True(c.Prev());
        Assert.True(c.Key.SequenceEqual(Key(1000)));
        Assert.True(c.Seek(Key(0)) && c.Key.SequenceEqual(Key(0)));
        Assert.False(c.Prev());
        Assert.False(c.IsValid);
        Assert.False(c.Seek(Key(19_999)));
        Assert.True(c.Last() && c.Key.SequenceEqual(Key(19_998)));
        Assert.False(c.Next());
        Assert.True(c.First());
        var n = 1;
        while (c.Next()) n++;
        Assert.Equal(10_000, n);
        Assert.True(c.Last());
        n = 1;
        while (c.Prev()) n++;
        Assert.Equal(10_000, n);

        var seen = new List<int>();
        foreach (var e in tree.Range(Key(100), Key(110))) seen.Add((int)BinaryPrimitives.ReadUInt64BigEndian(e.Key));
        Assert.Equal([100, 102, 104, 106, 108], seen);
        Assert.Throws<InvalidOperationException>(() => tree.Put(Key(1), Key(1)));
    }

    [Fact]
    public void Prefix_scans_stop_at_the_end_of_the_prefix()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"));
        using var tx = db.BeginWrite();
        var t = tx.CreateTree("t");
        foreach (var k in new[] { "a", "ab", "abc", "abd", "ac", "b", "ab\xff" }) t.Put(System.Text.Encoding.Latin1.GetBytes(k), [1]);
        var keys = new List<string>();
        foreach (var e in t.Prefix("ab"u8)) keys.Add(System.Text.Encoding.Latin1.GetString(e.Key));
        Assert.Equal(["ab", "abc", "abd", "ab\xff"], keys);
    }

    [Fact]
    public void Dispose_without_commit_rolls_back_and_trees_are_separate()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"));
        using (var tx = db.BeginWrite())
        {
            tx.CreateTree("one").Put("k"u8, "1"u8);
            tx.CreateTree("two").Put("k"u8, "2"u8);
            tx.Commit();
        }
        using (var tx = db.BeginWrite())
        {
            tx.CreateTree("one").Put("k"u8, "changed"u8);
            tx.CreateTree("three").Put("x"u8, "y"u8);
            Assert.True(tx.DeleteTree("two"));
        }
        using var r = db.BeginRead();
        Assert.Equal(["one", "two"], r.GetTreeNames());
        Assert.True(r.OpenTree("one").TryGet("k"u8, out var v) && v.SequenceEqual("1"u8));
        Assert.True(r.OpenTree("two").TryGet("k"u8, out v) && v.SequenceEqual("2"u8));
        Assert.Throws<KeyNotFoundException>(() => r.OpenTree("three"));
        db.Verify();
    }

    [Fact]
    public void A_reader_keeps_its_snapshot_while_the_writer_commits_and_reuses_pages()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"), new StorageOptions { SyncOnCommit = false });
        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            for (var i = 0; i < 5_000; i++) t.Put(Key(i), Key(0));
            tx.Commit();
        }
        using var old = db.BeginRead();
        for (var round = 1; round <= 20; round++)
        {
            using var tx = db.BeginWrite();
            var t = tx.CreateTree("t");
            for (var i = 0; i < 5_000; i++) t.Put(Key(i), Key(round));
            tx.Commit();
        }
        var tree = old.OpenTree("t");
        var n = 0;
        foreach (var e in tree.All())
        {
            Assert.True(e.Value.SequenceEqual(Key(0)), "the old reader saw a later commit");
            n++;
        }
        Assert.Equal(5_000, n);
        db.Verify();
    }

    [Fact]
    public async Task Readers_on_other_threads_always_see_a_whole_commit()
    {
        // Invariant kept by every commit: all keys hold the same round number.
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"), new StorageOptions { SyncOnCommit = false });
        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            for (var i = 0; i < 2_000; i++) t.Put(Key(i), Key(0));
            tx.Commit();
        }
        using var stop = new CancellationTokenSource();
        var failures = 0;
        var reads = 0;
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var r = db.BeginRead();
                var tree = r.OpenTree("t");
                byte[]? first = null;
                foreach (var e in tree.All())
                {
                    first ??= e.Value.ToArray();
                    if (!e.Value.SequenceEqual(first)) Interlocked.Increment(ref failures);
                }
                Interlocked.Increment(ref reads);
            }
        })).ToArray();
        for (var round = 1; round <= 200 || Volatile.Read(ref reads) < 20; round++)
        {
            using var tx = db.BeginWrite();
            var t = tx.CreateTree("t");
            for (var i = 0; i < 2_000; i++) t.Put(Key(i), Key(round));
            tx.Commit(durable: round % 50 == 0);
        }
        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.Equal(0, failures);
        Assert.True(reads > 0);
        db.Verify();
    }

    [Theory]
    [InlineData(1, false)]   // every commit durable (the default)
    [InlineData(10, false)]  // nine commits in ten without a sync
    [InlineData(1, true)]    // the same, each commit in the one transaction object begun again (BeginWrite(reuse))
    [InlineData(10, true)]
    public void Rewriting_the_same_keys_a_hundred_times_keeps_the_file_under_three_times_its_first_size(int syncEvery, bool reuse)
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using var db = Database.Open(path);
        var rng = new Random(7);
        var value = new byte[100];
        var model = new Dictionary<int, byte[]>();
        long afterFirst = 0;
        WriteTransaction? last = null;
        for (var pass = 0; pass < 100; pass++)
        {
            using (var tx = db.BeginWrite(reuse ? last : null))
            {
                if (reuse && last is not null) Assert.Same(last, tx);
                last = tx;
                var t = tx.CreateTree("t");
                for (var i = 0; i < 10_000; i++)
                {
                    rng.NextBytes(value);
                    t.Put(Key((int)((uint)i * 2654435761u)), value);
                    model[i] = value.ToArray();
                }
                tx.Commit(durable: pass % syncEvery == syncEvery - 1);
            }
            if (pass == 0)
            {
                db.Sync();
                afterFirst = new FileInfo(path).Length;
            }
        }
        var stats = db.Verify();
        var final = new FileInfo(path).Length;
        // Durable commits: two generations of the tree (the committed one and the one being written) plus growth slack.
        // No-sync commits keep one more: the last durable state's pages wait for the next durable commit, while pages
        // written since are reused at once when freed. (Before that distinction the file grew by a tree per commit.)
        var bound = (syncEvery == 1 ? 3 : 4) * afterFirst;
        Assert.True(final < bound, $"file grew from {afterFirst} to {final} bytes over 100 passes ({stats})");
        using var r = db.BeginRead();
        var tree = r.OpenTree("t");
        foreach (var (i, v) in model) Assert.True(tree.TryGet(Key((int)((uint)i * 2654435761u)), out var got) && got.SequenceEqual(v), $"key {i} holds another value");
    }

    [Fact]
    public void A_transaction_is_begun_again_only_when_it_is_finished_and_of_the_same_database()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("a"));
        using var other = Database.Open(dir.File("b"));
        var tx = db.BeginWrite();
        tx.CreateTree("t").Put([1], [1]);
        Assert.Throws<ArgumentException>(() => other.BeginWrite(tx));        // another database's (and still open)
        tx.Commit();
        Assert.Throws<ArgumentException>(() => other.BeginWrite(tx));
        var again = db.BeginWrite(tx);
        Assert.Same(tx, again);
        var t = again.OpenTree("t");                                          // the new transaction sees the commit
        Assert.True(t.TryGet([1], out var v) && v.SequenceEqual(new byte[] { 1 }));
        t.Put([2], [2]);
        again.Dispose();                                                     // rolled back
        using var third = db.BeginWrite(again);
        Assert.False(third.OpenTree("t").TryGet([2], out _));
    }

    [Fact]
    public void Deleting_everything_merges_pages_and_frees_them()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"));
        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            for (var i = 0; i < 30_000; i++) t.Put(Key(i), new byte[50]);
            tx.Commit();
        }
        var full = db.Verify();
        var rng = new Random(3);
        var order = Enumerable.Range(0, 30_000).OrderBy(_ => rng.Next()).ToArray();
        for (var start = 0; start < order.Length; start += 5_000)
        {
            using var tx = db.BeginWrite();
            var t = tx.CreateTree("t");
            for (var i = start; i < start + 5_000; i++) Assert.True(t.Delete(Key(order[i])));
            Assert.False(t.Delete(Key(order[start])));
            tx.Commit();
            var s = db.Verify();
            Assert.Equal(30_000 - start - 5_000, s.Trees[0].Entries);
        }
        var empty = db.Verify();
        Assert.Equal(0, empty.Trees[0].Entries);
        Assert.Equal(0, empty.Trees[0].Depth);
        Assert.True(empty.FreePages > full.Trees[0].LeafPages, $"expected the leaves back on the free list: {empty}");
    }

    [Fact]
    public void No_sync_commits_are_visible_at_once_and_durable_after_Sync()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        using (var db = Database.Open(path, new StorageOptions { SyncOnCommit = false }))
        {
            using (var tx = db.BeginWrite())
            {
                tx.CreateTree("t").Put("a"u8, "1"u8);
                tx.Commit();
            }
            using (var r = db.BeginRead()) Assert.True(r.OpenTree("t").ContainsKey("a"u8));
            db.Sync();
        }
        using (var db = Database.Open(path))
        {
            using var r = db.BeginRead();
            Assert.True(r.OpenTree("t").ContainsKey("a"u8));
        }
    }

    [Fact]
    public void An_empty_durable_commit_is_a_barrier_for_earlier_no_sync_commits()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"), new StorageOptions { SyncOnCommit = false });
        var start = db.LastDurableTransaction;
        Assert.Equal(db.LastCommittedTransaction, start);
        for (var i = 0; i < 3; i++)
        {
            using var tx = db.BeginWrite();
            tx.CreateTree("t").Put(Key(i), Key(i));
            tx.Commit(durable: false);
        }
        Assert.Equal(start + 3, db.LastCommittedTransaction);
        Assert.Equal(start, db.LastDurableTransaction);

        using (var tx = db.BeginWrite()) tx.Commit(durable: true); // changes nothing
        Assert.Equal(start + 3, db.LastCommittedTransaction);       // no new transaction...
        Assert.Equal(start + 3, db.LastDurableTransaction);         // ...but everything before it is durable

        using (var tx = db.BeginWrite()) tx.Commit(durable: true);  // already durable: still nothing new
        Assert.Equal(start + 3, db.LastDurableTransaction);
        using (var tx = db.BeginWrite()) tx.Commit(durable: false); // an empty lazy commit promises nothing
        Assert.Equal(start + 3, db.LastCommittedTransaction);
    }

    [Fact]
    public void Sync_returns_the_transaction_it_made_durable()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("db"), new StorageOptions { SyncOnCommit = false });
        Assert.Equal(db.LastCommittedTransaction, db.Sync()); // nothing pending
        using (var tx = db.BeginWrite())
        {
            tx.CreateTree("t").Put("a"u8, "1"u8);
            tx.Commit();
        }
        var committed = db.LastCommittedTransaction;
        Assert.True(db.LastDurableTransaction < committed);
        Assert.Equal(committed, db.Sync());
        Assert.Equal(committed, db.LastDurableTransaction);
    }

    [Fact]
    public void A_new_file_gets_the_default_page_size_and_an_existing_file_keeps_its_own()
    {
        using var dir = new TempDir();
        Assert.Equal(0, new StorageOptions().PageSize); // 0: the opening layer's default
        using (var db = Database.Open(dir.File("default"), new StorageOptions { SyncOnCommit = false }))
        {
            Assert.Equal(StorageOptions.DefaultPageSize, db.PageSize);
        }
        using (var db = Database.Open(dir.File("eight"), new StorageOptions { PageSize = 8192 }))
        {
            Assert.Equal(8192, db.PageSize);
        }
        foreach (var reopen in new[] { 0, 4096, 16384 })
        {
            using var db = Database.Open(dir.File("eight"), new StorageOptions { PageSize = reopen });
            Assert.Equal(8192, db.PageSize);
        }
        var e = Assert.Throws<ArgumentException>(() => new StorageOptions { PageSize = 3000 }.Validate());
        Assert.Contains("or 0 for the default", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_removes_only_creation_leftovers_whose_creator_is_gone()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        string Temp(string db, string pid) => $"{db}.{pid}.{Guid.NewGuid():N}.creating";
        var dead = Temp(path, $"{int.MaxValue}");                    // no such process: a crash's leftover
        var mine = Temp(path, $"{Environment.ProcessId}");           // this process: maybe another thread creating now
        var live = Temp(path, "1");                                  // a live process: maybe creating now
        var locked = Temp(path, $"{int.MaxValue - 1}");              // no such pid here, but someone holds its lock
        var other = Temp(dir.File("other"), $"{int.MaxValue}");      // another database's
        var odd = $"{path}.12.not-a-guid.creating";                  // not a name Cairn makes
        foreach (var f in new[] { dead, mine, live, locked, other, odd }) File.WriteAllBytes(f, [1, 2, 3]);

        var warnings = new List<string>();
        using (File.Open(locked, FileMode.Open, FileAccess.ReadWrite, FileShare.None))
        using (var db = Database.Open(path, new StorageOptions { Warning = warnings.Add }))
        {
            Assert.Contains(Path.GetFileName(dead), Assert.Single(warnings), StringComparison.Ordinal);
        }
        Assert.False(File.Exists(dead));
        foreach (var f in new[] { mine, live, locked, other, odd }) Assert.True(File.Exists(f), $"{Path.GetFileName(f)} was removed");

        // Opening the existing file cleans up too.
        File.WriteAllBytes(dead, [1]);
        using (Database.Open(path)) { }
        Assert.False(File.Exists(dead));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void The_database_file_is_private(bool encrypted)
    {
        if (OperatingSystem.IsWindows()) return;
        using var dir = new TempDir();
        var options = new StorageOptions { MasterKey = encrypted ? Cairn.Crypto.StaticKeyProvider.CreateRandom() : null };
        using (var db = Database.Open(dir.File("db"), options))
        {
            using var tx = db.BeginWrite();
            tx.CreateTree("t").Put("k"u8, new byte[100_000]);
            tx.Commit();
        }
        var file = Assert.Single(Directory.GetFiles(dir.Path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
    }

    [Fact]
    public void Option_and_key_errors_read_without_code_names_a_user_cannot_act_on()
    {
        foreach (var bad in new[]
        {
            new StorageOptions { PageSize = 3000 },
            new StorageOptions { MapReserveBytes = 1 },
            new StorageOptions { PageCacheBytes = 1 },
            new StorageOptions { GrowthStepBytes = 1 },
        })
        {
            var e = Assert.Throws<ArgumentException>(bad.Validate);
            Assert.DoesNotContain("(Parameter", e.Message, StringComparison.Ordinal);
        }
        using var dir = new TempDir();
        using (Database.Open(dir.File("db"), new StorageOptions { MasterKey = Cairn.Crypto.StaticKeyProvider.CreateRandom() })) { }
        var k = Assert.Throws<EncryptionKeyException>(() => Database.Open(dir.File("db")));
        Assert.Contains("is encrypted; open it with the master key", k.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("StorageOptions", k.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Threads_racing_to_create_one_database_end_with_one_file_and_one_owner()
    {
        const int threads = 6;
        for (var round = 0; round < 20; round++)
        {
            using var dir = new TempDir();
            var path = dir.File("db");
            using var start = new Barrier(threads);
            using var tried = new Barrier(threads);
            var outcomes = await Task.WhenAll(Enumerable.Range(0, threads).Select(_ => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                Database? db = null;
                try
                {
                    db = Database.Open(path);
                }
                catch (DatabaseLockedException)
                {
                }
                tried.SignalAndWait(); // the owner holds the file until every thread has tried
                var owned = db is not null;
                db?.Dispose();
                return owned;
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
            // Two owners would mean one creator's file was renamed over another's while it was open.
            Assert.Equal(1, outcomes.Count(o => o));
            Assert.Equal(["db"], Directory.GetFiles(dir.Path).Select(Path.GetFileName));
        }
    }
}
