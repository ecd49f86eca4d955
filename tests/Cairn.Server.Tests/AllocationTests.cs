using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>The single-key read and write paths allocate nothing once warm (architecture §9: frame parsing, Get and Put at 0 B).</summary>
public sealed class AllocationTests
{
    private sealed class CountingResponder : Responder
    {
        private readonly FrameWriter _out = new(64 << 10);
        private KvReadView? _view;
        private KvStateMachine? _machine;
        public int Found;

        public override bool IsOpen => true;

        public override FrameWriter Begin() => _out;

        public override void End()
        {
            if (Frame.TryReadHeader(_out.WrittenSpan, out var h) && h.Type == MessageType.Range && _out.Length > 200) Found++;
            _out.Reset();
        }

        public override KvReadView? BatchView(KvStateMachine machine)
        {
            _machine = machine;
            return _view ??= machine.AcquireLatest();
        }

        public void EndBatch()
        {
            if (_view is not null) _machine!.ReleaseLatest(_view);
            _view = null;
        }
    }

    [Fact]
    public async Task A_batch_of_serializable_single_key_reads_allocates_nothing_once_warm()
    {
        await using var cluster = new TestCluster(1);
        await cluster.StartAllAsync();
        var member = cluster.Members["m1"]!;
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            for (var i = 0; i < 16; i++) await c.PutAsync($"key{i}", new string('v', 200));
        }
        using var w = new FrameWriter();
        for (var i = 0; i < 16; i++)
        {
            w.BeginFrame(MessageType.Range, FrameFlags.None, (ulong)i + 1);
            Messages.WriteRange(w, new RangeRequest { Key = System.Text.Encoding.UTF8.GetBytes($"key{i}") }, Consistency.Serializable);
            w.EndFrame();
        }
        var frames = w.WrittenSpan.ToArray();
        var responder = new CountingResponder();
        void Batch()
        {
            ReadOnlySpan<byte> f = frames;
            while (Frame.TryReadHeader(f, out var h))
            {
                member.Router.Handle(responder, h, f.Slice(Frame.HeaderSize, (int)h.PayloadLength));
                f = f[(Frame.HeaderSize + (int)h.PayloadLength)..];
            }
            responder.EndBatch();
        }
        for (var i = 0; i < 10; i++) Batch();                      // warm up
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++) Batch();
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(110 * 16, responder.Found);                 // every read found its key and answered with it
        Assert.Equal(0, allocated);
    }

    /// <summary>Counts answers to puts and wakes the test when a batch is all answered.</summary>
    private sealed class PutResponder : Responder
    {
        private readonly FrameWriter _out = new(64 << 10);
        private readonly Lock _lock = new();
        private readonly ManualResetEventSlim _done = new();
        private int _expected;
        public int Errors;

        public override bool IsOpen => true;

        public override FrameWriter Begin()
        {
            _lock.Enter();
            return _out;
        }

        public override void End()
        {
            if (Frame.TryReadHeader(_out.WrittenSpan, out var h))
            {
                if (h.Type != MessageType.Put) Errors++;
                if (--_expected == 0) _done.Set();
            }
            _out.Reset();
            _lock.Exit();
        }

        public void Expect(int n)
        {
            _done.Reset();
            lock (_lock) _expected = n;
        }

        public void Wait() => Assert.True(_done.Wait(TimeSpan.FromSeconds(30)), "a batch of puts was not answered");
    }

    [Fact]
    public async Task Puts_allocate_nothing_on_the_calling_thread_and_next_to_nothing_on_the_raft_thread_once_the_log_is_at_its_working_size()
    {
        // Compaction every 6,000 entries (keeping 3,000): the log's length peaks near 9,000 plus a tick's worth, so
        // it reaches its working size — its list's capacity of 16,384 entries and its arena's slabs — within the
        // warm-up. (With the default 10,000 the peak, 15,000 plus a tick's worth, can first cross 16,384 at any time:
        // a one-off doubling of the list, 1.3 MB, that would land in the measured window now and then.)
        await using var cluster = new TestCluster(1) { Customize = (_, o) => o with { SnapshotCount = 6_000 } };
        await cluster.StartAllAsync();
        var member = cluster.Members["m1"]!;
        using var w = new FrameWriter();
        var value = new byte[256];
        for (var i = 0; i < 64; i++)
        {
            w.BeginFrame(MessageType.Put, FrameFlags.None, (ulong)i + 1);
            Messages.WritePut(w, new PutRequest { Key = System.Text.Encoding.UTF8.GetBytes($"key{i:D4}"), Value = value });
            w.EndFrame();
        }
        var frames = w.WrittenSpan.ToArray();
        var responder = new PutResponder();
        void Batch()
        {
            responder.Expect(64);
            ReadOnlySpan<byte> f = frames;
            while (Frame.TryReadHeader(f, out var h))
            {
                member.Router.Handle(responder, h, f.Slice(Frame.HeaderSize, (int)h.PayloadLength));
                f = f[(Frame.HeaderSize + (int)h.PayloadLength)..];
            }
            responder.Wait();
        }
        for (var i = 0; i < 800; i++) Batch();                     // 51,200 puts: several compactions
        const int Measured = 600;
        var raftBefore = Volatile.Read(ref member.Stats.RaftThreadAllocatedBytes);
        var logBefore = member.RaftLogBytes;
        var buffersBefore = member.PageBufferBytes;
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < Measured; i++) Batch();
        var caller = GC.GetAllocatedBytesForCurrentThread() - before;
        await Task.Delay(100);                                      // the raft thread publishes its figure after each round
        // A slab the log's arena adds when the log's peak length edges past an earlier one is the log's memory growing
        // (it is kept and reused), not garbage: it is counted apart. So is a page buffer the storage writer adds when a
        // backend transaction (which spans many batches) dirties more pages than any before it.
        var raft = Volatile.Read(ref member.Stats.RaftThreadAllocatedBytes) - raftBefore - Math.Max(0, member.RaftLogBytes - logBefore)
            - Math.Max(0, member.PageBufferBytes - buffersBefore);
        Assert.Equal(0, responder.Errors);
        // The calling thread parses in place and takes pooled proposals and waiters: nothing, except a pooled object
        // now and then when more requests than ever before are in flight at once.
        var callerPerPut = caller / (Measured * 64.0);
        Assert.True(callerPerPut < 1, $"the calling thread allocated {callerPerPut:F2} bytes per put");
        // The raft thread's only allocations are periodic: a compaction's snapshot record and files (tens of KB per
        // 6,000 entries) and a new WAL segment now and then — a few bytes per put. Before the log arena, the reused
        // Ready and the reused storage transaction it was about 800.
        var perPut = raft / (Measured * 64.0);
        Assert.True(perPut < 8, $"the raft thread allocated {perPut:F1} bytes per put besides the log's own memory");
    }
}
