using BenchmarkDotNet.Attributes;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Server;

namespace Cairn.Bench;

/// <summary>
/// A member's request path without the socket: frames parsed in place and handed to <c>Member.Handle</c>, answers
/// written into a pooled buffer (as a client session does), 64 requests per batch as a pipelining client sends them.
/// `Get` is a serializable single-key read (the in-place path: the bar is 0 B per request); `Put` goes through the
/// whole write path of a one-member cluster — proposal, WAL append and fsync, apply, answer — counted on every
/// thread. The setup first puts 40,000 times, so the Raft log has been compacted (--snapshot-count 10,000) and its
/// arena is at its working size: what is left per put is the amortized share of periodic work (compactions, a new
/// WAL segment), a few bytes.
/// </summary>
[MemoryDiagnoser]
[Config(typeof(StorageConfig))]
public class ServerPathBenchmarks
{
    private const int Batch = 64;
    private string _dir = "";
    private Member _member = null!;
    private BenchResponder _responder = null!;
    private byte[] _gets = [];
    private byte[] _puts = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "cairn-bench-server-" + Guid.NewGuid().ToString("N"));
        _member = Member.Start(new MemberOptions
        {
            Name = "bench", DataDir = _dir, ListenClient = "127.0.0.1:0", ListenPeer = "127.0.0.1:0", ListenMetrics = "",
            HeartbeatInterval = TimeSpan.FromMilliseconds(20), ElectionTimeout = TimeSpan.FromMilliseconds(100), Log = _ => { },
        });
        while (!_member.IsLeader) Thread.Sleep(10);
        _responder = new BenchResponder();
        var value = new byte[256];
        using var w = new FrameWriter();
        for (var i = 0; i < Batch; i++)
        {
            w.BeginFrame(MessageType.Put, FrameFlags.None, (ulong)i + 1);
            Messages.WritePut(w, new PutRequest { Key = System.Text.Encoding.UTF8.GetBytes($"key{i:D4}"), Value = value });
            w.EndFrame();
        }
        _puts = w.WrittenSpan.ToArray();
        w.Reset();
        for (var i = 0; i < Batch; i++)
        {
            w.BeginFrame(MessageType.Range, FrameFlags.None, (ulong)i + 1);
            Messages.WriteRange(w, new RangeRequest { Key = System.Text.Encoding.UTF8.GetBytes($"key{i:D4}") }, Consistency.Serializable);
            w.EndFrame();
        }
        _gets = w.WrittenSpan.ToArray();
        // Every key exists before the gets, and the log has reached its working size before the puts are measured.
        for (var i = 0; i < 40_000 / Batch; i++) Put();
        if (_responder.Errors > 0) throw new InvalidOperationException("setup puts failed");
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _member.DisposeAsync().AsTask().GetAwaiter().GetResult();
        Directory.Delete(_dir, recursive: true);
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int Get()
    {
        Feed(_gets);
        _responder.EndBatch(_member);
        return _responder.Answers;
    }

    [Benchmark(OperationsPerInvoke = Batch)]
    public int Put()
    {
        _responder.Expect(Batch);
        Feed(_puts);
        _responder.WaitAll();
        return _responder.Answers;
    }

    private void Feed(ReadOnlySpan<byte> frames)
    {
        while (Frame.TryReadHeader(frames, out var h))
        {
            var total = Frame.HeaderSize + (int)h.PayloadLength;
            _member.Router.Handle(_responder, h, frames.Slice(Frame.HeaderSize, (int)h.PayloadLength));
            frames = frames[total..];
        }
    }

    /// <summary>Answers go into a reused buffer and are counted; single-key reads share a view per batch, as a session's do.</summary>
    private sealed class BenchResponder : Responder
    {
        private readonly FrameWriter _out = new(64 << 10);
        private readonly Lock _lock = new();
        private readonly ManualResetEventSlim _done = new();
        private KvReadView? _view;
        private KvStateMachine? _machine;
        private int _expected;
        public int Answers;
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
                Answers++;
                if (h.Type == MessageType.Error) Errors++;
                if (_expected > 0 && --_expected == 0) _done.Set();
            }
            _out.Reset();
            _lock.Exit();
        }

        public override KvReadView? BatchView(KvStateMachine machine)
        {
            _machine = machine;
            return _view ??= machine.AcquireLatest();
        }

        public void EndBatch(Member _)
        {
            if (_view is not null) _machine!.ReleaseLatest(_view);
            _view = null;
        }

        public void Expect(int n)
        {
            _done.Reset();
            lock (_lock) _expected = n;
        }

        public void WaitAll() => _done.Wait();
    }
}
