using System.Text;
using Cairn.Storage;
using Xunit.Abstractions;

namespace Cairn.Kv.Tests;

public sealed class WatchTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static readonly byte[][] Keys = [.. Enumerable.Range(0, 24).Select(i => B($"{(char)('a' + i % 3)}/{i:D2}"))];

    private static KvCommand RandomCommand(Random rng)
    {
        PutRequest Put() => new() { Key = Keys[rng.Next(Keys.Length)], Value = B($"v{rng.Next(1000)}") };
        return rng.Next(10) switch
        {
            < 5 => new KvCommand { Put = Put() },
            < 7 => new KvCommand { Delete = new DeleteRangeRequest { Key = Keys[rng.Next(Keys.Length)], RangeEnd = rng.Next(3) == 0 ? RangeRequest.Prefix(B("b/")) : [] } },
            _ => new KvCommand { Txn = new TxnRequest { Success = [new TxnOp { Put = Put() }, new TxnOp { Delete = new DeleteRangeRequest { Key = Keys[rng.Next(Keys.Length)] } }] } },
        };
    }

    /// <summary>
    /// Many watchers with random ranges, start revisions and slowness, a tiny queue so the slow ones fall back to
    /// catching up from the store again and again: each sees exactly the model's events for its range, in revision
    /// order, none lost, none twice.
    /// </summary>
    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    public async Task Watchers_see_exactly_the_models_events_across_catch_up_and_live(int seed)
    {
        var rng = new Random(seed);
        var options = new KvOptions { WatchQueueCapacity = 2, Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } };
        using var store = KvStore.Open(_dir, options);
        var model = new ReferenceModel();
        void Write(KvCommand c)
        {
            object? expected = null;
            try { expected = model.Apply(c); } catch (KvException) { }
            var r = store.Machine.Apply(store.Machine.AppliedIndex + 1, c.Encode(), durable: false);
            Assert.Equal(expected is null, r.Error is not null);
        }
        for (var i = 0; i < 150; i++) Write(RandomCommand(rng)); // history to replay

        using var cts = new CancellationTokenSource();
        var watchers = new List<(WatchRequest Request, List<WatchEvent> Seen, Task Reader)>();
        for (var w = 0; w < 16; w++)
        {
            var prefix = B($"{(char)('a' + rng.Next(3))}/");
            var request = new WatchRequest
            {
                Key = rng.Next(4) == 0 ? Keys[rng.Next(Keys.Length)] : prefix,
                RangeEnd = rng.Next(4) == 0 ? [] : rng.Next(5) == 0 ? [0] : RangeRequest.Prefix(prefix),
                StartRevision = rng.Next(3) == 0 ? 0 : rng.Next(1, (int)model.Revision + 1),
                NoDelete = rng.Next(6) == 0,
                NoPut = rng.Next(8) == 0,
            };
            var slow = rng.Next(3) == 0 ? rng.Next(1, 6) : 0;
            // Created here, so a watch "from now" starts before the writes below.
            var watcher = store.Machine.Watch(request);
            var effective = request with { StartRevision = request.StartRevision == 0 ? model.Revision + 1 : request.StartRevision };
            var seen = new List<WatchEvent>();
            watchers.Add((effective, seen, Task.Run(async () =>
            {
                try
                {
                    await foreach (var r in watcher.ReadAllAsync(cts.Token))
                    {
                        Assert.False(r.Canceled, "watch canceled");
                        lock (seen) seen.AddRange(r.Events);
                        if (slow > 0) await Task.Delay(slow);
                    }
                }
                catch (OperationCanceledException)
                {
                }
            })));
        }
        for (var i = 0; i < 600; i++)
        {
            Write(RandomCommand(rng));
            if (i % 50 == 0) await Task.Yield();
        }
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        for (var w = 0; w < watchers.Count; w++)
        {
            var (req, seen, _) = watchers[w];
            var expected = new List<WatchEvent>();
            for (var rev = req.StartRevision; rev <= model.Revision; rev++)
            {
                expected.AddRange(model.EventsAt(rev).Where(e => req.Matches(e.Kv.Key) && !(req.NoPut && e.Type == WatchEventType.Put) && !(req.NoDelete && e.Type == WatchEventType.Delete)));
            }
            while (DateTime.UtcNow < deadline)
            {
                lock (seen) if (seen.Count >= expected.Count) break;
                await Task.Delay(10);
            }
            await Task.Delay(50); // anything extra (a duplicate) would show up now
            List<WatchEvent> got;
            lock (seen) got = [.. seen];
            Assert.True(got.Select(e => e.Kv.ModRevision).SequenceEqual(got.Select(e => e.Kv.ModRevision).Order()), $"seed {seed} watcher {w}: events out of revision order");
            got = [.. got.GroupBy(e => e.Kv.ModRevision).SelectMany(g => g.OrderBy(e => e.Kv.Key, ByteOrder.Instance))];
            Assert.True(expected.Count == got.Count, $"seed {seed} watcher {w} ({Encoding.UTF8.GetString(req.Key)}..{Convert.ToHexString(req.RangeEnd)}, start {req.StartRevision}, store at {model.Revision}): {got.Count} events, expected {expected.Count}; first revisions seen {string.Join(",", got.Take(5).Select(e => e.Kv.ModRevision))}, expected {string.Join(",", expected.Take(5).Select(e => e.Kv.ModRevision))}");
            for (var i = 0; i < expected.Count; i++)
            {
                var (e, a) = (expected[i], got[i]);
                Assert.True(e.Type == a.Type && e.Kv.Key.AsSpan().SequenceEqual(a.Kv.Key) && e.Kv.Value.AsSpan().SequenceEqual(a.Kv.Value)
                    && (e.Kv.CreateRevision, e.Kv.ModRevision, e.Kv.Version) == (a.Kv.CreateRevision, a.Kv.ModRevision, a.Kv.Version),
                    $"seed {seed} watcher {w}: event {i} is {a.Type} {Encoding.UTF8.GetString(a.Kv.Key)}@{a.Kv.ModRevision}, expected {e.Type} {Encoding.UTF8.GetString(e.Kv.Key)}@{e.Kv.ModRevision}");
            }
        }
        await cts.CancelAsync();
        await Task.WhenAll(watchers.Select(w => w.Reader));
        output.WriteLine($"seed {seed}: {watchers.Count} watchers, revision {model.Revision}");
    }

    [Fact]
    public async Task Watching_a_compacted_revision_is_canceled_with_the_compact_revision()
    {
        using var store = KvStore.Open(_dir);
        for (var i = 0; i < 10; i++) store.Put(B("k"), B($"{i}"));
        store.Compact(6);
        await foreach (var r in store.Watch(new WatchRequest { Key = B("k"), StartRevision = 3 }))
        {
            Assert.True(r.Canceled);
            Assert.Equal(6, r.CompactRevision);
            break;
        }
        // From the compaction revision on, history is still there.
        await foreach (var r in store.Watch(new WatchRequest { Key = B("k"), StartRevision = 6, PrevKv = true }))
        {
            Assert.Equal([6L, 7, 8, 9, 10], r.Events.Select(e => e.Kv.ModRevision));
            Assert.Equal("5", Encoding.UTF8.GetString(r.Events[1].PrevKv!.Value));
            break;
        }
    }

    [Fact]
    public async Task A_slow_watcher_does_not_block_the_writer_and_progress_reports_the_revision()
    {
        using var store = KvStore.Open(_dir, new KvOptions { WatchQueueCapacity = 1, Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } });
        var watcher = store.Machine.Watch(new WatchRequest { Key = B("k"), ProgressNotify = true });
        await using var e = watcher.ReadAllAsync().GetAsyncEnumerator();
        // Nobody reads: the writer goes on regardless.
        for (var i = 0; i < 200; i++) store.Put(B("k"), B($"{i}"));
        var total = 0;
        long last = 0;
        while (total < 200)
        {
            Assert.True(await e.MoveNextAsync());
            foreach (var ev in e.Current.Events)
            {
                Assert.Equal(last + 1, ev.Kv.ModRevision);
                last = ev.Kv.ModRevision;
                total++;
            }
        }
        watcher.RequestProgress();
        Assert.True(await e.MoveNextAsync());
        Assert.Empty(e.Current.Events);
        Assert.Equal(200, e.Current.Header.Revision);
        watcher.Dispose();
    }
    /// <summary>
    /// Batches applied while nobody watches make no events (the fast path); a watcher that starts meanwhile — even in
    /// the middle of such a batch — must still see every change from its start revision, with no gap: watchers come
    /// and go again and again while plain puts apply in batches on another thread.
    /// </summary>
    [Fact]
    public async Task Watchers_that_start_while_batches_apply_without_events_miss_nothing()
    {
        var options = new KvOptions { Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } };
        using var store = KvStore.Open(_dir, options);
        var machine = store.Machine;
        using var stop = new CancellationTokenSource();
        var writer = Task.Run(() =>
        {
            var rng = new Random(5);
            ulong index = machine.AppliedIndex;
            while (!stop.IsCancellationRequested)
            {
                var batch = new List<(ulong, ReadOnlyMemory<byte>)>();
                for (var i = rng.Next(1, 20); i > 0; i--) batch.Add((++index, new KvCommand { Put = new PutRequest { Key = Keys[rng.Next(Keys.Length)], Value = B($"v{index}") } }.Encode()));
                machine.ApplyBatch(batch);
            }
        });
        var rounds = 0;
        var skippedSeen = false;
        try
        {
            while (rounds < 200)
            {
                var from = machine.Revision + 1;
                using var watcher = machine.Watch(new WatchRequest { Key = [0], RangeEnd = [0], StartRevision = from });
                using var time = new CancellationTokenSource(TimeSpan.FromSeconds(30));
                var next = from;
                await foreach (var response in watcher.ReadAllAsync(time.Token))
                {
                    foreach (var e in response.Events)
                    {
                        Assert.True(e.Kv.ModRevision == next, $"round {rounds}: expected revision {next}, got {e.Kv.ModRevision} (a change was lost or repeated)");
                        next++;
                    }
                    if (next >= from + 30) break;
                }
                rounds++;
                skippedSeen |= machine.Watches.Count == 0;
            }
        }
        finally
        {
            stop.Cancel();
            await writer;
        }
        Assert.Equal(200, rounds);
        Assert.True(skippedSeen, "between rounds nobody watched, so batches applied without events");
    }
}
