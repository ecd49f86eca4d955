using System.Net.Sockets;

namespace Cairn.Protocol;

/// <summary>
/// The sending half of a connection — a member's client session and peer link, the client's connection. Any thread
/// writes whole frames into the front buffer between <see cref="Begin"/> and <see cref="End"/>. One writer loop
/// (<see cref="RunAsync(Socket, CancellationToken)"/>) swaps the front buffer with the back one and sends all of it in
/// one write. What is written during a send goes out together in the next one, and nothing is allocated per send.
/// The loop ends in one of three ways. <see cref="Close"/> sends everything written before it, then ends.
/// <see cref="Abort"/> ends at the next swap and drops what waits. <see cref="Dispose"/> aborts and returns both
/// buffers to the pool. Once the pump has ended, <see cref="End"/> drops what was written and returns false.
/// </summary>
public sealed class WritePump : IDisposable
{
    private readonly Lock _lock = new();
    private FrameWriter _front;            // written by Begin/End; guarded by _lock
    private FrameWriter _back;             // the loop's: sent outside _lock, swapped and reset only under it
    private readonly int _capacity;
    private readonly int _keptCapacity;    // a back buffer that a burst grew past this is replaced once sent
    private readonly Action? _onTake;      // the owner's bookkeeping for what the loop takes; runs under _lock
    private readonly AsyncSignal _wake = new();
    private int _depth;                    // Begins not yet ended by the lock's holder; guarded by _lock
    private int _begunAt;                  // _front's length at the outermost Begin; guarded by _lock
    private bool _running;                 // a loop is running (one at a time); guarded by _lock
    private bool _closing;                 // the loop ends once a swap finds nothing; guarded by _lock
    private bool _ended;                   // closed and drained, aborted or disposed: nothing more is sent; guarded by _lock
    private bool _disposed;                // guarded by _lock

    /// <summary>A pump whose buffers start at <paramref name="capacity"/> bytes and grow as bursts need.</summary>
    /// <param name="capacity">The starting size of each buffer.</param>
    /// <param name="onTake">
    /// Runs under <see cref="Lock"/> each time the loop takes a front buffer that holds frames, before it sends them.
    /// Use it for the owner's state that describes what was written. It must not block.
    /// </param>
    /// <param name="keptCapacity">A buffer that a burst grew past this is replaced by a new one once it has been sent.</param>
    public WritePump(int capacity = 16 << 10, Action? onTake = null, int keptCapacity = int.MaxValue)
    {
        _capacity = capacity;
        _keptCapacity = keptCapacity;
        _onTake = onTake;
        _front = new FrameWriter(capacity);
        _back = new FrameWriter(capacity);
    }

    /// <summary>
    /// Guards the front buffer. An owner keeps under it any state that must change together with what is written
    /// (requests in flight, frames waiting).
    /// </summary>
    public Lock Lock => _lock;

    /// <summary>Enters <see cref="Lock"/> and returns the front buffer to write whole frames into; it nests.</summary>
    public FrameWriter Begin()
    {
        _lock.Enter();
        if (_depth++ == 0) _begunAt = _front.Length;
        return _front;
    }

    /// <summary>How deep the holder's Begins nest (1: the next End is the outermost); read only between Begin and End.</summary>
    public int Depth => _depth;

    /// <summary>The frames written since the outermost <see cref="Begin"/>; read only between Begin and End.</summary>
    public ReadOnlySpan<byte> WrittenSinceBegin => _front.WrittenSpan[_begunAt..];

    /// <summary>
    /// Leaves <see cref="Lock"/> and wakes the loop if anything waits. Returns false when the pump has ended; then the
    /// outermost End drops what was written.
    /// </summary>
    public bool End()
    {
        bool open, wake;
        try
        {
            open = !_ended;
            if (--_depth == 0 && !open)
            {
                if (_disposed) _front.Dispose(); // gives back a buffer that writes into the disposed one rented
                else _front.Reset();
            }
            wake = open && _front.Length > 0;
        }
        finally
        {
            _lock.Exit();
        }
        if (wake) _wake.Set();
        return open;
    }

