namespace Cairn.Raft;

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

/// <summary>
/// The consensus core (Raft paper §5): pure and deterministic — no file, socket, clock, thread or unseeded
/// randomness. Time enters through <see cref="Tick"/>, messages through <see cref="Step"/>, proposals through
/// <see cref="Propose"/>; the work to do leaves through <see cref="GetReady"/>.
/// </summary>
public sealed partial class RaftNode
{
    private readonly RaftOptions _options;
    private readonly Random _random;
    private readonly List<LogEntry> _log = [];            // entry i at _log[i - _snapIndex - 1]; everything ≤ _snapIndex is in the snapshot
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
    public RaftNode(RaftOptions options, HardState state = default, IReadOnlyList<LogEntry>? log = null, (SnapshotMetadata Meta, byte[] Data)? snapshot = null)
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

    private LogEntry At(ulong index) => _log[Offset(index)];

    /// <summary>Term of the entry at <paramref name="index"/>; 0 when unknown (past the end, or inside the snapshot).</summary>
    private ulong TermAt(ulong index) => index == _snapIndex ? _snapTerm : index < _snapIndex || index > LastIndex ? 0 : At(index).Term;

    private int Quorum => _voters.Count / 2 + 1;

    /// <summary>The voting members now (the latest configuration in the log, committed or not: thesis §4.1).</summary>
    public IReadOnlyCollection<ulong> Voters => _voters;

    /// <summary>The learners now.</summary>
    public IReadOnlyCollection<ulong> Learners => _learners;
}
