using System.Buffers.Binary;
using System.Security.Cryptography;
using Cairn.Crypto;

namespace Cairn.Storage.Tests;

/// <summary>Every page sealed with AES-256-GCM: round trips, wrong keys, tampering, rotation, nonce uniqueness, the page cache.</summary>
public sealed class EncryptionTests
{
    private const string TreeName = "a-tree-whose-name-is-plaintext";

    private static readonly byte[] KeyA = Convert.FromHexString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    private static readonly byte[] KeyB = Convert.FromHexString("f0e0d0c0b0a090807060504030201000ffeeddccbbaa99887766554433221100");

    private static StorageOptions With(byte[] key, long cache = 256L << 20) => new() { MasterKey = new StaticKeyProvider(key, "test key"), PageCacheBytes = cache };

    private static byte[] Key(int i)
    {
        var k = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(k, (ulong)i);
        return k;
    }

    /// <summary>A small database: a few dozen pages of ordinary entries plus two overflow runs.</summary>
    private static void Fill(string path, StorageOptions options, int keys = 2_000)
    {
        using var db = Database.Open(path, options);
        using var tx = db.BeginWrite();
        var t = tx.CreateTree(TreeName);
        for (var i = 0; i < keys; i++) t.Put(Key(i), System.Text.Encoding.ASCII.GetBytes($"secret-value-{i:D6}-plaintext"));
        t.Put("big"u8, Enumerable.Range(0, 30_000).Select(i => (byte)i).ToArray());
        t.Put("bigger"u8, Enumerable.Range(0, 70_000).Select(i => (byte)(i * 7)).ToArray());
        tx.Commit();
    }

    private static void ReadAll(Database db, int keys = 2_000)
    {
        using var r = db.BeginRead();
        var t = r.OpenTree(TreeName);
        for (var i = 0; i < keys; i++)
        {
            Assert.True(t.TryGet(Key(i), out var v), $"key {i} missing");
            Assert.Equal($"secret-value-{i:D6}-plaintext", System.Text.Encoding.ASCII.GetString(v));
        }
        Assert.True(t.TryGet("big"u8, out var big) && big.Length == 30_000 && big[29_999] == unchecked((byte)29_999));
        Assert.True(t.TryGet("bigger"u8, out big) && big.Length == 70_000);
    }

