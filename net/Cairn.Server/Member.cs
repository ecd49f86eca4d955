using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: whoever calls Start and StopAsync; each part below names its own thread.
/// A running member: its key space (<see cref="KvStateMachine"/>), its log (<see cref="Wal"/>) and consensus core
/// (<see cref="RaftNode"/>) driven by one raft thread, peer links to the other members, a client listener and an
/// HTTP listener for metrics and health. <see cref="Start(MemberOptions)"/> opens everything; <see cref="StopAsync"/> hands
/// leadership over and closes it. Data directory layout: docs/server.md.
/// </summary>
public sealed partial class Member : IAsyncDisposable
{
    private readonly MemberOptions _options;
    private readonly KvStateMachine _sm;
    private readonly Wal _wal;
    private readonly RaftNode _node;
    private readonly string _snapshotMetaPath;
    private readonly string _incomingDir;
    private readonly PeerTransport _peers;
    private readonly SessionHost _clients;
    private readonly RequestRouter _router;
    private readonly MetricsServer? _metrics;
    private readonly Etcd.EtcdFrontDoor? _etcd;
    private readonly Thread _raftThread;
    private readonly TaskCompletionSource _stopped = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private readonly Action<string> _log;
    internal readonly MemberCounters Stats = new();

    private Member(MemberOptions options, Identity identity, KvStateMachine sm, Wal wal, RaftNode node, string dir, MemberTls tls, byte[] peerKey, MemberListeners listeners)
    {
        _options = options;
        Tls = tls;
        PeerKey = peerKey;
        _log = options.Log ?? (line => Console.Error.WriteLine(line));
        Id = identity.MemberId;
        ClusterId = identity.ClusterId;
        Name = options.Name;
        _sm = sm;
        _wal = wal;
        _node = node;
        _snapshotMetaPath = Path.Combine(dir, "snap.meta");
        _leases = new LeaseClocks(options.Time);
        _incomingDir = Path.Combine(dir, "incoming");
        Directory.CreateDirectory(_incomingDir);
        _directory = MemberDirectory.Build(options, sm.ClusterMetadata());
        RefreshAlarms();
        _peers = new PeerTransport(this, listeners.Peer, options.MaxPeerQueue);
        _router = new RequestRouter(this);
        _clients = new SessionHost(this, listeners.Client, _stopping.Token);
        if (listeners.Metrics is { } metrics) _metrics = new MetricsServer(this, metrics);
        if (listeners.Grpc is { } grpc)
        {
            GrpcEndpoint = (IPEndPoint)grpc.LocalEndPoint!;
            _etcd = new Etcd.EtcdFrontDoor(this, grpc, new Etcd.EtcdGateway(this));
        }
        _raftThread = new Thread(RaftLoop) { Name = $"cairn raft {Name}", IsBackground = true };
        // What the core has handed out: it hands out the entries after its snapshot again (the store skips what it
        // holds). The store may be further on (a snapshot's state runs ahead of its index); compacting from the
        // store's index would ask the core for a snapshot past what it applied.
        _appliedIndex = node.SnapshotIndex;
        RefreshMembers();
    }

    /// <summary>Where etcd's gRPC API listens (null: turned off).</summary>
    public IPEndPoint? GrpcEndpoint { get; }

    /// <summary>
    /// etcd's API on this member as the member list gives it (null: turned off): HOST:PORT without a scheme. etcd
    /// lists http://HOST:PORT, but etcdctl --cluster then sends that whole URL as the HTTP/2 authority, which Kestrel
    /// (rightly) refuses; every etcd client takes a bare HOST:PORT as an endpoint.
    /// </summary>
    internal string? GrpcUrl => GrpcEndpoint?.ToString();

    /// <summary>The etcd API URL a member published (null: none, or not yet).</summary>
    internal string? GrpcUrlOf(ulong id) => id == Id ? GrpcUrl : _directory.GrpcUrl(id);

    /// <summary>This member's id (derived from its name).</summary>
    public ulong Id { get; }

    /// <summary>The cluster's id (derived from the bootstrap member list and token).</summary>
    public ulong ClusterId { get; }

    /// <summary>This member's name.</summary>
    public string Name { get; }

    /// <summary>The options it started with.</summary>
    public MemberOptions Options => _options;

    /// <summary>Whether the member stopped on a fatal error (a failed disk write, a bug) rather than because it was asked to or removed.</summary>
    public bool Failed { get; private set; }

