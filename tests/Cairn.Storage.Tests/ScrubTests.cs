using System.Buffers.Binary;
using Cairn.Crypto;

namespace Cairn.Storage.Tests;

/// <summary>
/// The background scrub (<see cref="Scrubber"/>): a pass reads every page in use once, whatever the step size; it finds
/// exactly the damage <see cref="Database.Verify"/> finds, naming the same page; it reads the file, not the page cache;
/// and it neither blocks nor is thrown off by the writer.
/// </summary>
public sealed class ScrubTests
{
    private static readonly byte[] Key32 = Convert.FromHexString("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");

    private static StorageOptions Options(bool encrypted) => encrypted
        ? new StorageOptions { MasterKey = new StaticKeyProvider(Key32, "test key") }
        : new StorageOptions();

    private static byte[] Key(int i)
    {
        var k = new byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(k, (ulong)i);
        return k;
    }

    /// <summary>Three trees, a few dozen 4 KiB pages, overflow runs of one to several pages, and free pages (from a second commit).</summary>
    private static void Fill(string path, StorageOptions options)
    {
        using var db = Database.Open(path, options);
        using (var tx = db.BeginWrite())
        {
            var a = tx.CreateTree("a");
            var b = tx.CreateTree("b");
            tx.CreateTree("c").Put("only"u8, "one"u8);
            for (var i = 0; i < 1_500; i++) a.Put(Key(i), System.Text.Encoding.ASCII.GetBytes($"value-{i:D6}"));
            for (var i = 0; i < 6; i++) b.Put(Key(i), Enumerable.Range(0, 3_000 * (i + 1)).Select(x => (byte)(x * (i + 3))).ToArray());
            tx.Commit();
        }
        using (var tx = db.BeginWrite())
        {
            var a = tx.OpenTree("a");
            for (var i = 0; i < 1_500; i += 3) a.Delete(Key(i));
            tx.Commit();
        }
    }

