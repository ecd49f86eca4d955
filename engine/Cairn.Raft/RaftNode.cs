namespace Cairn.Raft;

/// <summary>Kinds of Raft messages.</summary>
public enum MessageType
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
public sealed record Message(MessageType Type, ulong From, ulong To, ulong Term, ulong LogTerm = 0, ulong Index = 0,
    IReadOnlyList<Entry>? Entries = null, ulong Commit = 0, bool Reject = false, ulong Context = 0,
    SnapshotMetadata? Snapshot = null, byte[]? SnapshotData = null)
{
    /// <summary>The same message with entries whose bytes are its own (a node's messages refer to its log's memory; see <see cref="Ready"/>).</summary>
    public Message Detach() => Entries is not { Count: > 0 } entries ? this : this with { Entries = entries.Select(e => e.Detach()).ToList() };
}

/// <summary>A linearizable read may be served once the state machine has applied <paramref name="Index"/>.</summary>
/// <param name="Index">The commit index when the read was asked, confirmed by a quorum to still be the leader's.</param>
/// <param name="Context">The caller's tag for the read.</param>
public sealed record ReadState(ulong Index, byte[] Context);

/// <summary>A member's role.</summary>
public enum Role
{
    /// <summary>Follows a leader (or waits for one).</summary>
    Follower,
    /// <summary>Asks whether it could win before standing (pre-vote).</summary>
    PreCandidate,
    /// <summary>Stands for election.</summary>
    Candidate,
    /// <summary>Leads its term.</summary>
    Leader,
}

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
    internal readonly List<Entry> EntryList = [];
    internal readonly List<Entry> CommittedList = [];
    internal List<Message> MessageList = [];
    internal List<ReadState> ReadStateList = [];

    internal Ready()
    {
    }

    /// <summary>The hard state to persist, when it changed.</summary>
    public HardState? HardState { get; internal set; }

    /// <summary>Entries to persist (an entry at an index already stored replaces it and all after it).</summary>
    public IReadOnlyList<Entry> Entries => EntryList;

    /// <summary>Messages to send after persisting.</summary>
    public IReadOnlyList<Message> Messages => MessageList;

    /// <summary>Committed entries to apply, in order.</summary>
    public IReadOnlyList<Entry> Committed => CommittedList;

    /// <summary>A snapshot from the leader: persist it (a snapshot file and the WAL's marker) and restore the state machine from it before applying <see cref="Committed"/>.</summary>
    public (SnapshotMetadata Meta, byte[] Data)? Snapshot { get; internal set; }

    /// <summary>Reads confirmed by a quorum: serve each once the state machine has applied its index.</summary>
    public IReadOnlyList<ReadState> ReadStates => ReadStateList;
}

/// <summary>
/// The consensus core (Raft paper §5): pure and deterministic — no file, socket, clock, thread or unseeded
/// randomness. Time enters through <see cref="Tick"/>, messages through <see cref="Step"/>, proposals through
/// <see cref="Propose"/>; the work to do leaves through <see cref="GetReady"/>.
/// </summary>
public sealed partial class RaftNode
{
    private readonly RaftOptions _options;
    private readonly Random _random;
    private readonly List<Entry> _log = [];            // entry i at _log[i - _snapIndex - 1]; everything ≤ _snapIndex is in the snapshot
    private readonly EntryArena _arena = new();        // the bytes of the entries this node appended
    private readonly Ready _ready = new();             // handed out by every GetReady
    private ulong _snapIndex;                          // the snapshot covers the log up to here (0: no snapshot); _snapIndex ≤ _applied
    private ulong _snapTerm;
    private SnapshotMetadata? _snapMeta;
    private byte[]? _snapData;
    private (SnapshotMetadata Meta, byte[] Data)? _toInstall; // received from the leader, for the caller to install
    private List<Message> _outbox = [];
    private readonly HashSet<ulong> _votes = [];
    private readonly Dictionary<ulong, Progress> _progress = []; // leader: each follower's replication
    private readonly HashSet<ulong> _voters = [];            // the configuration: the options', then every config entry in the log
    private readonly HashSet<ulong> _learners = [];
    private readonly HashSet<ulong> _recentActive = [];     // leader: followers heard from since the last quorum check
    private readonly List<(ulong Round, ulong Index, byte[] Context)> _pendingReads = []; // leader: reads awaiting a quorum round
    private readonly List<(ulong Index, byte[] Context)> _postponedReads = [];           // leader: reads awaiting its first commit
    private readonly Dictionary<ulong, ulong> _readAcked = [];                          // leader: highest read round each follower answered
    private List<ReadState> _readStates = [];
    private ulong _readRound;
    private ulong _transferee;         // leader: the member leadership is being handed to (0: none)
    private int _transferElapsed;      // leader: ticks since the hand-over began; it is abandoned after an election timeout
    private const ulong ForcedElection = 1; // Context of vote requests from a hand-over: voters in a leader lease still answer
    private bool _roundOpen;           // a round's heartbeats are still in the outbox: new reads join it
    private long _ticks;               // leader: ticks so far (the lease clock)
    private readonly Dictionary<ulong, long> _roundSentAt = []; // leader: tick each heartbeat round went out
    private long _leaseUntil;          // leader: lease reads are served before this tick
    private ulong _stable;             // entries ≤ this are persisted
    private ulong _applied;            // entries ≤ this were handed out to apply; applied ≤ commit
    private HardState _persisted;      // the hard state last handed out
    private int _electionElapsed;
    private int _heartbeatElapsed;
    private int _timeout;              // this wait's randomized election timeout, in [T, 2T)