    /// <summary>Completes when the member has stopped (asked to, or removed from the cluster).</summary>
    public Task Stopped => _stopped.Task;

    /// <summary>Where clients reach it (the bound address: useful when started on port 0).</summary>
    public IPEndPoint ClientEndpoint => _clients.Endpoint;

    /// <summary>Where peers reach it.</summary>
    public IPEndPoint PeerEndpoint => _peers.Endpoint;

    internal KvStateMachine Machine => _sm;

    /// <summary>The TLS material of the client listener and peer links (loaded at start).</summary>
    internal MemberTls Tls { get; }

    /// <summary>The key that proves membership on peer links (<see cref="PeerHandshake.Key"/>).</summary>
    internal byte[] PeerKey { get; }

    /// <summary>The open client connections (for tests: a session's user, its requests in flight).</summary>
    internal IEnumerable<ClientSession> Sessions => _clients.Sessions;

    /// <summary>Where every request frame enters (<see cref="RequestRouter"/>).</summary>
    internal RequestRouter Router => _router;

    /// <summary>The peer links (requests are forwarded to the leader on them).</summary>
    internal PeerTransport Peers => _peers;

    /// <summary>This member was removed from the cluster: it serves nothing more.</summary>
    internal bool Removed => _removed;

    /// <summary>The member is stopping: requests are refused with Stopping.</summary>
    internal bool Stopping => _stopping.IsCancellationRequested;

    internal string IncomingDir => _incomingDir;

    /// <summary>Whether <paramref name="id"/> is a voter or learner (checked by the raft thread's last published view).</summary>
    internal bool KnowsMember(ulong id) => _memberSnapshot.Any(m => m.Id == id);

    internal void OnPublished(bool ok)
    {
        if (ok) _published = true;
    }

    internal void Log(string line) => _log($"cairn {Name}: {line}");

    /// <summary>
    /// Opens the data directory and starts the member. Corrupt or foreign data refuses start with a
    /// <see cref="MemberStartException"/> that names the damaged file and what to do.
    /// </summary>
    public static Member Start(MemberOptions options) => Start(options, null);

