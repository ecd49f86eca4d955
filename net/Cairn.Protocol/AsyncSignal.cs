using System.Threading.Tasks.Sources;

namespace Cairn.Protocol;

/// <summary>
/// An auto-reset signal one consumer awaits without allocating: <see cref="Set"/> from any thread wakes the waiter (or
/// makes its next wait return at once). The single waiter is a <see cref="WritePump"/>'s writer loop — in the member's
/// sessions and peer links and in the client's connections alike, which is why it lives in the layer both share.
/// </summary>
public sealed class AsyncSignal : IValueTaskSource
{
    private ManualResetValueTaskSourceCore<bool> _core = new() { RunContinuationsAsynchronously = true };
    private readonly Lock _lock = new();
    private bool _set;      // guarded by _lock
    private bool _waiting;  // guarded by _lock

    /// <summary>Wakes the waiter, or the next wait.</summary>
    public void Set()
    {
        lock (_lock)
        {
            if (!_waiting)
            {
                _set = true;
                return;
            }
            _waiting = false;
        }
        _core.SetResult(true);
    }

    /// <summary>Waits for <see cref="Set"/>; one waiter at a time.</summary>
    public ValueTask WaitAsync()
    {
        lock (_lock)
        {
            if (_set)
            {
                _set = false;
                return ValueTask.CompletedTask;
            }
            _core.Reset();
            _waiting = true;
            return new ValueTask(this, _core.Version);
        }
    }

    // A wait abandoned and then overtaken by a new one (its token is stale once the core is reset) counts as woken: a
    // signal may wake spuriously, but a stale token must never throw — it would throw on a pool thread, from the
    // continuation a Set already queued, and end the process.

    void IValueTaskSource.GetResult(short token)
    {
        lock (_lock)
        {
            if (token == _core.Version) _core.GetResult(token);
        }
    }

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token)
    {
        lock (_lock) return token == _core.Version ? _core.GetStatus(token) : ValueTaskSourceStatus.Succeeded;
    }

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags)
    {
        lock (_lock)
        {
            if (token == _core.Version)
            {
                _core.OnCompleted(continuation, state, token, flags);
                return;
            }
        }
        ThreadPool.QueueUserWorkItem(continuation, state, preferLocal: false);
    }
}