    /// <summary>Whether nothing waits to be sent and nothing is being sent.</summary>
    public bool IsIdle
    {
        get
        {
            lock (_lock) return _front.Length == 0 && _back.Length == 0;
        }
    }

    /// <summary>
    /// Forgets what waits to be sent. A peer link uses this after a broken stream: frames queued for it are stale.
    /// Not to be called between Begin and End.
    /// </summary>
    public void Drop()
    {
        lock (_lock) _front.Reset();
    }

    /// <summary>Runs the writer loop on a socket; see <see cref="RunAsync(Stream, CancellationToken)"/>.</summary>
    public Task RunAsync(Socket socket, CancellationToken cancellationToken = default) => RunAsync(socket, null, cancellationToken);

    /// <summary>
    /// Runs the writer loop on <paramref name="stream"/>, for example a TLS stream. The loop sends until the pump ends.
    /// It throws when a send fails or <paramref name="cancellationToken"/> is canceled; then the batch being sent is lost.
    /// A pump may run again afterwards, on a new stream, and sends what was written meanwhile; one loop at a time.
    /// </summary>
    public Task RunAsync(Stream stream, CancellationToken cancellationToken = default) => RunAsync(null, stream, cancellationToken);

    private async Task RunAsync(Socket? socket, Stream? stream, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (_running) throw new InvalidOperationException("This write pump's loop is already running: one loop at a time.");
            if (_ended) return;
            _running = true;
        }
        try
        {
            // A cancellation wakes the loop so that it sees it (one registration per run, none per send).
            using var wakeOnCancel = cancellationToken.UnsafeRegister(static s => ((AsyncSignal)s!).Set(), _wake);
            while (true)
            {
                while (true)
                {
                    cancellationToken.ThrowIfCancellationRequested();
                    var batch = Take();
                    if (batch is null) return;
                    if (batch.Length == 0) break;
                    if (socket is not null) await socket.SendAsync(batch.Written, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    else await stream!.WriteAsync(batch.Written, cancellationToken).ConfigureAwait(false);
                }
                await _wake.WaitAsync().ConfigureAwait(false);
            }
        }
        finally
        {
            lock (_lock)
            {
                _running = false;
                if (_disposed) _back.Dispose();
                else _back.Reset();
            }
        }
    }

    /// <summary>
    /// Forgets the batch just sent and takes what waits: the back buffer after the swap (empty when nothing waits), or
    /// null once the pump has ended. A closing pump ends at the first swap that finds nothing. That swap holds the lock
    /// that Close took, so it sees everything written before Close.
    /// </summary>
    private FrameWriter? Take()
    {
        lock (_lock)
        {
            if (_ended) return null;
            _back.Reset();
            if (_back.Capacity > _keptCapacity)
            {
                _back.Dispose();
                _back = new FrameWriter(_capacity);
            }
            (_front, _back) = (_back, _front);
            if (_back.Length > 0)
            {
                _onTake?.Invoke();
                return _back;
            }
            if (!_closing) return _back;
            _ended = true;
            return null;
        }
    }

    /// <summary>Asks the loop to send everything written so far and then end.</summary>
    public void Close()
    {
        lock (_lock) _closing = true;
        _wake.Set();
    }

    /// <summary>Ends the loop at its next swap; what waits is never sent. A send in progress completes or fails on its own.</summary>
    public void Abort()
    {
        lock (_lock)
        {
            if (_ended) return;
            _ended = true;
            if (_depth == 0) _front.Reset();
        }
        _wake.Set();
    }

    /// <summary>Aborts and returns both buffers to the pool (the back one when the loop ends, if it is still sending).</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed) return;
            _disposed = true;
            _ended = true;
            if (_depth == 0) _front.Dispose(); // else the outermost End does
            if (!_running) _back.Dispose();    // else the loop does as it ends
        }
        _wake.Set();
    }
}
