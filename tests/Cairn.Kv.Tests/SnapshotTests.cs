using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Cairn.Crypto;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

/// <summary>Snapshot dump, build and install: the installed store is the source's state, whatever happens around it.</summary>
public sealed class SnapshotTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public SnapshotTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static KvOptions Options(bool encrypted) => new()
    {
        Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false, MasterKey = encrypted ? StaticKeyProvider.CreateRandom() : null },
    };

    private static void ApplyAll(KvStateMachine sm, List<byte[]> log, int from, int to)
    {
        for (var i = from; i < to; i += 37)
        {
            var n = Math.Min(37, to - i);
            sm.ApplyBatch([.. Enumerable.Range(i, n).Select(j => ((ulong)j + 1, log[j]))], durable: false);
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void A_snapshot_installed_on_a_lagging_store_makes_it_equal_and_both_stay_equal(bool sourceEncrypted, bool targetEncrypted)
    {
        var log = TestLogs.Random(seed: 31, count: 1_500);
        using var source = KvStateMachine.Open(Path.Combine(_dir, "source"), Options(sourceEncrypted));
        var targetOptions = Options(targetEncrypted);
        var targetPath = Path.Combine(_dir, "target");
        var target = KvStateMachine.Open(targetPath, targetOptions);
        try
        {
            ApplyAll(source, log, 0, 1_200);
            ApplyAll(target, log, 0, 150); // a follower far behind
            Assert.True(source.CompactRevision > 0 && source.Leases().Count > 0 && source.ClusterMetadata().Count > 0, "the log must exercise compaction, leases and cluster records");

            using var dump = new MemoryStream();
            var written = source.WriteSnapshot(dump);
            Assert.Equal((source.AppliedIndex, source.Revision, dump.Length), (written.AppliedIndex, written.Revision, written.Bytes));
            dump.Position = 0;
            var built = Path.Combine(_dir, "built");
            var read = KvStateMachine.BuildFromSnapshot(dump, built, targetOptions);
            Assert.Equal(written, read);
            var installed = target.InstallSnapshot(built);
            Assert.False(File.Exists(built), "the built file is moved into place");
            Assert.Equal((written.AppliedIndex, written.Revision), (installed.AppliedIndex, installed.Revision));
            TestLogs.AssertSameState(source, target);
            Assert.Equal(target.Storage.IsEncrypted, targetEncrypted);

            // Both go on with the same log and stay equal, across a reopen of the target.
            ApplyAll(source, log, 1_200, 1_350);
            ApplyAll(target, log, 1_200, 1_350);
            TestLogs.AssertSameState(source, target);
            target.Dispose();
            target = KvStateMachine.Open(targetPath, targetOptions);
            ApplyAll(source, log, 1_350, 1_500);
            ApplyAll(target, log, 1_350, 1_500);
            TestLogs.AssertSameState(source, target);
            // And a defragmented target still matches.
            target.Defragment();
            TestLogs.AssertSameState(source, target);
        }
        finally
        {
            target.Dispose();
        }
    }

    [Fact]
    public void A_snapshot_does_not_move_a_store_back_in_the_log()
    {
        var log = TestLogs.Random(seed: 5, count: 300);
        using var behind = KvStateMachine.Open(Path.Combine(_dir, "behind"), Options(false));
        using var ahead = KvStateMachine.Open(Path.Combine(_dir, "ahead"), Options(false));
        ApplyAll(behind, log, 0, 100);
        ApplyAll(ahead, log, 0, 300);
        using var dump = new MemoryStream();
        behind.WriteSnapshot(dump);
        dump.Position = 0;
        var built = Path.Combine(_dir, "built");
        KvStateMachine.BuildFromSnapshot(dump, built, Options(false));
        var hash = ahead.Hash();
        Assert.Throws<ArgumentException>(() => ahead.InstallSnapshot(built));
        Assert.Equal(300UL, ahead.AppliedIndex);
        Assert.Equal(hash, ahead.Hash());
    }

    [Fact]
    public void A_snapshot_taken_while_a_writer_writes_is_the_state_at_its_revision()
    {
        var options = Options(false);
        using var source = KvStateMachine.Open(Path.Combine(_dir, "source"), options);
        var rng = new Random(77);
        ulong index = 0;
        void Put(int i) => source.Apply(++index, new KvCommand { Put = new PutRequest { Key = B($"k/{rng.Next(3000):D4}"), Value = new byte[rng.Next(50, 400)] } }.Encode(), durable: false);
        for (var i = 0; i < 3_000; i++) Put(i);

        using var stop = new ManualResetEventSlim();
        var writes = 0;
        Exception? failure = null;
        var writer = new Thread(() =>
        {
            try
            {
                var w = new Random(78);
                while (!stop.IsSet)
                {
                    // Deletes too, so the snapshot must not see a later state of any key.
                    var key = B($"k/{w.Next(3000):D4}");
                    var c = w.Next(4) == 0
                        ? new KvCommand { Delete = new DeleteRangeRequest { Key = key } }
                        : new KvCommand { Put = new PutRequest { Key = key, Value = BitConverter.GetBytes(w.NextInt64()) } };
                    source.Apply(Interlocked.Increment(ref index), c.Encode(), durable: false);
                    Interlocked.Increment(ref writes);
                }
            }
            catch (Exception e)
            {
                failure = e;
            }
        });
        writer.Start();
        SnapshotInfo info;
        var dump = new MemoryStream();
        try
        {
            // The dump's first buffer is held until the writer has committed 200 more times: the snapshot is being
            // taken while the store moves on.
            using var gated = new GatedStream(dump, () =>
            {
                var until = Volatile.Read(ref writes) + 200;
                SpinWait.SpinUntil(() => Volatile.Read(ref writes) >= until || failure is not null, TimeSpan.FromSeconds(30));
            });
            info = source.WriteSnapshot(gated);
        }
        finally
        {
            stop.Set();
            writer.Join();
        }
        Assert.Null(failure);
        Assert.True(source.AppliedIndex >= info.AppliedIndex + 200, $"the writer moved on during the snapshot (snapshot at index {info.AppliedIndex}, store at {source.AppliedIndex})");
        Assert.True(source.Revision > info.Revision);

        dump.Position = 0;
        var built = Path.Combine(_dir, "built");
        KvStateMachine.BuildFromSnapshot(dump, built, options);
        using var copy = KvStateMachine.Open(built, options);
        Assert.Equal(info.Revision, copy.Revision);
        Assert.Equal(info.AppliedIndex, copy.AppliedIndex);
        Assert.Equal(source.Hash(info.Revision), copy.Hash());
        var all = new RangeRequest { Key = [0], RangeEnd = [0] };
        var then = source.Range(all with { Revision = info.Revision }).Kvs;
        var now = copy.Range(all).Kvs;
        Assert.Equal(then.Select(k => (Convert.ToHexString(k.Key), Convert.ToHexString(k.Value), k.ModRevision, k.Version)), now.Select(k => (Convert.ToHexString(k.Key), Convert.ToHexString(k.Value), k.ModRevision, k.Version)));
    }

    /// <summary>Runs <paramref name="onFirstWrite"/> before the first write reaches the inner stream.</summary>
    private sealed class GatedStream(Stream inner, Action onFirstWrite) : Stream
    {
        private bool _opened;

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            if (!_opened)
            {
                _opened = true;
                onFirstWrite();
            }
            inner.Write(buffer, offset, count);
        }
    }

    // ---------------- damaged dumps ----------------

    private byte[] SmallDump()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "small"), Options(false));
        ApplyAll(sm, TestLogs.Random(seed: 12, count: 120), 0, 120);
        using var dump = new MemoryStream();
        sm.WriteSnapshot(dump);
        return dump.ToArray();
    }

    /// <summary>The dump must be refused with <see cref="InvalidDataException"/> and leave no file.</summary>
    private void AssertDamaged(byte[] dump, string what, string? reason = null)
    {
        var path = Path.Combine(_dir, "damaged");
        var e = Assert.Throws<InvalidDataException>(() => KvStateMachine.BuildFromSnapshot(new MemoryStream(dump), path, Options(false)));
        Assert.True(e.Message.StartsWith("snapshot is damaged: ", StringComparison.Ordinal), $"{what}: message '{e.Message}'");
        Assert.True(reason is null || e.Message.Contains(reason, StringComparison.Ordinal), $"{what}: message '{e.Message}' should say '{reason}'");
        Assert.False(File.Exists(path), $"{what}: the partial file was left behind");
    }

    /// <summary>A dump with its body changed and its hash recomputed: only the structure checks can catch it.</summary>
    private static byte[] Rehash(byte[] body)
    {
        var dump = new byte[body.Length + 8];
        body.CopyTo(dump, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(dump.AsSpan(body.Length), XxHash64.HashToUInt64(body));
        return dump;
    }

    [Fact]
    public void A_whole_dump_builds_and_a_truncated_one_at_any_length_is_refused()
    {
        var dump = SmallDump();
        var path = Path.Combine(_dir, "whole");
        var info = KvStateMachine.BuildFromSnapshot(new MemoryStream(dump), path, Options(false));
        Assert.Equal(dump.Length, info.Bytes);
        var rng = new Random(100);
        var lengths = Enumerable.Range(0, 64).Concat(Enumerable.Range(dump.Length - 64, 64)).Concat(Enumerable.Range(0, 150).Select(_ => rng.Next(dump.Length))).Distinct();
        foreach (var n in lengths) AssertDamaged(dump[..n], $"cut to {n} of {dump.Length} bytes");
    }

    [Fact]
    public void A_dump_with_any_byte_flipped_is_refused()
    {
        var dump = SmallDump();
        var rng = new Random(101);
        var offsets = Enumerable.Range(0, 48).Concat(Enumerable.Range(dump.Length - 16, 16)).Concat(Enumerable.Range(0, 200).Select(_ => rng.Next(dump.Length))).Distinct();
        foreach (var at in offsets)
        {
            var bad = (byte[])dump.Clone();
            bad[at] ^= (byte)(1 << rng.Next(8));
            AssertDamaged(bad, $"bit flipped at byte {at}");
        }
    }

    /// <summary>A header for hand-built dumps: applied index 0 at revision 0, what a dump without key-value state says.</summary>
    private static byte[] Header(uint version = 1)
    {
        var h = new byte[28];
        "CAIRNSNP"u8.CopyTo(h);
        BinaryPrimitives.WriteUInt32LittleEndian(h.AsSpan(8), version);
        return h;
    }

    private static byte[] Tree(string name) => [1, (byte)Encoding.UTF8.GetByteCount(name), .. Encoding.UTF8.GetBytes(name)];

    private static byte[] Record(uint keyLength, uint valueLength, byte key = (byte)'a', int actualKey = 1, int actualValue = 0)
    {
        var r = new byte[9 + actualKey + actualValue];
        r[0] = 2;
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(1), keyLength);
        BinaryPrimitives.WriteUInt32LittleEndian(r.AsSpan(5), valueLength);
        r.AsSpan(9).Fill(key);
        return r;
    }

    [Fact]
    public void Malformed_structure_is_refused_for_its_own_reason_even_with_a_matching_hash()
    {
        // The control: a well-formed hand-built dump builds, so each case below fails for its one defect.
        var path = Path.Combine(_dir, "control");
        var control = Rehash([.. Header(), .. Tree("s"), .. Tree("t"), .. Record(1, 2, actualValue: 2), .. Record(1, 0, key: (byte)'b'), 0]);
        Assert.Equal(control.Length, KvStateMachine.BuildFromSnapshot(new MemoryStream(control), path, Options(false)).Bytes);
        using (var db = Database.Open(path, Options(false).Storage))
        using (var tx = db.BeginRead())
        {
            Assert.Equal(["s", "t"], tx.GetTreeNames());
            Assert.Equal(2, tx.OpenTree("t").Count);
        }

        var dump = SmallDump();
        var body = dump[..^8];
        AssertDamaged([.. dump, 0], "a byte after the end", "after its end");
        AssertDamaged([], "empty", "truncated");
        var magic = (byte[])body.Clone();
        magic[0] = (byte)'X';
        AssertDamaged(Rehash(magic), "wrong magic", "CAIRNSNP");
        var applied = (byte[])body.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(applied.AsSpan(12), 7777);
        AssertDamaged(Rehash(applied), "header applied index not the data's", "the header says applied index 7777");

        AssertDamaged(Rehash([.. Header(2), .. Tree("t"), 0]), "unknown version", "version 2 is unknown");
        AssertDamaged(Rehash([.. Header(), .. Record(1, 0), 0]), "a record before any tree", "before any tree");
        AssertDamaged(Rehash([.. Header(), .. Tree("t"), .. Record(uint.MaxValue, 0), 0]), "a key length of 4 GiB", "keys here are 1 to");
        AssertDamaged(Rehash([.. Header(), .. Tree("t"), .. Record(0, 0, actualKey: 0), 0]), "an empty key", "keys here are 1 to");
        AssertDamaged(Rehash([.. Header(), .. Tree("t"), .. Record(1, (uint)Database.MaxValueSize + 1), 0]), "a value over the limit", "the limit is");
        AssertDamaged(Rehash([.. Header(), .. Tree("t"), .. Record(1, 0), .. Record(1, 0), 0]), "a repeated key", "keys out of order");
        AssertDamaged(Rehash([.. Header(), .. Tree("t"), .. Record(1, 0, key: (byte)'b'), .. Record(1, 0), 0]), "keys out of order", "keys out of order");
        AssertDamaged(Rehash([.. Header(), .. Tree("t"), .. Tree("t"), 0]), "a repeated tree", "trees out of order");
        AssertDamaged(Rehash([.. Header(), .. Tree("t"), .. Tree("s"), 0]), "trees out of order", "trees out of order");
        AssertDamaged(Rehash([.. Header(), 1, 0, 0]), "an empty tree name", "name at byte 28 is empty");
        AssertDamaged(Rehash([.. Header(), 1, 2, 0xC3, 0x28, 0]), "a tree name that is not UTF-8", "not UTF-8");
        AssertDamaged(Rehash([.. Header(), 7, 0]), "an unknown section", "unknown section tag 7");
        AssertDamaged(Rehash([.. Header(), .. Tree("t")]), "no end marker (the trailer is read as sections)");
        AssertDamaged([.. Header(), .. Tree("t"), 0, 1, 2, 3], "a short trailer", "truncated");
        var wrongTrailer = Rehash([.. Header(), .. Tree("t"), 0]);
        wrongTrailer[^1] ^= 1;
        AssertDamaged(wrongTrailer, "a wrong trailer", "checksum");
    }

    [Fact]
    public void A_value_length_near_the_limit_in_a_short_dump_allocates_only_what_the_limit_allows()
    {
        var dump = (byte[])[.. Header(), .. Tree("t"), .. Record(1, (uint)Database.MaxValueSize)];
        var before = GC.GetAllocatedBytesForCurrentThread();
        AssertDamaged(dump, "a 64 MiB value cut short", "truncated");
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.True(allocated < Database.MaxValueSize + (16L << 20), $"allocated {allocated} bytes");
    }

    // ---------------- watchers across an install ----------------

    [Fact]
    public async Task A_watcher_on_the_target_replays_the_installed_changes_then_gets_live_ones()
    {
        var options = Options(false);
        // One log of puts and deletes on a few keys; the model gives the events every revision made.
        var rng = new Random(55);
        var commands = new List<KvCommand>();
        var model = new ReferenceModel();
        for (var i = 0; i < 400; i++)
        {
            var key = B($"w/{rng.Next(10)}");
            var c = rng.Next(5) == 0 ? new KvCommand { Delete = new DeleteRangeRequest { Key = key } } : new KvCommand { Put = new PutRequest { Key = key, Value = B($"{i}") } };
            commands.Add(c);
        }
        var log = commands.Select(c => c.Encode()).ToList();
        using var source = KvStateMachine.Open(Path.Combine(_dir, "source"), options);
        using var target = KvStateMachine.Open(Path.Combine(_dir, "target"), options);
        ApplyAll(source, log, 0, 300);
        ApplyAll(target, log, 0, 100);
        foreach (var c in commands.Take(100)) Model(model, c);
        var start = target.Revision + 1;

        using var watcher = target.Watch(new WatchRequest { Key = B("w/"), RangeEnd = RangeRequest.Prefix(B("w/")) });
        var seen = new List<WatchEvent>();
        var canceled = false;
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var reader = Task.Run(async () =>
        {
            await foreach (var r in watcher.ReadAllAsync(cts.Token))
            {
                lock (seen)
                {
                    canceled |= r.Canceled;
                    seen.AddRange(r.Events);
                }
            }
        });
        // Live before the install.
        ApplyAll(target, log, 100, 110);
        using (var dump = new MemoryStream())
        {
            source.WriteSnapshot(dump);
            dump.Position = 0;
            KvStateMachine.BuildFromSnapshot(dump, Path.Combine(_dir, "built"), options);
        }
        target.InstallSnapshot(Path.Combine(_dir, "built"));
        // Live after it.
        ApplyAll(target, log, 300, 400);
        foreach (var c in commands.Skip(100)) Model(model, c);
        Assert.Equal(model.Revision, target.Revision);

        var expected = new List<WatchEvent>();
        for (var rev = start; rev <= model.Revision; rev++) expected.AddRange(model.EventsAt(rev));
        await WaitFor(() => { lock (seen) return seen.Count >= expected.Count || canceled; });
        await Task.Delay(100); // a duplicate would show up now
        lock (seen)
        {
            Assert.False(canceled, "nothing was compacted, so the watch goes on");
            Assert.Equal(Describe(expected), Describe(seen));
        }
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => reader);
    }

    [Fact]
    public async Task A_watcher_owed_revisions_the_installed_store_compacted_is_canceled_with_the_compaction_revision()
    {
        var options = Options(false);
        var log = Enumerable.Range(0, 300).Select(i => new KvCommand { Put = new PutRequest { Key = B($"w/{i % 7}"), Value = B($"{i}") } }.Encode()).ToList();
        log[250] = new KvCommand { CompactRevision = 200 }.Encode(); // the 251st entry compacts up to revision 200
        using var source = KvStateMachine.Open(Path.Combine(_dir, "source"), options);
        using var target = KvStateMachine.Open(Path.Combine(_dir, "target"), options);
        ApplyAll(source, log, 0, 300);
        ApplyAll(target, log, 0, 100);
        Assert.Equal(200, source.CompactRevision);

        using var watcher = target.Watch(new WatchRequest { Key = B("w/"), RangeEnd = RangeRequest.Prefix(B("w/")) });
        var responses = new List<WatchResponse>();
        var reader = Task.Run(async () =>
        {
            await foreach (var r in watcher.ReadAllAsync())
            {
                lock (responses) responses.Add(r);
            }
        });
        using (var dump = new MemoryStream())
        {
            source.WriteSnapshot(dump);
            dump.Position = 0;
            KvStateMachine.BuildFromSnapshot(dump, Path.Combine(_dir, "built"), options);
        }
        target.InstallSnapshot(Path.Combine(_dir, "built"));
        await reader.WaitAsync(TimeSpan.FromSeconds(30)); // the watch ends, without an exception
        lock (responses)
        {
            var last = responses[^1];
            Assert.True(last.Canceled);
            Assert.Equal(200, last.CompactRevision);
            Assert.All(responses.SkipLast(1), r => Assert.False(r.Canceled));
        }

        // A watch started after the install follows the installed store.
        using var fresh = target.Watch(new WatchRequest { Key = B("w/"), RangeEnd = RangeRequest.Prefix(B("w/")) });
        await using var e = fresh.ReadAllAsync().GetAsyncEnumerator();
        var next = e.MoveNextAsync();
        target.Apply(target.AppliedIndex + 1, new KvCommand { Put = new PutRequest { Key = B("w/new"), Value = B("x") } }.Encode());
        Assert.True(await next.AsTask().WaitAsync(TimeSpan.FromSeconds(30)));
        Assert.Equal("w/new", Encoding.UTF8.GetString(Assert.Single(e.Current.Events).Kv.Key));
        Assert.Equal(source.Revision + 1, e.Current.Header.Revision);
    }

    private static void Model(ReferenceModel model, KvCommand c)
    {
        try
        {
            model.Apply(c);
        }
        catch (KvException)
        {
        }
    }

    private static async Task WaitFor(Func<bool> condition)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition() && DateTime.UtcNow < deadline) await Task.Delay(10);
    }

    private static List<string> Describe(IEnumerable<WatchEvent> events) =>
        [.. events.GroupBy(e => e.Kv.ModRevision).SelectMany(g => g.OrderBy(e => e.Kv.Key, ByteOrder.Instance))
            .Select(e => $"{e.Type} {Encoding.UTF8.GetString(e.Kv.Key)}@{e.Kv.ModRevision} v{e.Kv.Version} c{e.Kv.CreateRevision} {Encoding.UTF8.GetString(e.Kv.Value)}")];
}

