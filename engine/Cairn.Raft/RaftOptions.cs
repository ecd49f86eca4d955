namespace Cairn.Raft;

/// <summary>Settings of one member; <see cref="Validate"/> refuses unsafe combinations.</summary>
public sealed record RaftOptions
{
    /// <summary>This member's id (not 0).</summary>
    public required ulong Id { get; init; }

    /// <summary>The voting members the cluster started with (a member joining later may not be among them).</summary>
    public required IReadOnlyList<ulong> Members { get; init; }

    /// <summary>The learners the cluster started with: they receive the log but do not vote.</summary>
    public IReadOnlyList<ulong> Learners { get; init; } = [];

    /// <summary>Ticks between heartbeats from the leader.</summary>
    public int HeartbeatTicks { get; init; } = 1;

    /// <summary>Base election timeout in ticks; each wait is drawn from [T, 2T).</summary>
    public int ElectionTicks { get; init; } = 10;

    /// <summary>Entries per append message at most.</summary>
    public int MaxEntriesPerMessage { get; init; } = 256;

    /// <summary>Entry bytes per append message at most (a single larger entry still goes alone).</summary>
    public long MaxBytesPerMessage { get; init; } = 1 << 20;

    /// <summary>Appends in flight to one follower at most (pipelining window).</summary>
    public int MaxInflightMessages { get; init; } = 256;

    /// <summary>Entry bytes in flight to one follower at most.</summary>
    public long MaxInflightBytes { get; init; } = 32L << 20;

    /// <summary>Bytes of proposals not yet committed at most; past it, <see cref="RaftNode.Propose"/> refuses.</summary>
    public long MaxUncommittedBytes { get; init; } = 64L << 20;

    /// <summary>Ask for pre-votes before standing, so a member cut off from the others cannot raise everyone's term when it returns.</summary>
    public bool PreVote { get; init; } = true;

    /// <summary>A leader that has not heard from a quorum for an election timeout steps down; members that heard from a leader within it ignore vote requests.</summary>
    public bool CheckQuorum { get; init; } = true;

    /// <summary>
    /// Serve <see cref="RaftNode.ReadIndex"/> from the leader's lease without a heartbeat round: until an election
    /// timeout after it sent the newest heartbeat round a quorum answered, no other leader can be elected, because
    /// members that heard it ignore vote requests for that long. Needs <see cref="CheckQuorum"/> (which makes members
    /// ignore those votes) and assumes members' clocks tick at the same rate; refused without check-quorum.
    /// </summary>
    public bool LeaseReads { get; init; }

    /// <summary>Seed of the election-timeout randomness (deterministic for a given seed).</summary>
    public int Seed { get; init; }

    /// <summary>Throws <see cref="ArgumentException"/> naming the fix.</summary>
    public void Validate()
    {
        if (Id == 0) throw new ArgumentException("Id 0 is reserved for 'none'; number members from 1.");
        if (Members.Count == 0) throw new ArgumentException("Members is empty: list the voting members the cluster started with.");
        if (Members.Contains(0UL) || Learners.Contains(0UL)) throw new ArgumentException("Member id 0 is reserved for 'none'.");
        if (Learners.Any(Members.Contains)) throw new ArgumentException("A member cannot be both a voter and a learner.");
        if (Members.Distinct().Count() != Members.Count) throw new ArgumentException("Members lists an id twice.");
        if (HeartbeatTicks < 1) throw new ArgumentException("HeartbeatTicks must be at least 1.");
        if (ElectionTicks <= HeartbeatTicks) throw new ArgumentException($"ElectionTicks ({ElectionTicks}) must exceed HeartbeatTicks ({HeartbeatTicks}), or followers time out between heartbeats.");
        if (MaxEntriesPerMessage < 1) throw new ArgumentException("MaxEntriesPerMessage must be at least 1.");
        if (MaxBytesPerMessage < 1 || MaxInflightMessages < 1 || MaxInflightBytes < MaxBytesPerMessage)
        {
            throw new ArgumentException("MaxBytesPerMessage and MaxInflightMessages must be positive, and MaxInflightBytes at least MaxBytesPerMessage.");
        }
        if (MaxUncommittedBytes < 1) throw new ArgumentException("MaxUncommittedBytes must be positive.");
        if (LeaseReads && !CheckQuorum)
        {
            throw new ArgumentException("LeaseReads needs CheckQuorum: without it a leader cut off from the others keeps believing it leads and would serve stale reads. Turn CheckQuorum on, or LeaseReads off.");
        }
    }
}