    /// <summary>
    /// Starts the member on sockets already bound for <paramref name="options"/> (<see cref="MemberListeners.Bind"/>;
    /// null: bound here, before anything is written). The member owns them from here on, also when start fails.
    /// </summary>
    public static Member Start(MemberOptions options, MemberListeners? bound)
    {
        ArgumentNullException.ThrowIfNull(options);
        try
        {
            options.Validate();
        }
        catch
        {
            bound?.Dispose();
            throw;
        }
        // Ports first: a busy port or a foreign address refuses start before anything is written.
        var listeners = bound ?? MemberListeners.Bind(options);
        KvStateMachine? sm = null;
        Wal? wal = null;
        try
        {
            var dir = Path.Combine(options.DataDir, "member");
            Directory.CreateDirectory(dir);
            var tls = MemberTls.Load(options);
            var peerKey = PeerHandshake.Key(options.PeerSecret, options.ClusterToken);
            var identity = Identity.LoadOrCreate(dir, options, tls, peerKey);
            try
            {
                sm = KvStateMachine.Open(Path.Combine(dir, "kv.db"), new KvOptions
                {
                    QuotaBytes = options.QuotaBytes,
                    BackendCommitInterval = options.BackendBatchInterval,
                    BackendCommitEntries = options.BackendBatchLimit,
                    Storage = new StorageOptions { PageSize = 16384, MasterKey = options.MasterKey, SyncOnCommit = false, Warning = w => options.Log?.Invoke(w) },
                });
            }
            catch (DatabaseLockedException e)
            {
                throw new MemberStartException($"--data-dir {options.DataDir} is in use: {e.Message}", e);
            }
            catch (CorruptDatabaseException e)
            {
                throw new MemberStartException($"the database {Path.Combine(dir, "kv.db")} is damaged ({(e.PageNumber >= 0 ? $"page {e.PageNumber}: " : "")}{e.Detail}). " +
                    "Replace this member: `cairn member remove` it and add it back with an empty --data-dir, or restore the cluster from a snapshot (docs/operations.md).", e);
            }
            catch (Exception e) when (e is StorageException or IOException)
            {
                throw new MemberStartException($"the database {Path.Combine(dir, "kv.db")} cannot be opened: {e.Message}", e);
            }
            try
            {
                wal = Wal.Open(Path.Combine(dir, "wal"), new WalOptions { MasterKey = options.MasterKey, Sync = options.SyncLog });
            }
            catch (WalCorruptException e)
            {
                throw new MemberStartException($"the write-ahead log is damaged in {Path.Combine(dir, "wal", e.Segment)} at offset {e.Offset}: {e.Detail}. " +
                    "Replace this member: `cairn member remove` it and add it back with an empty --data-dir (it receives a snapshot; docs/operations.md).", e);
            }
            catch (Exception e) when (e is WalKeyException or IOException or InvalidDataException)
            {
                throw new MemberStartException($"the write-ahead log in {Path.Combine(dir, "wal")} cannot be read: {e.Message}", e);
            }
            (SnapshotMetadata Meta, byte[] Data)? snapshot = null;
            var metaPath = Path.Combine(dir, "snap.meta");
            if (File.Exists(metaPath))
            {
                try
                {
                    snapshot = SnapshotFile.Read(metaPath, options.MasterKey);
                }
                catch (SnapshotCorruptException e)
                {
                    throw new MemberStartException($"the snapshot record {metaPath} is damaged: {e.Message}", e);
                }
            }
            // The log's first configuration: as recorded when the data directory was made, not as today's flags say.
            var members = identity.Bootstrap?.ToList() ?? Identity.BootstrapOf(options);
            var ticks = (int)Math.Max(3, Math.Round(options.ElectionTimeout / options.HeartbeatInterval));
            var raftOptions = new RaftOptions
            {
                Id = identity.MemberId,
                Members = members.Count > 0 ? members : [identity.MemberId],
                HeartbeatTicks = 1,
                ElectionTicks = ticks,
                PreVote = true,
                CheckQuorum = true,
                Seed = unchecked((int)identity.MemberId ^ Environment.TickCount),
            };
            IReadOnlyList<LogEntry> log = wal.Entries;
            string? forced = null;
            if (options.ForceNewCluster) (log, forced) = ForceNewCluster(raftOptions, wal, snapshot, sm.AppliedIndex, name => options.Cluster.FirstOrDefault(m => MemberOptions.MemberId(m.Name) == name).Name);
            var node = new RaftNode(raftOptions, wal.HardState, log, snapshot);
            if (sm.AppliedIndex < node.SnapshotIndex)
            {
                throw new MemberStartException($"the database has applied up to index {sm.AppliedIndex} but the log was compacted to {node.SnapshotIndex}: the database file is older than the log. Restore it, or remove the member and add it back with an empty --data-dir.");
            }
            var member = new Member(options, identity, sm, wal, node, dir, tls, peerKey, listeners);
            if (forced is not null) member.Log(forced);
            member.Open();
            return member;
        }
        catch
        {
            listeners.Dispose();
            wal?.Dispose();
            sm?.Dispose();
            throw;
        }
    }

    private void Open()
    {
        _peers.Start();
        _metrics?.Start();
        _peers.SetPeers(_directory.PeerUrls(Id));
        StartScaling();
        PublishView();
        _raftThread.Start();
        _clients.Start();
        _etcd?.StartAsync().GetAwaiter().GetResult();
        if (_options.ScrubInterval > TimeSpan.Zero) _scrub = ScrubAsync();
        if (_wal.RecoveryNote is { } note) Log($"write-ahead log: {note}"); // a torn last record cut at start, as docs/server.md says
        Log($"started: member {Id:x16} of cluster {ClusterId:x16}, clients on {ClientEndpoint}{(Tls.ClientTls ? Tls.ClientCertAuth ? " (TLS, client certificates required)" : " (TLS)" : "")}, peers on {PeerEndpoint}{(Tls.PeerTls ? " (TLS)" : "")}{(GrpcEndpoint is { } g ? $", etcd API on {g}" : "")}, applied index {_sm.AppliedIndex}, revision {_sm.Revision}{(_options.MasterKey is null ? ", NOT encrypted" : ", encrypted")}");
        if (_options.PeerSecret is null) Log("no peer secret given: peer links prove only the --initial-cluster-token, which anyone who knows it can do; set --peer-secret-file (or MemberOptions.PeerSecret) or peer TLS");
    }

    /// <summary>The header for an answer now.</summary>
    internal WireHeader Header() => new(ClusterId, Id, Volatile.Read(ref _publishedRevision), _standing.Term);

    internal WireHeader Header(long revision) => new(ClusterId, Id, revision, _standing.Term);

