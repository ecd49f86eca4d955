namespace Cairn.Raft;

/// <summary>
/// A follower's replication as its leader sees it, owning its own transitions. Probe: one append at a time until the
/// follower's log is found to match, backing off on each rejection. Replicate: appends go out back to back without
/// waiting (pipelining), up to an in-flight window bounded by message count and bytes.
/// </summary>
internal sealed class Progress(ulong next, int maxInflight, long maxInflightBytes)
{
    public enum Mode
    {
        Probe,
        Replicate,
    }

    private readonly Queue<(ulong Last, long Bytes)> _inflight = new(); // Replicate: appends not yet acknowledged
    private long _inflightBytes;
    private bool _probeSent;                                             // Probe: an append is out, wait for its answer

    /// <summary>Highest index known to be in the follower's log; 0 ≤ Match &lt; Next.</summary>
    public ulong Match { get; private set; }

    /// <summary>Next index to send.</summary>
    public ulong Next { get; private set; } = next;

    public Mode State { get; private set; } = Mode.Probe;

    public int Inflight => _inflight.Count;

    /// <summary>Whether another append may go out now.</summary>
    public bool CanSend => State == Mode.Probe ? !_probeSent : _inflight.Count < maxInflight && _inflightBytes < maxInflightBytes;

    /// <summary>An append carrying entries up to <paramref name="last"/> went out.</summary>
    public void Sent(ulong last, long bytes, int entries)
    {
        if (State == Mode.Probe)
        {
            _probeSent = true;
            return;
        }
        if (entries == 0) return;
        _inflight.Enqueue((last, bytes));
        _inflightBytes += bytes;
        Next = last + 1; // optimistic: the next append follows without waiting
    }

    /// <summary>The follower's log matches up to <paramref name="index"/>.</summary>
    public void Acknowledged(ulong index)
    {
        if (index > Match) Match = index;
        if (Next <= Match) Next = Match + 1;
        while (_inflight.Count > 0 && _inflight.Peek().Last <= index) _inflightBytes -= _inflight.Dequeue().Bytes;
        if (State == Mode.Probe)
        {
            State = Mode.Replicate;
            _probeSent = false;
        }
    }

    /// <summary>The follower's log did not match; <paramref name="hint"/> is the last index it can check.</summary>
    public void Rejected(ulong hint)
    {
        State = Mode.Probe;
        _probeSent = false;
        _inflight.Clear();
        _inflightBytes = 0;
        Next = Math.Max(Match + 1, Math.Min(Next - 1, hint + 1));
    }

    /// <summary>
    /// A heartbeat answer: the follower is alive. A probe waiting for an answer that was lost may go out again, and a
    /// full window frees one slot: appends lost with a broken link are never acknowledged, and a window that stayed
    /// full would stop replication to a live follower for good. The append that goes out finds the gap, is
    /// rejected, and probing resumes (etcd raft does the same).
    /// </summary>
    public void Heard()
    {
        _probeSent = false;
        if (State == Mode.Replicate && _inflight.Count > 0 && !CanSend) _inflightBytes -= _inflight.Dequeue().Bytes;
    }
}
