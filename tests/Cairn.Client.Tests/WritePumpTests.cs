using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Cairn.Protocol;

namespace Cairn.Client.Tests;

/// <summary>
/// The write pump that client sessions, peer links and client connections share. Every frame written reaches the other
/// side intact and in its writer's order. What is written during a send leaves in the next one. Close sends everything
/// written before it; once the pump has ended, writes are refused. Steady-state sends allocate nothing.
/// </summary>
public sealed class WritePumpTests
{
    private static readonly TimeSpan Hang = TimeSpan.FromSeconds(30);   // a guard against hanging, never a measurement

    [Fact]
    public async Task Frames_written_from_many_threads_all_arrive_intact_and_in_each_writers_order()
    {
        var (sender, receiver) = await LoopbackAsync();
        using (sender)
        using (receiver)
        {
            using var pump = new WritePump(256); // small, so bursts make it grow
            var run = pump.RunAsync(sender);
            var received = ReadFramesAsync(receiver);
            const int Writers = 8, PerWriter = 3_000;
            var refused = 0;
            using var start = new Barrier(Writers);
            var threads = new Thread[Writers];
            for (var t = 0; t < Writers; t++)
            {
                var writer = (ulong)t;
                threads[t] = new Thread(() =>
                {
                    start.SignalAndWait();
                    for (var i = 0; i < PerWriter; i++)
                    {
                        if (!WriteFrame(pump, writer << 32 | (uint)i, i % 500)) Interlocked.Increment(ref refused);
                    }
                });
                threads[t].Start();
            }
            foreach (var thread in threads) thread.Join();
            pump.Close();
            await run.WaitAsync(Hang);
            sender.Shutdown(SocketShutdown.Send);
            var frames = await received.WaitAsync(Hang);

            Assert.Equal(0, refused);
            Assert.Equal(Writers * PerWriter, frames.Count);
            var next = new int[Writers];
            foreach (var (id, payload) in frames)
            {
                var writer = (int)(id >> 32);
                var i = (int)(uint)id;
                Assert.Equal(next[writer]++, i);                 // each writer's frames in the order it wrote them
                Assert.Equal(i % 500, payload.Length);
                Assert.True(payload.AsSpan().SequenceEqual(Expected(id, payload.Length)));
            }
            Assert.All(next, n => Assert.Equal(PerWriter, n));
        }
    }

    [Fact]
    public async Task Writes_made_while_a_send_is_in_progress_leave_together_after_it()
    {
        var stream = new GatedStream();
        var batches = 0;
        using var pump = new WritePump(1024, onTake: () => batches++);
        var run = pump.RunAsync(stream);

        WriteFrame(pump, 1, 10);
        var first = await stream.NextWriteAsync().AsTask().WaitAsync(Hang);
        Assert.Equal(Frames((1, 10)), first);

        // The loop is held inside that send: these wait for it.
        WriteFrame(pump, 2, 20);
        WriteFrame(pump, 3, 30);
        Assert.False(stream.TryNextWrite(out _));
        Assert.False(pump.IsIdle);

        stream.Allow();
        var second = await stream.NextWriteAsync().AsTask().WaitAsync(Hang);
        Assert.Equal(Frames((2, 20), (3, 30)), second);                 // one write, in the order written
        Assert.Equal(2, batches);

        stream.Allow(int.MaxValue / 2);
        pump.Close();
        await run.WaitAsync(Hang);
        Assert.True(pump.IsIdle);
        Assert.False(stream.TryNextWrite(out _));
    }

