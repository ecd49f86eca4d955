using System.Threading.Tasks.Sources;

namespace Cairn.Protocol;

/// <summary>
/// An auto-reset signal one consumer awaits without allocating: <see cref="Set"/> from any thread wakes the waiter (or
/// makes its next wait return at once). The single waiter is a connection's writer loop — in the member's sessions and
/// peer links and in the client's connections alike, which is why it lives in the layer both share.
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

    void IValueTaskSource.GetResult(short token) => _core.GetResult(token);

    ValueTaskSourceStatus IValueTaskSource.GetStatus(short token) => _core.GetStatus(token);

    void IValueTaskSource.OnCompleted(Action<object?> continuation, object? state, short token, ValueTaskSourceOnCompletedFlags flags) =>
        _core.OnCompleted(continuation, state, token, flags);
}