    /// <summary>Starts (or restarts) a member from its persisted hard state, snapshot and the log after it.</summary>
    public RaftNode(RaftOptions options, HardState state = default, IReadOnlyList<Entry>? log = null, (SnapshotMetadata Meta, byte[] Data)? snapshot = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        // Deterministic across processes (HashCode.Combine is randomized per process): same seed, same timeouts.
        _random = new Random(unchecked((int)((ulong)options.Seed * 0x9E3779B97F4A7C15UL ^ options.Id * 0xC2B2AE3D27D4EB4FUL)));
        Term = state.Term;
        Vote = state.Vote;
        if (snapshot is { } snap)
        {
            _snapIndex = snap.Meta.Index;
            _snapTerm = snap.Meta.Term;
            _snapMeta = snap.Meta;
            _snapData = snap.Data;
        }
        if (log is not null)
        {
            foreach (var e in log)
            {
                if (e.Index <= _snapIndex) continue; // already in the snapshot
                if (e.Index != LastIndex + 1) throw new ArgumentException($"The log has a gap or disorder at entry {e.Index}.", nameof(log));
                _log.Add(e);
            }
        }
        _stable = LastIndex;
        RebuildConfig();
        Commit = Math.Max(_snapIndex, Math.Min(state.Commit, LastIndex));
        _applied = _snapIndex; // the state machine restored the snapshot; entries after it are handed out again
        _persisted = new HardState(Term, Vote, Commit);
        BecomeFollower(Term, 0);
    }

    /// <summary>This member.</summary>
    public ulong Id => _options.Id;

    /// <summary>Current term.</summary>
    public ulong Term { get; private set; }

    /// <summary>Who this member voted for in <see cref="Term"/> (0: nobody).</summary>
    public ulong Vote { get; private set; }

    /// <summary>Highest index known committed.</summary>
    public ulong Commit { get; private set; }

    /// <summary>Current role.</summary>
    public Role Role { get; private set; }

    /// <summary>The leader this member knows of in <see cref="Term"/> (0: none).</summary>
    public ulong Leader { get; private set; }

    /// <summary>
    /// Whether this member stands for election when its timer runs out or a leader hands over to it (default true).
    /// A member that should not lead — its state machine's storage is damaged — turns it off: it still votes and
    /// replicates, so the others keep their quorum. Off does not depose it when it leads: hand leadership over with
    /// <see cref="TransferLeadership"/>.
    /// </summary>
    public bool Campaigns { get; set; } = true;

    /// <summary>The member this leader is handing leadership to (0: none).</summary>
    public ulong Transferee => _transferee;

    /// <summary>Index of the last entry.</summary>
    public ulong LastIndex => _snapIndex + (ulong)_log.Count;

    /// <summary>Bytes the in-memory log's arena holds for entry data (in use, and spare slabs kept for reuse).</summary>
    public long LogBytes => _arena.BytesHeld;

    /// <summary>Index of the last snapshot (the log starts after it).</summary>
    public ulong SnapshotIndex => _snapIndex;

    /// <summary>What the last snapshot covers (null: none yet).</summary>
    public SnapshotMetadata? SnapshotMetadata => _snapMeta;

    private ulong LastTerm => _log.Count == 0 ? _snapTerm : _log[^1].Term;

    private int Offset(ulong index) => (int)(index - _snapIndex - 1);

    private Entry At(ulong index) => _log[Offset(index)];

    /// <summary>Term of the entry at <paramref name="index"/>; 0 when unknown (past the end, or inside the snapshot).</summary>
    private ulong TermAt(ulong index) => index == _snapIndex ? _snapTerm : index < _snapIndex || index > LastIndex ? 0 : At(index).Term;

    private int Quorum => _voters.Count / 2 + 1;

    /// <summary>The voting members now (the latest configuration in the log, committed or not: thesis §4.1).</summary>
    public IReadOnlyCollection<ulong> Voters => _voters;

    /// <summary>The learners now.</summary>
    public IReadOnlyCollection<ulong> Learners => _learners;
}

/// <summary>A proposal was refused: the leader holds too many uncommitted bytes. Retry once the cluster catches up.</summary>
public sealed class ProposalRefusedException(string message) : Exception(message);
