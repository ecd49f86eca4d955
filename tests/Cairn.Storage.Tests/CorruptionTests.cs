using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Cairn.Storage.CrashChild;
using Xunit.Abstractions;

namespace Cairn.Storage.Tests;

/// <summary>
/// Files that are not what Cairn wrote: foreign files, other format versions, truncation, damaged meta pages,
/// a flipped byte in every page in use, swapped pages. Damage must surface as a typed exception that names the page
/// (<see cref="CorruptDatabaseException.PageNumber"/>), never as wrong data or another exception type.
/// Plus the argument limits, which must say what the limit is.
/// </summary>
/// <remarks>
/// The damaged database is workload transactions 1..<see cref="Txns"/> (seed <see cref="Seed"/>): four trees, a few
/// dozen pages, overflow runs of one to six pages, and a free list.
/// </remarks>
public sealed class CorruptionTests(ITestOutputHelper output)
{
    private const ulong Seed = 9001;
    private const ulong Txns = 80;
    private const int PageSize = 4096;
    private const int MetaRecordSize = 512;
    private const int ReservedTrailer = Node.TrailerSize - 8; // the trailer after the 8-byte checksum

    private static readonly Lazy<Sample> Small = new(BuildSample);

    /// <summary>
    /// The sample file and what is in it: the model per transaction (by marker), and for every page in use the page
    /// an error about it must name (itself, or the first page of its overflow run).
    /// </summary>
    private sealed record Sample(byte[] File, StorageStats Stats, ulong PageCount, SortedDictionary<ulong, ulong> Owner, SortedDictionary<ulong, int> Runs, WorkloadModel[] Models);

    // ---- not a Cairn file ----

    [Fact]
    public void Random_bytes_are_not_a_database()
    {
        using var dir = new TempDir();
        var path = dir.File("random.bin");
        var bytes = new byte[64 << 10];
        new Random(1).NextBytes(bytes);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<IncompatibleFormatException>(() => Database.Open(path, Options()));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Equal(bytes, File.ReadAllBytes(path)); // and it was left alone
    }