/// <summary>The shared view of the latest state that a server's single-key reads use.</summary>
public sealed class SharedViewTests
{
    private static (KvStateMachine Machine, string Dir) Open()
    {
        var dir = Path.Combine(Path.GetTempPath(), "cairn-shared-view-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        return (KvStateMachine.Open(Path.Combine(dir, "kv.db")), dir);
    }

    private static byte[] Put(string key, string value) => new KvCommand { Put = new PutRequest { Key = System.Text.Encoding.UTF8.GetBytes(key), Value = System.Text.Encoding.UTF8.GetBytes(value) } }.Encode();

    [Fact]
    public void The_same_view_is_shared_until_a_commit_and_a_held_stale_view_keeps_reading_its_state()
    {
        var (m, dir) = Open();
        try
        {
            m.Apply(1, Put("a", "1"));
            var first = m.AcquireLatest();
            var again = m.AcquireLatest();
            Assert.Same(first, again);                             // no commit between: shared, nothing allocated
            m.ReleaseLatest(again);
            m.Apply(2, Put("a", "2"));
            var second = m.AcquireLatest();
            Assert.NotSame(first, second);
            Assert.True(first.TryGet("a"u8, out var old));
            Assert.Equal("1"u8.ToArray(), old.Value.ToArray());   // the stale view still sees its own state
            Assert.True(second.TryGet("a"u8, out var now));
            Assert.Equal("2"u8.ToArray(), now.Value.ToArray());
            m.ReleaseLatest(first);
            Assert.Throws<ObjectDisposedException>(() => first.TryGet("a"u8, out _)); // closed with its last holder
            m.ReleaseLatest(second);
        }
        finally
        {
            m.Dispose();
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Defragment_and_dispose_wait_for_a_held_view_and_go_on_once_it_is_given_back()
    {
        var (m, dir) = Open();
        try
        {
            for (ulong i = 1; i <= 50; i++) m.Apply(i, Put($"k{i}", new string('v', 300)));
            var held = m.AcquireLatest();
            var defrag = new Thread(() => m.Defragment());
            defrag.Start();
            Assert.False(defrag.Join(200));                        // waits for the holder
            Assert.True(held.TryGet("k7"u8, out _));
            m.ReleaseLatest(held);
            Assert.True(defrag.Join(TimeSpan.FromSeconds(10)));
            var after = m.AcquireLatest();                         // a fresh view of the swapped-in file
            Assert.True(after.TryGet("k50"u8, out _));
            var closing = new Thread(m.Dispose);
            closing.Start();
            Assert.False(closing.Join(200));
            m.ReleaseLatest(after);
            Assert.True(closing.Join(TimeSpan.FromSeconds(10)));
            Assert.Throws<ObjectDisposedException>(() => m.AcquireLatest());
        }
        finally
        {
            m.Dispose();
            Directory.Delete(dir, true);
        }
    }

    [Fact]
    public void Many_threads_reading_one_view_at_once_each_see_their_keys_values()
    {
        var (m, dir) = Open();
        try
        {
            const int keys = 500;
            // One key per revision: a lookup that used another thread's history key would return another key's value.
            var batch = new List<(ulong, byte[])>();
            for (var i = 0; i < keys; i++) batch.Add(((ulong)i + 1, Put($"key/{i:D4}", $"value of {i} " + new string('v', i % 40))));
            m.ApplyBatch(batch);
            var view = m.AcquireLatest();
            var wrong = 0;
            var threads = Math.Max(4, Environment.ProcessorCount * 2);
            Parallel.For(0, threads, new ParallelOptions { MaxDegreeOfParallelism = threads }, t =>
            {
                for (var round = 0; round < 200_000; round++)
                {
                    var i = (t * 7919 + round * 31) % keys;
                    var key = System.Text.Encoding.UTF8.GetBytes($"key/{i:D4}");
                    try
                    {
                        if (!view.TryGet(key, out var e) || e.ModRevision != i + 1 || !e.Value.SequenceEqual(System.Text.Encoding.UTF8.GetBytes($"value of {i} " + new string('v', i % 40))))
                            Interlocked.Increment(ref wrong);
                    }
                    catch (InvalidDataException)
                    {
                        Interlocked.Increment(ref wrong);   // another thread's history key: "the history record ... is missing"
                    }
                }
            });
            m.ReleaseLatest(view);
            Assert.Equal(0, wrong);
        }
        finally
        {
            m.Dispose();
            Directory.Delete(dir, true);
        }
    }
}