    [Fact]
    public async Task Close_sends_everything_written_before_it_and_later_writes_are_refused()
    {
        var stream = new GatedStream();
        using var pump = new WritePump(1024);
        WriteFrame(pump, 1, 5);                                        // before the loop runs
        var run = pump.RunAsync(stream);
        Assert.Equal(Frames((1, 5)), await stream.NextWriteAsync().AsTask().WaitAsync(Hang));
        WriteFrame(pump, 2, 6);                                        // during a send
        pump.Close();
        stream.Allow(int.MaxValue / 2);
        await run.WaitAsync(Hang);
        Assert.Equal(Frames((2, 6)), await stream.NextWriteAsync().AsTask().WaitAsync(Hang));

        Assert.False(WriteFrame(pump, 3, 7));                          // the pump has ended: refused, and dropped
        Assert.True(pump.IsIdle);
        await pump.RunAsync(stream).WaitAsync(Hang);                   // an ended pump's loop returns at once
        Assert.False(stream.TryNextWrite(out _));
    }

    [Fact]
    public async Task Close_before_the_loop_runs_sends_what_was_written_then_ends()
    {
        var (sender, receiver) = await LoopbackAsync();
        using (sender)
        using (receiver)
        {
            using var pump = new WritePump();
            for (ulong i = 0; i < 100; i++) WriteFrame(pump, i, (int)i);
            pump.Close();
            var received = ReadFramesAsync(receiver);
            await pump.RunAsync(sender).WaitAsync(Hang);
            sender.Shutdown(SocketShutdown.Send);
            var frames = await received.WaitAsync(Hang);
            Assert.Equal(Enumerable.Range(0, 100).Select(i => (ulong)i), frames.Select(f => f.Id));
        }
    }

    [Fact]
    public async Task Abort_ends_the_loop_after_the_send_in_progress_and_drops_what_waits()
    {
        var stream = new GatedStream();
        using var pump = new WritePump(1024);
        var run = pump.RunAsync(stream);
        WriteFrame(pump, 1, 5);
        Assert.Equal(Frames((1, 5)), await stream.NextWriteAsync().AsTask().WaitAsync(Hang));
        WriteFrame(pump, 2, 6);
        pump.Abort();
        stream.Allow(int.MaxValue / 2);
        await run.WaitAsync(Hang);
        Assert.False(stream.TryNextWrite(out _));
        Assert.True(pump.IsIdle);
        Assert.False(WriteFrame(pump, 3, 7));
    }

