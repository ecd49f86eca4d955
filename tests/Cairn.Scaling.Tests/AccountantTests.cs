using System.Buffers;
using System.IO.MemoryMappedFiles;
using System.Text;
using Microsoft.Extensions.ObjectPool;
using Microsoft.Extensions.Time.Testing;
using static Cairn.Scaling.Tests.Trace;

namespace Cairn.Scaling.Tests;

/// <summary>The accountant and its sources: each figure under its own name, totals without double counting.</summary>
public sealed class AccountantTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-scaling-tests", Guid.NewGuid().ToString("N"));

    public AccountantTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A page cache and watch buffers as the server has them: lists of buffers that count their bytes.</summary>
    private sealed class Buffers
    {
        private readonly List<byte[]> _held = [];
        public long Bytes { get { lock (_held) return _held.Sum(b => (long)b.Length); } }
        public void Add(int count, int size) { lock (_held) for (var i = 0; i < count; i++) _held.Add(new byte[size]); }
    }

    [Fact]
    public void A_page_cache_workload_shows_in_the_page_cache_figure_and_a_watch_workload_in_the_watch_figure()
    {
        var time = new FakeTimeProvider(Start);
        var pages = new Buffers();
        var watches = new Buffers();
        var accountant = new MemoryAccountant(time);
        accountant.Add("page-cache", SourceKind.Managed, () => pages.Bytes);
        accountant.Add("watch-buffers", SourceKind.Managed, () => watches.Bytes);
        accountant.Add("mapped", SourceKind.Native, () => 3 * MiB);

        var before = accountant.Sample();
        Assert.Equal(Start, before.Time);
        Assert.Equal(3 * MiB, before.RamBytes);

        pages.Add(64, 16384);  // 1 MiB of pages
        var afterPages = accountant.Sample();
        Assert.Equal(1 * MiB, afterPages.Figure("page-cache")!.Bytes);
        Assert.Equal(0, afterPages.Figure("watch-buffers")!.Bytes);
        Assert.Equal(4 * MiB, afterPages.RamBytes);

        watches.Add(512, 1024);  // 512 KiB of events waiting for slow watchers
        var afterWatches = accountant.Sample();
        Assert.Equal(1 * MiB, afterWatches.Figure("page-cache")!.Bytes);
        Assert.Equal(512 * 1024, afterWatches.Figure("watch-buffers")!.Bytes);
        Assert.Equal(4 * MiB + 512 * 1024, afterWatches.RamBytes);
        Assert.Equal(["page-cache", "watch-buffers", "mapped"], afterWatches.Figures.Select(f => f.Name));
        Assert.Equal(0, afterWatches.StorageBytes);
    }

    [Fact]
    public void Managed_parts_are_counted_once_beside_the_managed_heap()
    {
        var pages = new Buffers();
        var accountant = new MemoryAccountant();
        var heap = accountant.Add(new ManagedHeapSource());
        accountant.Add("page-cache", SourceKind.Managed, () => pages.Bytes);
        accountant.Add("mapped", SourceKind.Native, () => 5 * MiB);
        pages.Add(32, 65536);  // 2 MiB
        GC.Collect();
        var s = accountant.Sample();
        var heapFigure = s.Figure(heap.Name)!;
        Assert.Equal(SourceKind.ManagedHeap, heapFigure.Kind);
        // RAM in use = native + max(heap, parts): the page cache lives inside the heap, not beside it.
        Assert.Equal(5 * MiB + Math.Max(heapFigure.Bytes, 2 * MiB), s.RamBytes);
        Assert.True(heapFigure.Bytes >= 2 * MiB, $"the heap's committed bytes ({heapFigure.Bytes}) include the 2 MiB of pages");
        Assert.Equal(
            [ManagedHeapSource.CommittedDetail, ManagedHeapSource.HeapSizeDetail, ManagedHeapSource.FragmentedDetail],
            heapFigure.Detail.Select(d => d.Name));
        Assert.Equal(heapFigure.Bytes, heapFigure.Detail[0].Bytes);
        Assert.True(heapFigure.Detail[1].Bytes > 0);
        GC.KeepAlive(pages);
    }

    [Fact]
    public void A_failing_source_reports_its_error_and_the_rest_still_count()
    {
        var accountant = new MemoryAccountant();
        accountant.Add("closed-db", SourceKind.Managed, () => throw new ObjectDisposedException("Database"));
        accountant.Add("pool", SourceKind.Managed, () => 7);
        accountant.Add("negative", SourceKind.Native, () => -5);
        var s = accountant.Sample();
        Assert.Contains("ObjectDisposedException", s.Figure("closed-db")!.Error);
        Assert.Equal(0, s.Figure("negative")!.Bytes);
        Assert.Equal(7, s.RamBytes);
    }

    [Fact]
    public void Names_are_unique_and_sources_can_be_removed()
    {
        var accountant = new MemoryAccountant();
        accountant.Add("a", SourceKind.Managed, () => 1);
        var e = Assert.Throws<ArgumentException>(() => accountant.Add("a", SourceKind.Native, () => 2));
        Assert.Contains("already registered", e.Message);
        Assert.True(accountant.Remove("a"));
        Assert.False(accountant.Remove("a"));
        accountant.Add("a", SourceKind.Native, () => 2);
        Assert.Equal(2, accountant.Sample().RamBytes);
    }

    [Fact]
    public void Storage_in_use_sums_files_and_directory_trees()
    {
        var db = Path.Combine(_dir, "db");
        var wal = Path.Combine(_dir, "wal");
        Directory.CreateDirectory(Path.Combine(wal, "old"));
        File.WriteAllBytes(db, new byte[10_000]);
        File.WriteAllBytes(Path.Combine(wal, "0001.wal"), new byte[3_000]);
        File.WriteAllBytes(Path.Combine(wal, "old", "0000.wal"), new byte[2_000]);
        var storage = new StorageSource(db, wal, Path.Combine(_dir, "snap-not-yet"));
        var accountant = new MemoryAccountant();
        accountant.Add(storage);
        accountant.Add("heap-part", SourceKind.Managed, () => 100);
        var s = accountant.Sample();
        Assert.Equal(15_000, s.StorageBytes);
        Assert.Equal(100, s.RamBytes);
        File.WriteAllBytes(Path.Combine(_dir, "snap-not-yet"), new byte[500]);
        Assert.Equal(15_500, storage.Bytes);
    }

    [Fact]
    public void The_counting_array_pool_counts_rented_and_retained_bytes()
    {
        var pool = new CountingArrayPool("buffers", ArrayPool<byte>.Create());
        var a = pool.Rent(1000);
        Assert.Equal(a.Length, pool.RentedBytes);
        Assert.Equal(0, pool.RetainedBytes);
        var b = pool.Rent(4000);
        Assert.Equal(a.Length + b.Length, pool.RentedBytes);
        pool.Return(a);
        Assert.Equal(b.Length, pool.RentedBytes);
        Assert.Equal(a.Length, pool.RetainedBytes);
        var c = pool.Rent(1000);  // re-rented: no longer retained
        Assert.Equal(0, pool.RetainedBytes);
        Assert.Equal(b.Length + c.Length, pool.RentedBytes);
        var d = pool.Rent(100_000);  // nothing retained to take it from: stays at 0, never below
        Assert.Equal(0, pool.RetainedBytes);
        foreach (var x in new[] { b, c, d }) pool.Return(x);
        Assert.Equal(0, pool.RentedBytes);
        Assert.Equal(b.Length + c.Length + d.Length, pool.RetainedBytes);
        Assert.Equal(pool.RetainedBytes, pool.Bytes);

        var accountant = new MemoryAccountant();
        accountant.Add(pool);
        Assert.Equal(pool.Bytes, accountant.Sample().Figure("buffers")!.Bytes);
    }

    [Fact]
    public void The_counting_array_pool_balances_under_concurrency()
    {
        var pool = new CountingArrayPool();
        Parallel.For(0, 8, worker =>
        {
            var rng = new Random(worker);
            var held = new List<byte[]>();
            for (var i = 0; i < 5000; i++)
            {
                if (held.Count > 0 && rng.Next(2) == 0)
                {
                    pool.Return(held[^1]);
                    held.RemoveAt(held.Count - 1);
                }
                else held.Add(pool.Rent(rng.Next(1, 70_000)));
            }
            foreach (var h in held) pool.Return(h);
        });
        Assert.Equal(0, pool.RentedBytes);
        Assert.True(pool.RetainedBytes >= 0);
    }

    [Fact]
    public void The_counting_object_pool_counts_at_its_estimate_and_caps_retained_at_the_pool_limit()
    {
        var inner = new DefaultObjectPool<StringBuilder>(new StringBuilderPooledObjectPolicy(), maximumRetained: 2);
        var pool = new CountingObjectPool<StringBuilder>(inner, bytesPerObject: 100, name: "builders", maximumRetained: 2);
        var taken = Enumerable.Range(0, 3).Select(_ => pool.Get()).ToList();
        Assert.Equal(300, pool.RentedBytes);
        foreach (var t in taken) pool.Return(t);
        Assert.Equal(0, pool.RentedBytes);
        Assert.Equal(200, pool.RetainedBytes);  // the inner pool kept only 2
        _ = pool.Get();
        Assert.Equal((100, 100), (pool.RentedBytes, pool.RetainedBytes));
        Assert.Equal(200, pool.Bytes);
        Assert.Equal(SourceKind.Managed, pool.Kind);
    }

    [Fact]
    public void The_mapped_file_figure_grows_by_the_pages_touched()
    {
        var path = Path.Combine(_dir, "mapped.db");
        const int size = 8 << 20;
        File.WriteAllBytes(path, new byte[size]);
        var source = new MappedFileResidentSource(path);
        Assert.Equal("mapped:mapped.db", source.Name);
        Assert.Equal(SourceKind.Native, source.Kind);
        if (!OperatingSystem.IsLinux())
        {
            Assert.Equal(0, source.Bytes);
            return;
        }
        Assert.Equal(0, source.Bytes);  // not mapped yet
        using (var map = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.ReadWrite))
        using (var view = map.CreateViewAccessor(0, size))
        {
            var untouched = source.Bytes;
            Assert.True(untouched < size / 2, $"{untouched} resident before touching");
            for (long i = 0; i < size; i += 4096) view.Write(i, (byte)1);
            var touched = source.Bytes;
            Assert.InRange(touched - untouched, size * 9L / 10, size);
        }
        Assert.Equal(0, source.Bytes);  // unmapped
    }

    [Fact]
    public void The_smaps_parser_sums_rss_of_the_named_file_only()
    {
        const string smaps = """
            7f0000000000-7f0000400000 r--s 00000000 08:01 1234                       /data/my db/cairn.db
            Size:               4096 kB
            Rss:                1200 kB
            Pss:                1200 kB
            VmFlags: rd sh mr mw me ms sd
            7f0000400000-7f0000500000 rw-p 00000000 00:00 0
            Size:               1024 kB
            Rss:                 900 kB
            7f0000500000-7f0000600000 r--s 00400000 08:01 1234                       /data/my db/cairn.db
            Rss:                  24 kB
            7f0000600000-7f0000700000 r--s 00000000 08:01 999                        /data/my db/cairn.db.wal
            Rss:                 512 kB
            """;
        Assert.Equal(1224L * 1024, MappedFileResidentSource.Sum(new StringReader(smaps), ["/data/my db/cairn.db"]));
        Assert.Equal(0, new MappedFileResidentSource("/x", null, Path.Combine(_dir, "no-smaps")).Bytes);
    }
}