    [Theory]
    [InlineData(10)]      // shorter than two pages
    [InlineData(2000)]    // long enough to hold two meta pages
    public void A_text_file_is_not_a_database(int lines)
    {
        using var dir = new TempDir();
        var path = dir.File("notes.txt");
        File.WriteAllText(path, string.Concat(Enumerable.Repeat("just some notes, not a database\n", lines)));
        var before = File.ReadAllBytes(path);
        Assert.Throws<IncompatibleFormatException>(() => Database.Open(path, Options()));
        Assert.Throws<IncompatibleFormatException>(() => Database.Open(path, Options() with { CreateIfMissing = false }));
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void An_empty_file_is_not_a_database_when_creation_is_off()
    {
        using var dir = new TempDir();
        var path = dir.File("empty.cairn");
        File.WriteAllBytes(path, []);
        var e = Record.Exception(() => Database.Open(path, Options() with { CreateIfMissing = false }));
        Assert.True(e is IncompatibleFormatException, $"expected IncompatibleFormatException for an existing empty file, got {e?.GetType().Name}: {e?.Message}");
    }

    [Fact]
    public void A_missing_file_is_not_created_when_creation_is_off()
    {
        using var dir = new TempDir();
        var path = dir.File("missing.cairn");
        var e = Assert.Throws<FileNotFoundException>(() => Database.Open(path, Options() with { CreateIfMissing = false }));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Cairn_magic_over_garbage_is_corrupt_not_foreign()
    {
        using var dir = new TempDir();
        var path = dir.File("garbage.cairn");
        var bytes = new byte[4 * PageSize];
        new Random(2).NextBytes(bytes);
        "CAIRN.DB"u8.CopyTo(bytes);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CorruptDatabaseException>(() => Database.Open(path, Options() with { AllowMetaFallback = true }));
        Assert.True(e.PageNumber is 0 or 1, e.Message);
    }

    // ---- format version ----

    [Theory]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void Another_format_version_is_incompatible(bool meta0, bool meta1)
    {
        using var dir = new TempDir();
        var path = dir.File("version.cairn");
        var bytes = (byte[])Small.Value.File.Clone();
        if (meta0) SetVersion(bytes.AsSpan(0, MetaRecordSize), 2);
        if (meta1) SetVersion(bytes.AsSpan(PageSize, MetaRecordSize), 2);
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<IncompatibleFormatException>(() => Database.Open(path, Options() with { AllowMetaFallback = true }));
        Assert.Contains("version 2", e.Message, StringComparison.Ordinal);
    }

    private static void SetVersion(Span<byte> record, uint version)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(record[8..], version);
        BinaryPrimitives.WriteUInt64LittleEndian(record[504..], XxHash64.HashToUInt64(record[..504]));
    }

    // ---- truncation ----

    [Fact]
    public void A_file_cut_below_its_page_count_is_corrupt()
    {
        var sample = Small.Value;
        var needed = (long)sample.PageCount * PageSize;
        using var dir = new TempDir();
        var path = dir.File("cut.cairn");
        foreach (var length in new[] { needed - 1, needed - PageSize, needed / 2, 2L * PageSize + 1, 2L * PageSize })
        {
            File.WriteAllBytes(path, sample.File.AsSpan(0, (int)length).ToArray());
            var e = Assert.Throws<CorruptDatabaseException>(() => Database.Open(path, Options() with { AllowMetaFallback = true }));
            Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        }
        // Cut exactly at the page count: only growth slack is lost, and that is fine.
        File.WriteAllBytes(path, sample.File.AsSpan(0, (int)needed).ToArray());
        using var db = Database.Open(path, Options());
        AssertIntact(db, sample.Models[Txns], "cut at the page count");
        using (var tx = db.BeginWrite())
        {
            Workload.Apply(tx, Seed, Txns + 1);
            tx.Commit();
        }
        AssertIntact(db, sample.Models[Txns + 1], "cut at the page count, then written");
    }

    // ---- meta pages ----

    /// <summary>
    /// Every byte of both meta records, flipped in turn: opening must fail naming that meta page, and with
    /// AllowMetaFallback it must open at the other one, intact.
    /// </summary>
    [Fact]
    public void A_flipped_byte_in_a_meta_record_is_caught_and_fallback_opens_the_other()
    {
        var sample = Small.Value;
        using var dir = new TempDir();
        var path = dir.File("meta.cairn");
        var bytes = (byte[])sample.File.Clone();
        File.WriteAllBytes(path, bytes);
        var markers = new ulong[2];
        for (var slot = 0; slot < 2; slot++)
        {
            using var db = OpenOnlySlot(bytes, slot, dir.File("slot.cairn"));
            using var tx = db.BeginRead();
            markers[slot] = Workload.ReadMarker(tx);
        }
        Assert.Equal(new[] { Txns, Txns - 1 }.Order(), markers.Order());

        var rng = new Random((int)Seed);
        var failures = new List<string>();
        for (var slot = 0; slot < 2; slot++)
        {
            for (var offset = 0; offset < MetaRecordSize; offset++)
            {
                var at = (long)slot * PageSize + offset;
                var original = bytes[at];
                var flipped = (byte)(original ^ rng.Next(1, 256));
                PokeByte(path, at, flipped);
                var problem = CheckMetaDamage(path, slot, markers[slot ^ 1], sample);
                if (problem is not null) failures.Add($"meta page {slot} byte {offset} (0x{original:X2} -> 0x{flipped:X2}): {problem}");
                PokeByte(path, at, original);
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {2 * MetaRecordSize} flips mishandled (seed {Seed}):\n{string.Join("\n", failures.Take(20))}");
    }

    private static string? CheckMetaDamage(string path, int slot, ulong otherMarker, Sample sample)
    {
        try
        {
            using var db = Database.Open(path, Options());
            return "opened without complaint";
        }
        catch (CorruptDatabaseException e) when (e.PageNumber == slot)
        {
        }
        catch (Exception e)
        {
            return $"without fallback: {e.GetType().Name}: {e.Message}";
        }
        try
        {
            using var db = Database.Open(path, Options() with { AllowMetaFallback = true });
            db.Verify();
            using var tx = db.BeginRead();
            var marker = Workload.ReadMarker(tx);
            if (marker != otherMarker) return $"fallback opened at marker {marker}, expected the other meta page's {otherMarker}";
            return sample.Models[marker].Diff(tx) is { } diff ? $"fallback content: {diff}" : null;
        }
        catch (Exception e)
        {
            return $"with fallback: {e.GetType().Name}: {e.Message}";
        }
    }

    /// <summary>
    /// The parts of a meta-page error, for a caller (the server) that composes its own message: the file, the page, what
    /// is wrong, and the transaction the intact meta page would roll back to. The message names no C# API.
    /// </summary>
    [Fact]
    public void A_damaged_meta_page_reports_its_parts_and_the_transaction_fallback_would_open()
    {
        var sample = Small.Value;
        using var dir = new TempDir();
        var path = dir.File("meta.cairn");
        var bytes = (byte[])sample.File.Clone();
        var newest = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(32)) > BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(PageSize + 32)) ? 0 : 1;
        var older = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan((newest ^ 1) * PageSize + 32));
        bytes[newest * PageSize + 100] ^= 0xFF;
        File.WriteAllBytes(path, bytes);
        var e = Assert.Throws<CorruptDatabaseException>(() => Database.Open(path, Options()));
        Assert.Equal(path, e.Path);
        Assert.Equal(newest, e.PageNumber);
        Assert.Equal("meta page checksum mismatch", e.Detail);
        Assert.Equal(older, e.FallbackTransaction);
        Assert.Contains($"{path}: page {newest}: meta page checksum mismatch", e.Message, StringComparison.Ordinal);
        Assert.Contains($"intact at transaction {older}", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("StorageOptions", e.Message, StringComparison.Ordinal);

        bytes[(newest ^ 1) * PageSize + 100] ^= 0xFF; // both damaged: no way out but a restore
        File.WriteAllBytes(path, bytes);
        e = Assert.Throws<CorruptDatabaseException>(() => Database.Open(path, Options() with { AllowMetaFallback = true }));
        Assert.Null(e.FallbackTransaction);
        Assert.Equal(path, e.Path);

        File.WriteAllBytes(path, sample.File.AsSpan(0, 3 * PageSize).ToArray()); // truncated: no page to name
        e = Assert.Throws<CorruptDatabaseException>(() => Database.Open(path, Options()));
        Assert.Equal(-1, e.PageNumber);
        Assert.StartsWith("the file is truncated", e.Detail, StringComparison.Ordinal);
        Assert.Null(e.FallbackTransaction);
    }

    /// <summary>Opens a copy of the sample in which only meta page <paramref name="slot"/> is intact.</summary>
    private static Database OpenOnlySlot(byte[] bytes, int slot, string path)
    {
        var copy = (byte[])bytes.Clone();
        copy[(long)(slot ^ 1) * PageSize + 100] ^= 0xFF;
        File.WriteAllBytes(path, copy);
        return Database.Open(path, Options() with { AllowMetaFallback = true });
    }

    // ---- data pages ----

    /// <summary>
    /// For every page in use, a byte flipped at a random offset in its checksummed part: reading everything and
    /// Verify must throw <see cref="CorruptDatabaseException"/> naming the page (or its overflow run), and nothing read
    /// before that may differ from the model. A write transaction may fail only the same way.
    /// </summary>
    [Fact]
    public void A_flipped_byte_in_any_page_in_use_is_caught_and_named()
    {
        var sample = Small.Value;
        var rng = new Random((int)Seed + 1);
        using var dir = new TempDir();
        var path = dir.File("flip.cairn");
        var failures = new List<string>();
        foreach (var (page, owner) in sample.Owner)
        {
            var bytes = (byte[])sample.File.Clone();
            // The checksum covers the page body and itself; the trailer's last 24 bytes have their own test below.
            var lastOfUnit = owner + (ulong)sample.Runs[owner] - 1;
            var limit = page == lastOfUnit ? PageSize - ReservedTrailer : PageSize;
            var offset = rng.Next(limit);
            bytes[(long)page * PageSize + offset] ^= (byte)rng.Next(1, 256);
            File.WriteAllBytes(path, bytes);
            var problem = CheckDamage(path, [page, owner], sample.Models[Txns]);
            if (problem is not null) failures.Add($"page {page} (owner {owner}) byte {offset}: {problem}");
        }
        output.WriteLine($"{sample.Owner.Count} pages in use in {sample.Runs.Count} units; {sample.Stats}");
        Assert.True(failures.Count == 0, $"{failures.Count} of {sample.Owner.Count} damaged pages mishandled (seed {Seed}):\n{string.Join("\n", failures)}");
    }

    /// <summary>
    /// The 24 bytes after the checksum in each page's (or run's) trailer: a damaged byte there is damage on disk,
    /// and Verify exists to find it.
    /// </summary>
    [Fact]
    public void A_flipped_byte_in_a_page_trailer_is_caught()
    {
        var sample = Small.Value;
        var rng = new Random((int)Seed + 2);
        using var dir = new TempDir();
        var path = dir.File("trailer.cairn");
        var failures = new List<string>();
        foreach (var (owner, pages) in sample.Runs)
        {
            var bytes = (byte[])sample.File.Clone();
            var offset = (long)(owner + (ulong)pages) * PageSize - ReservedTrailer + rng.Next(ReservedTrailer);
            bytes[offset] ^= (byte)rng.Next(1, 256);
            File.WriteAllBytes(path, bytes);
            var problem = CheckDamage(path, [owner], sample.Models[Txns]);
            if (problem is not null) failures.Add($"unit at page {owner} ({pages} pages), file offset {offset}: {problem}");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {sample.Runs.Count} damaged trailers mishandled (seed {Seed}):\n{string.Join("\n", failures.Take(10))}");
    }

    /// <summary>Every pair of pages in use, swapped: caught, and named as one of the two (or their runs).</summary>
    [Fact]
    public void Two_swapped_pages_are_caught()
    {
        var sample = Small.Value;
        using var dir = new TempDir();
        var path = dir.File("swap.cairn");
        var pages = sample.Owner.Keys.ToArray();
        var failures = new List<string>();
        var cases = 0;
        for (var i = 0; i < pages.Length; i++)
        {
            for (var j = i + 1; j < pages.Length; j++)
            {
                var (a, b) = (pages[i], pages[j]);
                var bytes = (byte[])sample.File.Clone();
                var tmp = bytes.AsSpan((int)a * PageSize, PageSize).ToArray();
                bytes.AsSpan((int)b * PageSize, PageSize).CopyTo(bytes.AsSpan((int)a * PageSize));
                tmp.CopyTo(bytes.AsSpan((int)b * PageSize));
                File.WriteAllBytes(path, bytes);
                cases++;
                var problem = CheckDamage(path, [a, b, sample.Owner[a], sample.Owner[b]], sample.Models[Txns]);
                if (problem is not null) failures.Add($"pages {a} and {b}: {problem}");
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {cases} swaps mishandled:\n{string.Join("\n", failures.Take(20))}");
    }

    /// <summary>
    /// Opens the damaged file, reads everything (comparing with the model), runs Verify, then tries a write that
    /// touches every tree. Returns null when damage was reported only as a CorruptDatabaseException naming one of
    /// <paramref name="pages"/>, with no wrong data on the way; else what went wrong.
    /// </summary>
    private static string? CheckDamage(string path, ulong[] pages, WorkloadModel model)
    {
        Database db;
        try
        {
            db = Database.Open(path, Options());
        }
        catch (Exception e)
        {
            return $"open threw {e.GetType().Name}: {e.Message}";
        }
        using (db)
        {
            string? Named(CorruptDatabaseException e, string step) =>
                pages.Contains((ulong)e.PageNumber) ? null : $"{step}: the exception names page {e.PageNumber}, expected one of [{string.Join(", ", pages.Distinct())}]: {e.Message}";

            var readFailed = false;
            try
            {
                using var tx = db.BeginRead();
                if (model.Diff(tx) is { } diff) return $"read returned wrong data: {diff}";
            }
            catch (CorruptDatabaseException e)
            {
                if (Named(e, "read") is { } wrong) return wrong;
                readFailed = true;
            }
            catch (Exception e)
            {
                return $"read threw {e.GetType().Name}: {e.Message}";
            }

            try
            {
                db.Verify();
                return readFailed ? "the read failed but Verify passed" : "Verify passed: the damage went unnoticed";
            }
            catch (CorruptDatabaseException e)
            {
                if (Named(e, "Verify") is { } wrong) return wrong;
            }
            catch (Exception e)
            {
                return $"Verify threw {e.GetType().Name}: {e.Message}";
            }

            try
            {
                using var tx = db.BeginWrite();
                foreach (var name in model.Trees.Keys) tx.CreateTree(name).Put("zz-probe"u8, "x"u8);
                tx.Commit();
            }
            catch (CorruptDatabaseException e)
            {
                if (Named(e, "write") is { } wrong) return wrong;
            }
            catch (Exception e)
            {
                return $"write threw {e.GetType().Name}: {e.Message}";
            }
        }
        return null;
    }

    // ---- limits ----

    [Fact]
    public void Keys_values_and_names_over_the_limits_are_refused_naming_the_limit()
    {
        using var dir = new TempDir();
        using var db = Database.Open(dir.File("limits.cairn"), Options());
        var maxKey = db.MaxKeySize.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var maxValue = Database.MaxValueSize.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var bigKey = new byte[db.MaxKeySize];
        bigKey.AsSpan().Fill(0x7A);
        using (var tx = db.BeginWrite())
        {
            var t = tx.CreateTree("t");
            AssertNamesLimit(() => t.Put([], "v"u8), maxKey);
            AssertNamesLimit(() => t.Put(new byte[db.MaxKeySize + 1], "v"u8), maxKey);
            AssertNamesLimit(() => t.Delete([]), maxKey);
            AssertNamesLimit(() => t.Delete(new byte[db.MaxKeySize + 1]), maxKey);
            AssertNamesLimit(() => t.Put("k"u8, new byte[Database.MaxValueSize + 1]), maxValue);
            AssertNamesLimit(() => tx.CreateTree(""), "255");
            AssertNamesLimit(() => tx.CreateTree(new string('n', 256)), "255");
            AssertNamesLimit(() => tx.CreateTree(new string('é', 128)), "255"); // 256 UTF-8 bytes

            // At the limits everything fits, and the refused calls left nothing behind.
            t.Put(bigKey, new byte[3 * PageSize]);
            t.Put("k"u8, "v"u8);
            tx.CreateTree(new string('n', 255)).Put("k"u8, "v"u8);
            tx.Commit();
        }
        db.Verify();
        using var r = db.BeginRead();
        Assert.Equal(2, r.OpenTree("t").Count);
        Assert.Equal(2, r.GetTreeNames().Count);
        Assert.True(r.OpenTree("t").TryGet(bigKey, out var v) && v.Length == 3 * PageSize);
    }

    [Fact]
    public void Options_out_of_range_are_refused_naming_the_fix()
    {
        using var dir = new TempDir();
        var path = dir.File("options.cairn");
        AssertNamesLimit(() => Database.Open(path, new StorageOptions { PageSize = 3000 }), "4096");
        AssertNamesLimit(() => Database.Open(path, new StorageOptions { PageSize = 1 << 17 }), "65536");
        AssertNamesLimit(() => Database.Open(path, new StorageOptions { MapReserveBytes = 4096 }), "1 MiB");
        AssertNamesLimit(() => Database.Open(path, new StorageOptions { PageSize = 8192, GrowthStepBytes = 4096 }), "8192");
        Assert.False(File.Exists(path));
    }

    private static void AssertNamesLimit(Action act, string limit)
    {
        var e = Assert.ThrowsAny<ArgumentException>(act);
        Assert.True(e.Message.Contains(limit, StringComparison.Ordinal), $"'{e.Message}' does not name the limit {limit}");
    }

    // ---- the sample ----

    private static StorageOptions Options() => new() { PageSize = PageSize, GrowthStepBytes = PageSize, MapReserveBytes = 8L << 20 };

    private static void AssertIntact(Database db, WorkloadModel model, string where)
    {
        db.Verify();
        using var tx = db.BeginRead();
        var diff = model.Diff(tx);
        Assert.True(diff is null, $"{where}: {diff}");
    }

    private static void PokeByte(string path, long offset, byte value)
    {
        using var h = File.OpenHandle(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite);
        RandomAccess.Write(h, [value], offset);
    }

    private static Sample BuildSample()
    {
        using var dir = new TempDir();
        var path = dir.File("sample.cairn");
        var models = new WorkloadModel[Txns + 2];
        for (var i = 0UL; i < (ulong)models.Length; i++)
        {
            models[i] = new WorkloadModel(Seed);
            models[i].AdvanceTo(i);
        }
        SortedDictionary<ulong, ulong> owner;
        SortedDictionary<ulong, int> runs;
        StorageStats stats;
        using (var db = Database.Open(path, Options()))
        {
            for (var i = 1UL; i <= Txns; i++)
            {
                using var tx = db.BeginWrite();
                Workload.Apply(tx, Seed, i);
                tx.Commit();
            }
            AssertIntact(db, models[Txns], "sample");
            (owner, runs) = PagesInUse(db);
            stats = db.GetStats();
        }
        Assert.Equal(stats.PageCount - 2, owner.Count + stats.FreePages);
        Assert.Contains(runs.Values, n => n >= 3);          // a multi-page overflow run
        Assert.True(stats.FreePages > 0, "the sample should have a free list");
        Assert.InRange(stats.PageCount, 20, 120);
        return new Sample(File.ReadAllBytes(path), stats, (ulong)stats.PageCount, owner, runs, models);
    }

    /// <summary>
    /// Every page reachable from the latest commit (catalog, trees, free list, overflow runs), mapped to the page an
    /// error about it should name; and each such unit's length in pages.
    /// </summary>
    private static (SortedDictionary<ulong, ulong> Owner, SortedDictionary<ulong, int> Runs) PagesInUse(Database db)
    {
        var owner = new SortedDictionary<ulong, ulong>();
        var runs = new SortedDictionary<ulong, int>();
        using var tx = db.BeginRead();

        void Walk(ulong pg)
        {
            owner.Add(pg, pg);
            runs.Add(pg, 1);
            var p = tx.GetNode(pg);
            var count = Node.Count(p);
            for (var i = 0; i < count; i++)
            {
                p = tx.GetNode(pg);
                if (Node.Kind(p) == PageKind.Branch)
                {
                    Walk(Node.BranchChild(p, i));
                }
                else if (Node.LeafIsOverflow(p, i))
                {
                    var run = Node.LeafOverflowPage(p, i);
                    var pages = Transaction.PagesFor(Node.LeafValueLength(p, i), db.PageSize);
                    runs.Add(run, pages);
                    for (var k = 0UL; k < (ulong)pages; k++) owner.Add(run + k, run);
                }
            }
        }

        Walk(tx.Catalog.Root.Root);
        if (tx.Meta.FreeTree.Root != 0) Walk(tx.Meta.FreeTree.Root);
        foreach (var name in tx.GetTreeNames())
        {
            var root = tx.OpenTree(name).State.Root.Root;
            if (root != 0) Walk(root);
        }
        return (owner, runs);
    }

    // ---- found by fuzzing (docs/faults.md, "Fuzzing") ----

    [Theory]
    [InlineData(ulong.MaxValue)]
    [InlineData(1UL << 63)]
    [InlineData((1UL << 52) + 3)]
    public void A_meta_page_count_that_would_wrap_the_size_check_is_a_truncated_file(ulong pageCount)
    {
        using var dir = new TempDir();
        var path = dir.File("wrap.cairn");
        using (var db = Database.Open(path, Options()))
        {
            using var tx = db.BeginWrite();
            tx.CreateTree("t").Put("k"u8, "v"u8);
            tx.Commit();
        }
        var bytes = File.ReadAllBytes(path);
        for (var slot = 0; slot < 2; slot++)
        {
            var meta = bytes.AsSpan(slot * PageSize, MetaRecordSize);
            BinaryPrimitives.WriteUInt64LittleEndian(meta[40..], pageCount);
            BinaryPrimitives.WriteUInt64LittleEndian(meta[504..], XxHash64.HashToUInt64(meta[..504]));
        }
        File.WriteAllBytes(path, bytes);
        // Before the fix the byte count wrapped, the file opened, and the first read ran off the mapping (a crash).
        var e = Assert.Throws<CorruptDatabaseException>(() => Database.Open(path, Options()));
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF, 0xFE })]  // not UTF-8
    [InlineData(new byte[] { 0xC3 })]        // a cut UTF-8 sequence
    public void A_catalog_key_that_is_not_a_tree_name_is_corruption(byte[] name)
    {
        using var dir = new TempDir();
        var path = dir.File("names.cairn");
        ulong root;
        using (var db = Database.Open(path, Options()))
        {
            using (var tx = db.BeginWrite())
            {
                tx.CreateTree(new string('a', name.Length)).Put("k"u8, "v"u8);
                tx.Commit();
            }
            using var rx = db.BeginRead();
            root = rx.Meta.Catalog.Root;
        }
        var bytes = File.ReadAllBytes(path);
        var seed = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)) ^ BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(24));
        var page = bytes.AsSpan((int)root * PageSize, PageSize);
        name.CopyTo(Node.LeafKey(page, 0).Length == name.Length ? page[(Node.Slot(page, 0) + Node.LeafEntryHeader)..] : throw new InvalidOperationException("layout"));
        PageSeal.Seal(page, seed);
        File.WriteAllBytes(path, bytes);
        using var damaged = Database.Open(path, Options());
        using (var tx = damaged.BeginRead())
        {
            // Before the fix: ArgumentException or KeyNotFoundException from opening the name read back.
            var e = Assert.Throws<CorruptDatabaseException>(() => tx.GetTreeNames());
            Assert.Contains("catalog", e.Message, StringComparison.Ordinal);
        }
        Assert.Throws<CorruptDatabaseException>(() => damaged.Verify());
    }

    [Theory]
    [InlineData(0x7FFFFFF0)]
    [InlineData(int.MaxValue - 7 - 2)]
    public void A_value_length_near_two_gibibytes_behind_a_valid_checksum_is_corruption(int valueLength)
    {
        // Found while reviewing what the fuzzer's interesting values reach: off + 7 + key + length wrapped negative,
        // passed the bounds check, and the value's slice threw ArgumentOutOfRangeException.
        using var dir = new TempDir();
        var path = dir.File("length.cairn");
        ulong root;
        using (var db = Database.Open(path, Options()))
        {
            using (var tx = db.BeginWrite())
            {
                tx.CreateTree("t").Put("k"u8, "v"u8);
                tx.Commit();
            }
            using var rx = db.BeginRead();
            root = rx.OpenTree("t").State.Root.Root;
        }
        var bytes = File.ReadAllBytes(path);
        var seed = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(16)) ^ BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(24));
        var page = bytes.AsSpan((int)root * PageSize, PageSize);
        BinaryPrimitives.WriteInt32LittleEndian(page[(Node.Slot(page, 0) + 3)..], valueLength);
        PageSeal.Seal(page, seed);
        File.WriteAllBytes(path, bytes);
        using var damaged = Database.Open(path, Options());
        using var read = damaged.BeginRead();
        var e = Assert.Throws<CorruptDatabaseException>(() => read.OpenTree("t").TryGet("k"u8, out _));
        Assert.Contains("runs past the entry area", e.Message, StringComparison.Ordinal);
    }
}

