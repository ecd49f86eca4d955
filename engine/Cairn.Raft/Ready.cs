namespace Cairn.Raft;

/// <summary>
/// Work for the caller: persist <see cref="HardState"/> and <see cref="Entries"/> (in that order, synced), then send
/// <see cref="Messages"/> and apply <see cref="Committed"/>, then call <see cref="RaftNode.Advance"/>. Votes and append
/// acknowledgements are among the messages, so they leave only after what they promise is on disk.
/// <para>
/// A node reuses one Ready, and the entries in it (and in its messages) refer to the node's log memory: all of it is
/// valid until the next <see cref="RaftNode.GetReady"/>, and entry bytes until the <see cref="RaftNode.Advance"/>
/// after the log is compacted past them. A caller that keeps something longer — a message queued for a later send —
/// copies it first (<see cref="Message.Detach"/>).
/// </para>
/// </summary>
public sealed class Ready
{
    internal readonly List<LogEntry> EntryList = [];
    internal readonly List<LogEntry> CommittedList = [];
    internal List<Message> MessageList = [];
    internal List<ReadState> ReadStateList = [];

    internal Ready()
    {
    }

    /// <summary>The hard state to persist, when it changed.</summary>
    public HardState? HardState { get; internal set; }

    /// <summary>Entries to persist (an entry at an index already stored replaces it and all after it).</summary>
    public IReadOnlyList<LogEntry> Entries => EntryList;

    /// <summary>Messages to send after persisting.</summary>
    public IReadOnlyList<Message> Messages => MessageList;

    /// <summary>Committed entries to apply, in order.</summary>
    public IReadOnlyList<LogEntry> Committed => CommittedList;

    /// <summary>A snapshot from the leader: persist it (a snapshot file and the WAL's marker) and restore the state machine from it before applying <see cref="Committed"/>.</summary>
    public (SnapshotMetadata Meta, byte[] Data)? Snapshot { get; internal set; }

    /// <summary>Reads confirmed by a quorum: serve each once the state machine has applied its index.</summary>
    public IReadOnlyList<ReadState> ReadStates => ReadStateList;
}