    [Fact]
    public async Task A_canceled_run_loses_its_send_and_a_new_run_sends_what_was_written_meanwhile()
    {
        // A peer link: the stream breaks, what was being written on it is lost, and the next stream carries on.
        var broken = new GatedStream();
        using var pump = new WritePump(1024);
        using var cut = new CancellationTokenSource();
        var run = pump.RunAsync(broken, cut.Token);
        WriteFrame(pump, 1, 5);
        Assert.Equal(Frames((1, 5)), await broken.NextWriteAsync().AsTask().WaitAsync(Hang));
        await cut.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Hang));

        WriteFrame(pump, 2, 6);
        var next = new GatedStream();
        next.Allow(int.MaxValue / 2);
        var rerun = pump.RunAsync(next);
        Assert.Equal(Frames((2, 6)), await next.NextWriteAsync().AsTask().WaitAsync(Hang));
        pump.Close();
        await rerun.WaitAsync(Hang);
        Assert.False(next.TryNextWrite(out _));
    }

    [Fact]
    public async Task A_run_canceled_while_it_waits_ends()
    {
        using var pump = new WritePump();
        using var cut = new CancellationTokenSource();
        var run = pump.RunAsync(new GatedStream(), cut.Token);
        await cut.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(Hang));
    }

    [Fact]
    public async Task Dispose_twice_is_safe_and_a_disposed_pump_refuses_writes_and_sends_nothing()
    {
        var stream = new GatedStream();
        var pump = new WritePump(64);
        WriteFrame(pump, 1, 5);
        pump.Dispose();
        pump.Dispose();
        pump.Close();
        pump.Abort();
        Assert.False(WriteFrame(pump, 2, 4_000));                      // grows the disposed buffer: handed back at End
        Assert.True(pump.IsIdle);
        await pump.RunAsync(stream).WaitAsync(Hang);
        Assert.False(stream.TryNextWrite(out _));
    }

    [Fact]
    public async Task Dispose_while_a_send_is_in_progress_ends_the_loop_after_it()
    {
        var stream = new GatedStream();
        var pump = new WritePump(1024);
        var run = pump.RunAsync(stream);
        WriteFrame(pump, 1, 5);
        Assert.Equal(Frames((1, 5)), await stream.NextWriteAsync().AsTask().WaitAsync(Hang));
        WriteFrame(pump, 2, 6);
        pump.Dispose();
        stream.Allow(int.MaxValue / 2);
        await run.WaitAsync(Hang);
        Assert.False(stream.TryNextWrite(out _));
    }

    [Fact]
    public void Begin_nests_and_the_outermost_End_sees_everything_written_since_the_outermost_Begin()
    {
        using var pump = new WritePump();
        WriteFrame(pump, 1, 3);                                        // written earlier: not part of the next Begin
        var w = pump.Begin();
        Assert.Equal(1, pump.Depth);
        w.BeginFrame(MessageType.Put, FrameFlags.None, 2);
        w.EndFrame();
        WriteFrame(pump, 3, 4);                                        // nested
        Assert.Equal(1, pump.Depth);
        Assert.Equal(Frames((2, 0), (3, 4)), pump.WrittenSinceBegin.ToArray());
        Assert.True(pump.End());
        Assert.False(pump.Lock.IsHeldByCurrentThread);
    }

    [Fact]
    public async Task A_second_loop_at_once_is_refused()
    {
        using var pump = new WritePump();
        var run = pump.RunAsync(new GatedStream());
        await Assert.ThrowsAsync<InvalidOperationException>(() => pump.RunAsync(new GatedStream()));
        pump.Close();
        await run.WaitAsync(Hang);
    }

    [Fact]
    public async Task Steady_state_sends_on_a_socket_allocate_nothing_on_the_writer_thread()
    {
        // The writer thread feeds itself: each time the loop takes a batch (onTake, on the writer thread under the
        // pump's lock) it writes the next frame, so the loop swaps, sends and takes again without waiting. While each
        // send completes at once (a large send buffer and a reader that drains it) nothing else runs on that thread
        // between two takes, and its allocation counter measures the loop alone. A send that completed later moves the
        // loop to another thread; the measurement then starts again there.
        var (sender, receiver) = await LoopbackAsync();
        using (sender)
        using (receiver)
        {
            sender.SendBufferSize = 4 << 20;
            receiver.ReceiveBufferSize = 4 << 20;
            const int Warm = 500, Measured = 5_000, MostRounds = 1_000_000;
            var rounds = 0;
            var windowStart = 0;
            var windowThread = -1;
            var windowBytes = 0L;
            var allocated = -1L;
            var measured = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            WritePump? pump = null;
            void OnTake()
            {
                rounds++;
                var thread = Environment.CurrentManagedThreadId;
                if (rounds == Warm || (rounds > Warm && thread != windowThread))
                {
                    windowStart = rounds;
                    windowThread = thread;
                    windowBytes = GC.GetAllocatedBytesForCurrentThread();
                }
                else if (rounds > Warm && rounds - windowStart == Measured)
                {
                    allocated = GC.GetAllocatedBytesForCurrentThread() - windowBytes;
                    measured.TrySetResult();
                    return;
                }
                if (rounds < MostRounds) WriteFrame(pump!, (ulong)rounds, 24);
                else measured.TrySetResult();
            }
            pump = new WritePump(4096, OnTake);
            var drained = DrainAsync(receiver);
            var run = pump.RunAsync(sender);
            WriteFrame(pump, 0, 24);
            await measured.Task.WaitAsync(Hang);
            pump.Close();
            await run.WaitAsync(Hang);
            sender.Shutdown(SocketShutdown.Send);
            var bytes = await drained.WaitAsync(Hang);

            Assert.True(rounds < MostRounds, "the loop never stayed on one thread for a whole measurement");
            Assert.Equal(rounds * (long)(Frame.HeaderSize + 24), bytes);  // every frame went out
            Assert.Equal(0, allocated);
        }
    }

    /// <summary>Writes one frame of <paramref name="size"/> payload bytes derived from <paramref name="id"/>; End's answer.</summary>
    private static bool WriteFrame(WritePump pump, ulong id, int size)
    {
        var w = pump.Begin();
        bool open;
        try
        {
            w.BeginFrame(MessageType.Put, FrameFlags.None, id);
            Fill(w.Take(size), id);
            w.EndFrame();
        }
        finally
        {
            open = pump.End();
        }
        return open;
    }

    private static void Fill(Span<byte> payload, ulong id)
    {
        for (var i = 0; i < payload.Length; i++) payload[i] = (byte)(id * 31 + (ulong)i * 7);
    }

    private static byte[] Expected(ulong id, int size)
    {
        var b = new byte[size];
        Fill(b, id);
        return b;
    }

    /// <summary>The bytes of frames written by <see cref="WriteFrame"/>, back to back.</summary>
    private static byte[] Frames(params (ulong Id, int Size)[] frames)
    {
        using var w = new FrameWriter(64);
        foreach (var (id, size) in frames)
        {
            w.BeginFrame(MessageType.Put, FrameFlags.None, id);
            Fill(w.Take(size), id);
            w.EndFrame();
        }
        return w.WrittenSpan.ToArray();
    }

    private static async Task<(Socket Sender, Socket Receiver)> LoopbackAsync()
    {
        using var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(1);
        var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        var accepted = listener.AcceptAsync();
        await sender.ConnectAsync(listener.LocalEndPoint!);
        return (sender, await accepted);
    }

    /// <summary>Reads frames until the other side shuts down; a partial frame left at the end fails the test.</summary>
    private static async Task<List<(ulong Id, byte[] Payload)>> ReadFramesAsync(Socket socket)
    {
        var frames = new List<(ulong, byte[])>();
        var buffer = new byte[1 << 16];
        var filled = 0;
        while (true)
        {
            var n = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None);
            if (n == 0) break;
            filled += n;
            var at = 0;
            while (Frame.TryReadHeader(buffer.AsSpan(at, filled - at), out var h) && filled - at >= Frame.HeaderSize + (int)h.PayloadLength)
            {
                frames.Add((h.RequestId, buffer.AsSpan(at + Frame.HeaderSize, (int)h.PayloadLength).ToArray()));
                at += Frame.HeaderSize + (int)h.PayloadLength;
            }
            buffer.AsSpan(at, filled - at).CopyTo(buffer);
            filled -= at;
        }
        Assert.Equal(0, filled);
        return frames;
    }

    /// <summary>Counts the bytes received until the other side shuts down.</summary>
    private static async Task<long> DrainAsync(Socket socket)
    {
        var buffer = new byte[1 << 16];
        var total = 0L;
        int n;
        while ((n = await socket.ReceiveAsync(buffer, SocketFlags.None)) > 0) total += n;
        return total;
    }

    /// <summary>
    /// A stream whose writes are held until the test allows them: the test sees each write begin (with its bytes) and
    /// decides when it completes, so "during a send" is a state, not a moment.
    /// </summary>
    private sealed class GatedStream : Stream
    {
        private readonly Channel<byte[]> _begun = Channel.CreateUnbounded<byte[]>();
        private readonly SemaphoreSlim _allowed = new(0);

        public ValueTask<byte[]> NextWriteAsync() => _begun.Reader.ReadAsync();

        public bool TryNextWrite(out byte[]? bytes) => _begun.Reader.TryRead(out bytes);

        public void Allow(int writes = 1) => _allowed.Release(writes);

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            _begun.Writer.TryWrite(buffer.ToArray());
            await _allowed.WaitAsync(cancellationToken);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _allowed.Dispose();
            base.Dispose(disposing);
        }
    }
}
