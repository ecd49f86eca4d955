namespace Cairn.Kv;

/// <summary>
/// One read view of the latest applied state, shared by every reader that asks while no newer commit has happened:
/// a server answering single-key reads takes it per batch of requests and allocates nothing while the state does not
/// change. A commit makes it stale; it closes when its last holder lets go, so it never pins old pages for long.
/// </summary>
public sealed partial class KvStateMachine
{
    private readonly Lock _sharedLock = new();
    private KvReadView? _shared;      // the current shared view (null: none yet, or invalidated)
    private int _sharedRefs;          // holders of _shared
    private readonly Dictionary<KvReadView, int> _retired = [];  // stale views still held, with their holders

    /// <summary>
    /// The shared view of the latest applied state, read by many threads at once; give it back with
    /// <see cref="ReleaseLatest"/> (do not dispose it).
    /// Allocation-free while no commit happened since the last call.
    /// </summary>
    public KvReadView AcquireLatest()
    {
        CommitForRead(); // a batch applied but not committed would leave the shared view behind it
        lock (_sharedLock)
        {
            if (_shared is { } current)
            {
                _sharedRefs++;
                return current;
            }
        }
        // Opening a view may wait for a defragmentation's swap: never while holding the lock releasers need.
        var fresh = new KvReadView(this, _options);
        KvReadView? extra = null;
        lock (_sharedLock)
        {
            if (_shared is null)
            {
                _shared = fresh;
                _sharedRefs = 1;
                return fresh;
            }
            extra = fresh;      // another reader installed one meanwhile: use theirs
            _sharedRefs++;
            fresh = _shared;
        }
        extra.Dispose();
        return fresh;
    }

    /// <summary>Gives back a view from <see cref="AcquireLatest"/>.</summary>
    public void ReleaseLatest(KvReadView view)
    {
        ArgumentNullException.ThrowIfNull(view);
        KvReadView? close = null;
        lock (_sharedLock)
        {
            if (ReferenceEquals(view, _shared))
            {
                _sharedRefs--;
            }
            else if (_retired.TryGetValue(view, out var refs))
            {
                if (refs <= 1)
                {
                    _retired.Remove(view);
                    close = view;
                }
                else
                {
                    _retired[view] = refs - 1;
                }
            }
        }
        close?.Dispose();
    }

    /// <summary>A commit happened (or the file is about to be swapped or closed): the shared view is stale.</summary>
    private void RetireShared()
    {
        KvReadView? close = null;
        lock (_sharedLock)
        {
            if (_shared is null) return;
            if (_sharedRefs == 0) close = _shared;
            else _retired[_shared] = _sharedRefs;
            _shared = null;
            _sharedRefs = 0;
        }
        close?.Dispose();
    }
}
