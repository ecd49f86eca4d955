using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>The single-key read path allocates nothing once warm (architecture §9: frame parsing and Get at 0 B).</summary>
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
                member.Handle(responder, h, f.Slice(Frame.HeaderSize, (int)h.PayloadLength));
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
}