    /// <summary>One whole pass in steps of <paramref name="step"/> pages: pages verified, and every damage reported.</summary>
    private static (long Pages, List<CorruptDatabaseException> Damage) Pass(Database db, int step)
    {
        var scrubber = new Scrubber();
        long pages = 0;
        var damage = new List<CorruptDatabaseException>();
        for (var i = 0; i < 100_000; i++)
        {
            var s = scrubber.Step(db, step);
            pages += s.PagesVerified;
            damage.AddRange(s.Damage);
            if (s.PassCompleted)
            {
                Assert.Equal(1, scrubber.PassesCompleted);
                return (pages, damage);
            }
        }
        throw new InvalidOperationException("the pass never completed");
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_pass_reads_every_page_in_use_once_whatever_the_step_size(bool encrypted)
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        Fill(path, Options(encrypted));
        using var db = Database.Open(path, Options(encrypted));
        var stats = db.Verify();
        var inUse = stats.PageCount - 2 - stats.FreePages;
        Assert.True(stats.FreePages > 0, "the sample has free pages (which hold nothing to verify)");
        foreach (var step in new[] { 1, 3, 17, int.MaxValue })
        {
            var (pages, damage) = Pass(db, step);
            Assert.Empty(damage);
            Assert.Equal(inUse, pages);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_flipped_byte_in_any_page_is_found_by_the_scrub_exactly_when_verify_finds_it_and_named_alike(bool encrypted)
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        Fill(path, Options(encrypted));
        var original = File.ReadAllBytes(path);
        int pageSize;
        long pageCount;
        using (var db = Database.Open(path, Options(encrypted)))
        {
            pageSize = db.PageSize;
            pageCount = db.Verify().PageCount;
        }
        var found = 0;
        for (long page = 2; page < pageCount; page++)
        {
            var copy = (byte[])original.Clone();
            copy[page * pageSize + pageSize / 3] ^= 0x10;
            var probe = dir.File($"probe{page}");
            File.WriteAllBytes(probe, copy);
            using (var db = Database.Open(probe, Options(encrypted)))
            {
                long? verify = null;
                try
                {
                    db.Verify();
                }
                catch (CorruptDatabaseException e)
                {
                    verify = e.PageNumber;
                }
                var (_, damage) = Pass(db, 5);
                if (verify is null)
                {
                    Assert.True(damage.Count == 0, $"page {page}: the scrub reports {string.Join("; ", damage.Select(d => d.Message))}, verify nothing (a free page)");
                }
                else
                {
                    found++;
                    Assert.True(damage.Count > 0, $"page {page}: verify reports page {verify}, the scrub nothing");
                    Assert.All(damage, d => Assert.Equal(verify, d.PageNumber));
                }
            }
            File.Delete(probe);
        }
        Assert.True(found > 20, $"only {found} pages held anything");
    }

    [Fact]
    public void Damage_under_a_cached_page_is_found_though_reads_still_come_from_the_cache()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        var options = Options(encrypted: true);
        Fill(path, options);
        // Tree c's only page: the page whose flip (on a copy) a fresh open reports when c is read.
        var original = File.ReadAllBytes(path);
        const int pageSize = 4096;
        long page = -1;
        for (long p = 2; p < original.Length / pageSize && page < 0; p++)
        {
            var copy = (byte[])original.Clone();
            copy[p * pageSize + 100] ^= 1;
            File.WriteAllBytes(dir.File("probe"), copy);
            using var other = Database.Open(dir.File("probe"), options);
            using var r = other.BeginRead();
            try
            {
                r.OpenTree("c").TryGet("only"u8, out _);
            }
            catch (CorruptDatabaseException e) when (e.PageNumber == p)
            {
                page = p;
            }
        }
        Assert.True(page >= 2);

        using var db = Database.Open(path, options);
        Assert.Equal(pageSize, db.PageSize);
        using (var r = db.BeginRead()) Assert.True(r.OpenTree("c").TryGet("only"u8, out _)); // its page is now in the cache
        var (clean, none) = Pass(db, 4);
        Assert.Empty(none);
        // The disk goes bad under the open database (written past its lock, as a failing disk would).
        var fd = Native.Open(path, 2 /* O_RDWR */);
        Assert.True(fd >= 0);
        using (var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true))
        {
            var b = new byte[1];
            RandomAccess.Read(handle, b, page * pageSize + 100);
            b[0] ^= 1;
            RandomAccess.Write(handle, b, page * pageSize + 100);
        }
        using (var r = db.BeginRead())
        {
            Assert.True(r.OpenTree("c").TryGet("only"u8, out var v));   // the cache still holds the plaintext
            Assert.Equal("one"u8.ToArray(), v.ToArray());
        }
        var (pages, damage) = Pass(db, 4);
        var d = Assert.Single(damage);
        Assert.Equal(page, d.PageNumber);
        Assert.Contains("authentication tag mismatch", d.Message, StringComparison.Ordinal);
        Assert.Equal(clean - 1, pages); // every page but the damaged one was read and passed
    }

    [Fact]
    public void Steps_never_wait_for_the_writer_and_passes_complete_while_it_rewrites_the_trees()
    {
        using var dir = new TempDir();
        var path = dir.File("db");
        var options = Options(encrypted: true);
        Fill(path, options);
        using var db = Database.Open(path, options);
        var scrubber = new Scrubber();
        var random = new Random(7);
        var passes = 0;
        for (var round = 0; round < 400 && passes < 3; round++)
        {
            // A write transaction is open (uncommitted) across the step: the step must not wait for it.
            using (var tx = db.BeginWrite())
            {
                var a = tx.OpenTree("a");
                for (var i = 0; i < 20; i++) a.Put(Key(random.Next(3_000)), System.Text.Encoding.ASCII.GetBytes($"round-{round}"));
                if (round % 50 == 10) tx.CreateTree($"new{round}").Put("k"u8, "v"u8);
                if (round % 50 == 30) tx.DeleteTree("c");
                var step = scrubber.Step(db, 7);
                Assert.Empty(step.Damage);
                if (step.PassCompleted) passes++;
                tx.Commit();
            }
        }
        Assert.Equal(3, passes);
        db.Verify();
    }
}
