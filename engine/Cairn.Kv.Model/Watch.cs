namespace Cairn.Kv;

/// <summary>What happened to a key.</summary>
public enum WatchEventType
{
    /// <summary>The key was put.</summary>
    Put,
    /// <summary>The key was deleted (<see cref="WatchEvent.Kv"/> holds the key and the deleting revision).</summary>
    Delete,
}

/// <summary>One change, as etcd reports it.</summary>
/// <param name="Type">Put or delete.</param>
/// <param name="Kv">The key-value after the change (for a delete: key and mod revision only).</param>
/// <param name="PrevKv">The key-value before, when the watch asked for it and it is known.</param>
public sealed record WatchEvent(WatchEventType Type, KeyValue Kv, KeyValue? PrevKv);

/// <summary>A watch on a key, a range or a prefix (same conventions as <see cref="RangeRequest"/>).</summary>
public sealed record WatchRequest
{
    /// <summary>The key (or first key of the range).</summary>
    public required byte[] Key { get; init; }

    /// <summary>End of the range, exclusive; empty for one key; a single 0 byte for every key ≥ Key.</summary>
    public byte[] RangeEnd { get; init; } = [];

    /// <summary>First revision to report (0: the next change). Past revisions are replayed from the store.</summary>
    public long StartRevision { get; init; }

    /// <summary>Include the previous key-value in each event.</summary>
    public bool PrevKv { get; init; }

    /// <summary>Leave out puts.</summary>
    public bool NoPut { get; init; }

    /// <summary>Leave out deletes.</summary>
    public bool NoDelete { get; init; }

    /// <summary>Receive progress notifications (empty responses carrying the current revision) when idle.</summary>
    public bool ProgressNotify { get; init; }

    /// <summary>Whether this watch covers <paramref name="key"/>.</summary>
    public bool Matches(ReadOnlySpan<byte> key)
    {
        if (RangeEnd.Length == 0) return key.SequenceEqual(Key);
        if (key.SequenceCompareTo(Key) < 0) return false;
        return RangeEnd is [0] || key.SequenceCompareTo(RangeEnd) < 0;
    }
}

/// <summary>A batch of events (in revision order), a progress notification (no events), or the end of the watch.</summary>
/// <param name="Header">The store's revision: every change up to it has been reported.</param>
/// <param name="Events">The events, in revision order.</param>
/// <param name="Canceled">The watch ended (see <see cref="CompactRevision"/>).</param>
/// <param name="CompactRevision">When canceled because the start revision was compacted: the compaction revision.</param>
public sealed record WatchResponse(ResponseHeader Header, IReadOnlyList<WatchEvent> Events, bool Canceled = false, long CompactRevision = 0);