    [Fact]
    public void Data_round_trips_and_no_plaintext_reaches_the_file()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        Fill(path, With(KeyA));
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(-1, bytes.AsSpan().IndexOf("secret-value"u8));
        Assert.Equal(-1, bytes.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(TreeName))); // the catalog's names are sealed too
        // (This looked for the three bytes "t" once, and ciphertext holds any three given bytes about one time in a hundred.)
        using var db = Database.Open(path, With(KeyA));
        Assert.True(db.IsEncrypted);
        ReadAll(db);
        db.Verify();
    }

    [Fact]
    public void A_wrong_or_missing_key_is_refused_at_open_and_changes_nothing()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        Fill(path, With(KeyA));
        var before = SHA256.HashData(File.ReadAllBytes(path));
        var wrong = Assert.Throws<EncryptionKeyException>(() => Database.Open(path, With(KeyB)));
        Assert.Contains("does not open", wrong.Message);
        var missing = Assert.Throws<EncryptionKeyException>(() => Database.Open(path));
        Assert.Contains("is encrypted", missing.Message);
        Assert.Equal(before, SHA256.HashData(File.ReadAllBytes(path)));

        var plain = dir.File("plain");
        Fill(plain, new StorageOptions());
        Assert.Throws<EncryptionKeyException>(() => Database.Open(plain, With(KeyA)));
    }

    [Fact]
    public void Rotating_the_master_key_rewraps_and_retires_the_old_key()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        Fill(path, With(KeyA));
        var pagesBefore = File.ReadAllBytes(path).AsSpan(2 * 4096).ToArray();
        using (var db = Database.Open(path, With(KeyA)))
        {
            db.RotateMasterKey(new StaticKeyProvider(KeyB));
            ReadAll(db);
        }
        Assert.Equal(pagesBefore, File.ReadAllBytes(path).AsSpan(2 * 4096).ToArray()); // data pages untouched
        Assert.Throws<EncryptionKeyException>(() => Database.Open(path, With(KeyA)));
        using (var db = Database.Open(path, With(KeyB)))
        {
            ReadAll(db);
            db.Verify();
        }
    }

    [Fact]
    public void Flipping_any_byte_of_any_page_is_reported_as_that_page()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        Fill(path, With(KeyA), keys: 600);
        var original = File.ReadAllBytes(path);
        long pageCount;
        using (var db = Database.Open(path, With(KeyA))) pageCount = db.Verify().PageCount;
        var runs = RunStarts(path, pageCount);
        var rng = new Random(11);
        var copy = dir.File("copy");
        for (var pg = 2L; pg < pageCount; pg++)
        {
            var damaged = (byte[])original.Clone();
            var offset = pg * 4096 + rng.Next(4096);
            damaged[offset] ^= (byte)(1 << rng.Next(8));
            File.WriteAllBytes(copy, damaged);
            using var db = Database.Open(copy, With(KeyA));
            var e = Assert.Throws<CorruptDatabaseException>(() =>
            {
                db.Verify();
                ReadAll(db, 600);
            });
            var expected = runs.TryGetValue(pg, out var start) ? start : pg;
            Assert.True(e.PageNumber == expected, $"byte {offset} of page {pg} flipped (expected page {expected}); reported {e.Message}");
        }
    }

    /// <summary>Page number → first page of the overflow run holding it, for every page of every run.</summary>
    private static Dictionary<long, long> RunStarts(string path, long pageCount)
    {
        var map = new Dictionary<long, long>();
        using var db = Database.Open(path, With(KeyA));
        using var tx = db.BeginRead();
        for (var pg = 2UL; pg < (ulong)pageCount; pg++)
        {
            if (map.ContainsKey((long)pg)) continue;
            var p = tx.GetNode(pg);
            if (Node.Kind(p) != PageKind.Leaf) continue;
            for (var i = 0; i < Node.Count(p); i++)
            {
                if (!Node.LeafIsOverflow(p, i)) continue;
                var start = Node.LeafOverflowPage(p, i);
                var pages = Transaction.PagesFor(Node.LeafValueLength(p, i), 4096);
                for (var k = 0UL; k < (ulong)pages; k++) map[(long)(start + k)] = (long)start;
            }
        }
        return map;
    }

    [Fact]
    public void Swapped_pages_and_a_page_from_another_file_are_detected()
    {
        using var dir = new TempDir();
        var a = dir.File("a");
        var b = dir.File("b");
        Fill(a, With(KeyA), keys: 600);
        Fill(b, With(KeyA), keys: 600);
        var fa = File.ReadAllBytes(a);
        var fb = File.ReadAllBytes(b);
        long pageCount;
        using (var db = Database.Open(a, With(KeyA))) pageCount = db.Verify().PageCount;

        var swapped = (byte[])fa.Clone();
        fa.AsSpan(2 * 4096, 4096).CopyTo(swapped.AsSpan(3 * 4096));
        fa.AsSpan(3 * 4096, 4096).CopyTo(swapped.AsSpan(2 * 4096));
        var copy = dir.File("copy");
        File.WriteAllBytes(copy, swapped);
        using (var db = Database.Open(copy, With(KeyA))) Assert.Throws<CorruptDatabaseException>(() => db.Verify());

        // Same page number, same master key, same content: another file's page still fails (file id is authenticated).
        for (var pg = 2; pg < pageCount; pg++)
        {
            var mixed = (byte[])fa.Clone();
            fb.AsSpan(pg * 4096, 4096).CopyTo(mixed.AsSpan(pg * 4096));
            File.WriteAllBytes(copy, mixed);
            using var db = Database.Open(copy, With(KeyA));
            var e = Assert.Throws<CorruptDatabaseException>(() => { db.Verify(); ReadAll(db, 600); });
            Assert.True(e.PageNumber >= 2 && e.PageNumber <= pg, $"page {pg} from another file: {e.Message}");
        }
    }

    /// <summary>
    /// The mechanism that keeps (key, nonce) unique: every open draws a fresh session salt, counters rise within a
    /// session. Collect the (salt, counter) of every page ever written, across reopens and across two copies of one
    /// file written independently (a restored backup): no pair repeats.
    /// </summary>
    [Fact]
    public void No_key_and_nonce_pair_is_ever_used_twice_across_reopens_crashes_and_copies()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        var seen = new HashSet<string>();
        var sessions = new HashSet<string>();
        void Harvest(string file)
        {
            var bytes = File.ReadAllBytes(file);
            for (var off = 2L * 4096; off + 4096 <= bytes.Length; off += 4096)
            {
                var trailer = bytes.AsSpan((int)off + 4096 - 32, 16);
                if (!trailer.ContainsAnyExcept((byte)0)) continue; // never written
                var id = Convert.ToHexString(trailer);
                sessions.Add(Convert.ToHexString(trailer.Slice(2, 10)));
                seen.Add(id);
            }
        }
        var writes = 0;
        for (var session = 0; session < 5; session++)
        {
            using (var db = Database.Open(path, With(KeyA)))
            {
                for (var c = 0; c < 5; c++)
                {
                    using var tx = db.BeginWrite();
                    var t = tx.CreateTree("t");
                    for (var i = 0; i < 300; i++) t.Put(Key(i * 7 + c), Key(session));
                    tx.Commit();
                    writes++;
                }
            }
            var before = seen.Count;
            Harvest(path);
            Assert.True(seen.Count > before, "new pages carried no new (salt, counter)");
        }
        Assert.True(sessions.Count >= 2, "reopening must start a new key session");

        // A restored backup: two copies of the file, each opened and written on its own.
        var copy = dir.File("copy");
        File.Copy(path, copy);
        var perFile = new List<HashSet<string>>();
        foreach (var file in new[] { path, copy })
        {
            using (var db = Database.Open(file, With(KeyA)))
            using (var tx = db.BeginWrite())
            {
                var t = tx.CreateTree("t");
                for (var i = 0; i < 300; i++) t.Put(Key(i), Key(99));
                tx.Commit();
            }
            var mine = new HashSet<string>();
            var bytes = File.ReadAllBytes(file);
            for (var off = 2L * 4096; off + 4096 <= bytes.Length; off += 4096)
            {
                var trailer = bytes.AsSpan((int)off + 4096 - 32, 16);
                if (trailer.ContainsAnyExcept((byte)0)) mine.Add(Convert.ToHexString(trailer));
            }
            perFile.Add(mine);
        }
        // Pages both copies inherited are identical; every page either copy wrote since carries a pair the other never used.
        var inherited = new HashSet<string>(seen);
        var newA = perFile[0].Where(x => !inherited.Contains(x)).ToHashSet();
        var newB = perFile[1].Where(x => !inherited.Contains(x)).ToHashSet();
        Assert.NotEmpty(newA);
        Assert.NotEmpty(newB);
        Assert.Empty(newA.Intersect(newB));
    }

    [Fact]
    public async Task A_page_cache_a_fraction_of_the_data_evicts_and_stays_correct_under_concurrent_readers()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        var options = With(KeyA, cache: 64 * 4096); // 64 pages; the data is several hundred
        using var db = Database.Open(path, options with { SyncOnCommit = false });
        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            for (var i = 0; i < 20_000; i++) t.Put(Key(i), Key(0));
            tx.Commit();
        }
        var failures = 0;
        var reads = 0;
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 2).Select(_ => Task.Run(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var r = db.BeginRead();
                byte[]? first = null;
                var n = 0;
                foreach (var e in r.OpenTree("t").All())
                {
                    first ??= e.Value.ToArray();
                    if (!e.Value.SequenceEqual(first)) Interlocked.Increment(ref failures);
                    n++;
                }
                if (n != 20_000) Interlocked.Increment(ref failures);
                Interlocked.Increment(ref reads);
            }
        })).ToArray();
        for (var round = 1; round <= 30 || Volatile.Read(ref reads) < 10; round++)
        {
            using var tx = db.BeginWrite();
            var t = tx.CreateTree("t");
            for (var i = 0; i < 20_000; i++) t.Put(Key(i), Key(round));
            tx.Commit();
        }
        stop.Cancel();
        await Task.WhenAll(readers);
        Assert.Equal(0, failures);
        Assert.True(db.PageCacheBytes <= 64 * 4096 + 16 * 4096, $"cache holds {db.PageCacheBytes} bytes over a budget of {64 * 4096}");
        db.Verify();
    }

    [Fact]
    public void Reads_after_warm_up_allocate_nothing()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        Fill(path, With(KeyA));
        using var db = Database.Open(path, With(KeyA));
        using var r = db.BeginRead();
        var t = r.OpenTree(TreeName);
        var keys = Enumerable.Range(0, 2_000).Select(Key).ToArray();
        long sum = 0;
        long allocated = 0;
        for (var pass = 0; pass < 2; pass++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            foreach (var k in keys)
            {
                if (t.TryGet(k, out var v)) sum += v.Length;
            }
            foreach (var e in t.All()) sum += e.Key.Length;
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, allocated);
        Assert.True(sum > 0);
    }

    [Fact]
    public void A_key_file_is_created_private_and_a_warning_names_one_beside_the_data()
    {
        using var dir = new TempDir();
        var keyPath = dir.File("master.key");
        var provider = KeyFileProvider.OpenOrCreate(keyPath);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keyPath));
        }
        var warnings = new List<string>();
        using (var db = Database.Open(dir.File("db"), new StorageOptions { MasterKey = provider, Warning = warnings.Add }))
        {
            Assert.Single(db.Warnings);
        }
        Assert.Contains("beside the data", Assert.Single(warnings));
        // The same key from the file opens it again; the environment-variable provider reads the same format.
        Environment.SetEnvironmentVariable("CAIRN_TEST_MASTER_KEY", File.ReadAllText(keyPath).Trim());
        using (var db = Database.Open(dir.File("db"), new StorageOptions { MasterKey = new EnvironmentKeyProvider("CAIRN_TEST_MASTER_KEY") }))
        {
            Assert.True(db.IsEncrypted);
        }
        Environment.SetEnvironmentVariable("CAIRN_TEST_MASTER_KEY", "not a key");
        Assert.Throws<FormatException>(() => Database.Open(dir.File("db"), new StorageOptions { MasterKey = new EnvironmentKeyProvider("CAIRN_TEST_MASTER_KEY") }));
    }
}
