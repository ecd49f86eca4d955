namespace Cairn.Raft;

/// <summary>
/// A follower's replication as its leader sees it, owning its own transitions (etcd raft's three flow states).
/// Probe: one append at a time until the follower's log is found to match, backing off on each rejection.
/// Replicate: appends go out back to back without waiting (pipelining), up to an in-flight window bounded by message
/// count and bytes. Snapshot: the follower's next entry is compacted away and a snapshot is on its way; nothing more
/// goes out until the follower acknowledges it or the transport reports how the send ended.
/// </summary>
internal sealed class Progress(ulong next, int maxInflight, long maxInflightBytes)
{
    public enum Mode
    {
        Probe,
        Replicate,
        Snapshot,
    }

    private readonly Queue<(ulong Last, long Bytes)> _inflight = new(); // Replicate: appends not yet acknowledged
    private long _inflightBytes;
    // Probe: an append is out, wait for its answer. Replicate: an append went out since the last heartbeat answer, which
    // matters only once the window is full: then one empty append per heartbeat answer asks where the follower is.
    private bool _paused;

    /// <summary>Highest index known to be in the follower's log; 0 ≤ Match &lt; Next.</summary>
    public ulong Match { get; private set; }

    /// <summary>Next index to send.</summary>
    public ulong Next { get; private set; } = next;

    public Mode State { get; private set; } = Mode.Probe;

    /// <summary>Snapshot: the index of the snapshot on its way; 0 in the other states.</summary>
    public ulong PendingSnapshot { get; private set; }

    public int Inflight => _inflight.Count;

    private bool WindowOpen => _inflight.Count < maxInflight && _inflightBytes < maxInflightBytes;

    /// <summary>Whether an append may go out now (see <see cref="CanSendEntries"/> for whether it may carry entries).</summary>
    public bool CanSend => State switch
    {
        Mode.Probe => !_paused,
        Mode.Replicate => WindowOpen || !_paused,
        _ => false,
    };

    /// <summary>Whether the append that may go out may carry entries: a full window lets out only an empty one.</summary>
    public bool CanSendEntries => State switch
    {
        Mode.Probe => !_paused,
        Mode.Replicate => WindowOpen,
        _ => false,
    };

    /// <summary>An append carrying entries up to <paramref name="last"/> went out.</summary>
    public void Sent(ulong last, long bytes, int entries)
    {
        _paused = true;
        if (State != Mode.Replicate || entries == 0) return;
        _inflight.Enqueue((last, bytes));
        _inflightBytes += bytes;
        Next = last + 1; // optimistic: the next append follows without waiting
    }

    /// <summary>The snapshot at <paramref name="index"/> went out instead of entries: nothing more until it lands.</summary>
    public void SnapshotSent(ulong index)
    {
        Reset(Mode.Snapshot);
        PendingSnapshot = index;
    }

    /// <summary>The follower's log matches up to <paramref name="index"/>.</summary>
    public void Acknowledged(ulong index)
    {
        var stale = index < Match;
        if (index > Match) Match = index;
        if (Next <= Match) Next = Match + 1;
        switch (State)
        {
            case Mode.Replicate:
                while (_inflight.Count > 0 && _inflight.Peek().Last <= index) _inflightBytes -= _inflight.Dequeue().Bytes;
                break;
            case Mode.Probe when !stale:
                // A match found (a repeat of the known match counts: a caught-up follower probed after it was
                // reported unreachable answers just that).
                Reset(Mode.Replicate);
                Next = Match + 1;
                break;
            case Mode.Snapshot when Match >= PendingSnapshot:
                Reset(Mode.Replicate); // the follower installed it (or already had it): replicate from after it
                Next = Match + 1;
                break;
        }
    }

    /// <summary>The follower's log did not match; <paramref name="hint"/> is the last index it can check.</summary>
    public void Rejected(ulong hint)
    {
        if (State == Mode.Snapshot) return; // an answer to an append sent before the snapshot: the snapshot decides
        Reset(Mode.Probe);
        Next = Math.Max(Match + 1, Math.Min(Next - 1, hint + 1));
    }

    /// <summary>
    /// A heartbeat answer: the follower is alive. A probe waiting for an answer that was lost may go out again, and a
    /// full window may let out one empty append, which the follower acknowledges (freeing what it holds) or rejects
    /// (probing resumes from its hint). No slot is freed on a guess: appends lost with a link are the transport's to
    /// report (<see cref="Unreachable"/>).
    /// </summary>
    public void Heard()
    {
        if (State != Mode.Snapshot) _paused = false;
    }

    /// <summary>The transport could not deliver to the follower: appends in flight are probably lost, probe from the match.</summary>
    public void Unreachable()
    {
        if (State != Mode.Replicate) return;
        Reset(Mode.Probe);
        Next = Match + 1;
    }

    /// <summary>
    /// The transport finished sending the pending snapshot (<paramref name="succeeded"/>) or gave up. Either way the
    /// follower is probed, after the follower's answer or the next heartbeat answer: from after the snapshot if it
    /// went out, from the match if not (then a new snapshot goes out when the probe finds the entries compacted).
    /// </summary>
    public void SnapshotDone(bool succeeded)
    {
        if (State != Mode.Snapshot) return;
        var after = succeeded ? PendingSnapshot + 1 : 0;
        Reset(Mode.Probe);
        Next = Math.Max(Match + 1, after);
        _paused = true;
    }

    private void Reset(Mode state)
    {
        State = state;
        PendingSnapshot = 0;
        _paused = false;
        _inflight.Clear();
        _inflightBytes = 0;
    }
}