    /// <summary>
    /// Stops: a leader first hands leadership to another voter (so the cluster does not wait an election timeout),
    /// then listeners, links and the raft thread stop, and the files close.
    /// </summary>
    public async Task StopAsync(bool handOver = true)
    {
        if (_stopping.IsCancellationRequested)
        {
            await Stopped.ConfigureAwait(false);
            return;
        }
        if (handOver && _standing.Role == Role.Leader && _standing.Voters > 1)
        {
            var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            var op = new AdminOp.HandOver(done);
            _admin.Enqueue(op);
            _wake.Set();
            await Task.WhenAny(done.Task, Task.Delay(_options.ElectionTimeout * 2)).ConfigureAwait(false);
            var to = op.Target;
            Log(done.Task.IsCompletedSuccessfully && done.Task.Result && to != 0
                ? $"handed leadership to {_directory.Get(to)?.Name ?? to.ToString("x16", null)} before stopping"
                : "could not hand leadership over before stopping; the others will elect a leader after an election timeout");
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        StopScaling();
        _wake.Set();
        _clients.Close();
        if (_etcd is not null) await _etcd.DisposeAsync().ConfigureAwait(false);
        _metrics?.Dispose();
        if (_raftThread.IsAlive) await Task.Run(() => _raftThread.Join()).ConfigureAwait(false);
        await _scrub.ConfigureAwait(false); // ends at its next pause (it was canceled with the rest)
        _peers.Dispose();
        FailAllWaiters(ErrorCode.Stopping, "the member is stopping; retry on another endpoint");
        _wal.Dispose();
        _sm.Dispose();
        Log("stopped");
        _stopped.TrySetResult();
    }

    /// <inheritdoc/>
    public async ValueTask DisposeAsync() => await StopAsync(handOver: false).ConfigureAwait(false);

    /// <summary>Figures for status, metrics and tests, published by the raft thread after each round.</summary>
    internal sealed record View(Role Role, ulong Leader, ulong Term, ulong LastIndex, ulong Commit, ulong Applied, long Revision, int Voters, bool IsLearner, bool Removed);

    /// <summary>What changes only with elections and membership: one record, replaced when any of it changes.</summary>
    private sealed record Standing(Role Role, ulong Leader, ulong Term, int Voters, bool IsLearner, bool Removed);

    // The figures that move with every batch are published in fields of their own, so a batch makes no object.
    private volatile Standing _standing = new(Role.Follower, 0, 0, 1, false, false);
    private long _publishedLastIndex, _publishedCommit, _publishedApplied, _publishedRevision;

    /// <summary>The figures now (the standing, then each counter as last published; an object per call).</summary>
    internal View Current
    {
        get
        {
            var s = _standing;
            return new View(s.Role, s.Leader, s.Term, (ulong)Volatile.Read(ref _publishedLastIndex), (ulong)Volatile.Read(ref _publishedCommit),
                (ulong)Volatile.Read(ref _publishedApplied), Volatile.Read(ref _publishedRevision), s.Voters, s.IsLearner, s.Removed);
        }
    }

    /// <summary>The leader this member knows (0: none).</summary>
    public ulong Leader => _standing.Leader;

    /// <summary>Whether this member leads.</summary>
    public bool IsLeader => _standing.Role == Role.Leader;

    /// <summary>Bytes the Raft log's arena holds (read from any thread; approximate while the raft thread appends).</summary>
    internal long RaftLogBytes => _node.LogBytes;

    /// <summary>Bytes of the storage writer's page buffers (kept and reused: growth, not garbage).</summary>
    internal long PageBufferBytes => _sm.Storage.PageBufferBytes;

    /// <summary>The last applied log index.</summary>
    public ulong AppliedIndex => (ulong)Volatile.Read(ref _publishedApplied);

    /// <summary>The member's status, as `cairn status` shows it.</summary>
    internal StatusResponse Status()
    {
        var v = Current;
        var errors = new List<string>();
        if (_sm.NoSpaceAlarm) errors.Add("NOSPACE alarm raised: writes that add data are refused; compact, defragment, then `cairn alarm disarm`");
        if (_damage is { } damage) errors.Add($"this member's database is damaged ({damage}; {_damagedPages.Count} damaged pages found): it does not lead; {ReplaceAdvice}");
        if (StaleRefusal() is { } stale) errors.Add(stale);
        foreach (var (member, detail) in _corruptAlarms)
        {
            errors.Add($"CORRUPT alarm raised by member {_directory.Get(member)?.Name ?? member.ToString("x16", null)} ({detail}): client writes are refused cluster-wide until its data is replaced and the alarm disarmed");
        }
        if (v.Leader == 0) errors.Add("no leader known");
        if (v.Removed) errors.Add("removed from the cluster");
        var db = _sm.Storage;
        return new StatusResponse(VersionText, new FileInfo(db.Path).Length, db.DataSize, v.Leader, v.LastIndex, v.Term, v.Applied, v.Commit, v.IsLearner, errors);
    }

    internal static string VersionText => typeof(Member).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";

    /// <summary>Lines of Prometheus text: the member's figures.</summary>
    internal string MetricsText()
    {
        var v = Current;
        var c = Stats;
        var ci = CultureInfo.InvariantCulture;
        var lines = new List<string>
        {
            "# TYPE cairn_server_is_leader gauge", $"cairn_server_is_leader {(v.Role == Role.Leader ? 1 : 0)}",
            "# TYPE cairn_server_has_leader gauge", $"cairn_server_has_leader {(v.Leader != 0 ? 1 : 0)}",
            "# TYPE cairn_raft_term gauge", $"cairn_raft_term {v.Term}",
            "# TYPE cairn_raft_commit_index gauge", $"cairn_raft_commit_index {v.Commit}",
            "# TYPE cairn_raft_applied_index gauge", $"cairn_raft_applied_index {v.Applied}",
            "# TYPE cairn_kv_revision gauge", $"cairn_kv_revision {v.Revision}",
            "# TYPE cairn_db_size_bytes gauge", $"cairn_db_size_bytes {new FileInfo(_sm.Storage.Path).Length}",
            "# TYPE cairn_db_size_in_use_bytes gauge", $"cairn_db_size_in_use_bytes {_sm.Storage.DataSize}",
            "# TYPE cairn_client_connections gauge", $"cairn_client_connections {_clients.Count}",
            "# TYPE cairn_proposals_pending gauge", $"cairn_proposals_pending {Volatile.Read(ref _pendingProposals)}",
            "# TYPE cairn_proposals_committed_total counter", $"cairn_proposals_committed_total {Volatile.Read(ref c.ProposalsApplied)}",
            "# TYPE cairn_proposals_refused_total counter", $"cairn_proposals_refused_total {Volatile.Read(ref c.ProposalsRefused)}",
            "# TYPE cairn_raft_batches_total counter", $"cairn_raft_batches_total {Volatile.Read(ref c.ReadyBatches)}",
            "# TYPE cairn_raft_thread_allocated_bytes_total counter", $"cairn_raft_thread_allocated_bytes_total {Volatile.Read(ref c.RaftThreadAllocatedBytes)}",
            "# TYPE cairn_raft_log_bytes gauge", $"cairn_raft_log_bytes {_node.LogBytes}",
            "# TYPE cairn_wal_fsync_seconds_total counter", $"cairn_wal_fsync_seconds_total {(Volatile.Read(ref c.WalSyncTicks) / (double)Stopwatch.Frequency).ToString("0.######", ci)}",
            "# TYPE cairn_apply_seconds_total counter", $"cairn_apply_seconds_total {(Volatile.Read(ref c.ApplyTicks) / (double)Stopwatch.Frequency).ToString("0.######", ci)}",
            "# TYPE cairn_client_requests_total counter", $"cairn_client_requests_total {Volatile.Read(ref c.Requests)}",
            "# TYPE cairn_client_errors_total counter", $"cairn_client_errors_total {Volatile.Read(ref c.Errors)}",
            "# TYPE cairn_client_connections_total counter", $"cairn_client_connections_total {Volatile.Read(ref c.ClientConnections)}",
            "# TYPE cairn_forwarded_total counter", $"cairn_forwarded_total {Volatile.Read(ref c.Forwarded)}",
            "# TYPE cairn_read_index_rounds_total counter", $"cairn_read_index_rounds_total {Volatile.Read(ref c.ReadRounds)}",
            "# TYPE cairn_snapshots_sent_total counter", $"cairn_snapshots_sent_total {Volatile.Read(ref c.SnapshotsSent)}",
            "# TYPE cairn_snapshots_installed_total counter", $"cairn_snapshots_installed_total {Volatile.Read(ref c.SnapshotsInstalled)}",
            "# TYPE cairn_peer_handshakes_refused_total counter", $"cairn_peer_handshakes_refused_total {Volatile.Read(ref c.PeerRefused)}",
            "# TYPE cairn_peer_auth_failures_total counter", $"cairn_peer_auth_failures_total {Volatile.Read(ref c.PeerAuthFailures)}",
            "# TYPE cairn_peer_tls_failures_total counter", $"cairn_peer_tls_failures_total {Volatile.Read(ref c.PeerTlsFailures)}",
            "# TYPE cairn_client_connections_refused_total counter", $"cairn_client_connections_refused_total {Volatile.Read(ref c.ConnectionsRefused)}",
            "# TYPE cairn_client_requests_refused_in_flight_total counter", $"cairn_client_requests_refused_in_flight_total {Volatile.Read(ref c.TooManyRequests)}",
            "# TYPE cairn_client_frames_too_large_total counter", $"cairn_client_frames_too_large_total {Volatile.Read(ref c.FramesTooLarge)}",
            "# TYPE cairn_client_idle_closed_total counter", $"cairn_client_idle_closed_total {Volatile.Read(ref c.IdleClosed)}",
            "# TYPE cairn_client_handshake_timeouts_total counter", $"cairn_client_handshake_timeouts_total {Volatile.Read(ref c.HandshakeTimeouts)}",
            "# TYPE cairn_client_tls_failures_total counter", $"cairn_client_tls_failures_total {Volatile.Read(ref c.TlsFailures)}",
            "# TYPE cairn_peer_messages_dropped_total counter", $"cairn_peer_messages_dropped_total {Volatile.Read(ref c.PeerDropped)}",
            "# TYPE cairn_leader_changes_total counter", $"cairn_leader_changes_total {Volatile.Read(ref c.LeaderChanges)}",
            "# TYPE cairn_auth_permission_denied_total counter", $"cairn_auth_permission_denied_total {Volatile.Read(ref c.PermissionDenied)}",
            "# TYPE cairn_auth_failures_total counter", $"cairn_auth_failures_total {Volatile.Read(ref c.AuthFailures)}",
            "# TYPE cairn_disk_full_refusals_total counter", $"cairn_disk_full_refusals_total {Volatile.Read(ref c.DiskFullRefusals)}",
            "# TYPE cairn_db_damaged_pages_total counter", $"cairn_db_damaged_pages_total {Volatile.Read(ref c.DamagedPages)}",
            "# TYPE cairn_apply_halted gauge", $"cairn_apply_halted {(_applyHalt is null ? 0 : 1)}",
            "# TYPE cairn_alarm_corrupt gauge", $"cairn_alarm_corrupt {_corruptAlarms.Length}",
            "# TYPE cairn_scrub_pages_per_second gauge", $"cairn_scrub_pages_per_second {Volatile.Read(ref _scrubRate).ToString("0.###", ci)}",
            "# TYPE cairn_scrub_pages_verified_total counter", $"cairn_scrub_pages_verified_total {Volatile.Read(ref c.ScrubPages)}",
            "# TYPE cairn_scrub_damaged_pages_total counter", $"cairn_scrub_damaged_pages_total {Volatile.Read(ref c.ScrubDamagedPages)}",
            "# TYPE cairn_scrub_passes_total counter", $"cairn_scrub_passes_total {Volatile.Read(ref c.ScrubPasses)}",
            "# TYPE cairn_scrub_last_pass_completed_timestamp_seconds gauge", $"cairn_scrub_last_pass_completed_timestamp_seconds {Volatile.Read(ref c.ScrubLastPass)}",
            "# TYPE cairn_scaling_units gauge", $"cairn_scaling_units {_units}",
            "# TYPE cairn_storage_quota_bytes gauge", $"cairn_storage_quota_bytes {QuotaBytes}",
            "# TYPE cairn_scale_events_total counter", $"cairn_scale_events_total {Volatile.Read(ref c.ScaleEvents)}",
        };
        if (_accountant?.Sample() is { } sample)
        {
            lines.Add("# TYPE cairn_memory_bytes gauge");
            foreach (var f in sample.Figures) lines.Add($"cairn_memory_bytes{{source=\"{f.Name}\"}} {f.Bytes}");
            lines.Add("# TYPE cairn_ram_in_use_bytes gauge");
            lines.Add($"cairn_ram_in_use_bytes {sample.RamBytes}");
            lines.Add("# TYPE cairn_storage_in_use_bytes gauge");
            lines.Add($"cairn_storage_in_use_bytes {sample.StorageBytes}");
        }
        return string.Join('\n', lines) + "\n";
    }
}

/// <summary>A member cannot start: its data is damaged or foreign, or it cannot listen. The message says what to do.</summary>
public sealed class MemberStartException(string message, Exception? inner = null) : Exception(message, inner);
