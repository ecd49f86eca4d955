namespace Cairn.Raft;

/// <summary>Kinds of Raft messages.</summary>
public enum RaftMessageType
{
    /// <summary>A candidate asks for a vote (Raft §5.2).</summary>
    Vote,
    /// <summary>The answer to a vote request.</summary>
    VoteResponse,
    /// <summary>The leader replicates entries, or sends a heartbeat when it has none (§5.3).</summary>
    Append,
    /// <summary>The answer to an append.</summary>
    AppendResponse,
    /// <summary>Would you vote for me in the next term? Asked before a real election, changing no one's term (thesis §9.6).</summary>
    PreVote,
    /// <summary>The answer to a pre-vote (carrying the proposed term when granted).</summary>
    PreVoteResponse,
    /// <summary>From a leader handing over: stand for election now (thesis §3.10).</summary>
    TimeoutNow,
    /// <summary>The leader's snapshot, for a follower whose next entry was compacted away.</summary>
    Snapshot,
    /// <summary>The leader is alive; carries the commit index the follower can use, and a read round.</summary>
    Heartbeat,
    /// <summary>The answer to a heartbeat.</summary>
    HeartbeatResponse,
}

/// <summary>One message between members. <see cref="Index"/> and <see cref="LogTerm"/> mean: for a vote, the candidate's last
/// entry; for an append, the entry before <see cref="Entries"/>; for an append response, the last index matched (or, when
/// rejected, the follower's hint).</summary>
/// <param name="Type">The kind.</param>
/// <param name="From">Sender.</param>
/// <param name="To">Recipient.</param>
/// <param name="Term">Sender's term.</param>
/// <param name="LogTerm">Term of the entry at <paramref name="Index"/>.</param>
/// <param name="Index">See above.</param>
/// <param name="Entries">Entries to append.</param>
/// <param name="Commit">Leader's commit index.</param>
/// <param name="Reject">Vote refused, or append did not match.</param>
/// <param name="Context">A leader's read round (ReadIndex), echoed by the append response.</param>
/// <param name="Snapshot">For a snapshot message: what it covers.</param>
/// <param name="SnapshotData">For a snapshot message: the state machine's bytes.</param>
public sealed record Message(RaftMessageType Type, ulong From, ulong To, ulong Term, ulong LogTerm = 0, ulong Index = 0,
    IReadOnlyList<LogEntry>? Entries = null, ulong Commit = 0, bool Reject = false, ulong Context = 0,
    SnapshotMetadata? Snapshot = null, byte[]? SnapshotData = null)
{
    /// <summary>The same message with entries whose bytes are its own (a node's messages refer to its log's memory; see <see cref="Ready"/>).</summary>
    public Message Detach() => Entries is not { Count: > 0 } entries ? this : this with { Entries = entries.Select(e => e.Detach()).ToList() };
}

/// <summary>A linearizable read may be served once the state machine has applied <paramref name="Index"/>.</summary>
/// <param name="Index">The commit index when the read was asked, confirmed by a quorum to still be the leader's.</param>
/// <param name="Context">The caller's tag for the read.</param>
public sealed record ReadState(ulong Index, byte[] Context);
