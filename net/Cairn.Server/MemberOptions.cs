using System.Globalization;
using System.IO.Hashing;
using System.Net;
using System.Text;
using Cairn.Crypto;

namespace Cairn.Server;

/// <summary>
/// How a member starts: its name and data directory, where it listens, the cluster it belongs to, and its limits.
/// The flag names of `cairn serve` map one to one onto these (docs/server.md).
/// </summary>
public sealed record MemberOptions
{
    /// <summary>This member's name (--name); its id is derived from it.</summary>
    public string Name { get; init; } = "default";

    /// <summary>Where its database, log and snapshot live (--data-dir).</summary>
    public string DataDir { get; init; } = "default.cairn";

    /// <summary>Client listener (--listen-client).</summary>
    public string ListenClient { get; init; } = "127.0.0.1:9379";

    /// <summary>Peer listener (--listen-peer).</summary>
    public string ListenPeer { get; init; } = "127.0.0.1:9380";

    /// <summary>etcd's v3 gRPC API (--listen-grpc; empty: none). `cairn serve` listens on etcd's 127.0.0.1:2379 unless told otherwise.</summary>
    public string? ListenGrpc { get; init; }

    /// <summary>HTTP listener for /metrics and /health (--listen-metrics; empty: none).</summary>
    public string ListenMetrics { get; init; } = "127.0.0.1:9381";

    /// <summary>The address clients are told to use (--advertise-client; default: the client listener).</summary>
    public string? AdvertiseClient { get; init; }

    /// <summary>Every member of the cluster at bootstrap, name=HOST:PORT of its peer listener (--initial-cluster); default: this member alone.</summary>
    public IReadOnlyList<(string Name, string PeerUrl)>? InitialCluster { get; init; }

    /// <summary>"new" to bootstrap a cluster; "existing" to join one after `cairn member add` (--initial-cluster-state).</summary>
    public string InitialClusterState { get; init; } = "new";

    /// <summary>Separates clusters started from the same member list (--initial-cluster-token).</summary>
    public string ClusterToken { get; init; } = "cairn-cluster";

    /// <summary>The master key that seals pages, log and snapshots; null: unencrypted.</summary>
    public IKeyProvider? MasterKey { get; init; }

    /// <summary>Leader heartbeat period (--heartbeat-interval); one Raft tick.</summary>
    public TimeSpan HeartbeatInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Followers stand for election after hearing nothing for a random time in [T, 2T) (--election-timeout).</summary>
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Storage quota; past it the NOSPACE alarm refuses writes (--quota-bytes).</summary>
    public long QuotaBytes { get; init; } = 2L << 30;

    /// <summary>
    /// Free space the leader keeps on its data directory's file system (--disk-reserve-bytes): below it, writes that
    /// add data are refused with NoSpace (nothing is proposed, so nothing is lost), and below a quarter of it every
    /// client write is, until space is freed. 0 turns the check off.
    /// </summary>
    public long DiskReserveBytes { get; init; } = 16L << 20;

    /// <summary>Largest frame accepted from a client (--max-frame-bytes).</summary>
    public int MaxFrameBytes { get; init; } = Protocol.Frame.DefaultMaxFrameBytes;

    /// <summary>Proposals waiting for the raft loop beyond which new writes are refused as busy (backpressure).</summary>
    public int MaxPendingProposals { get; init; } = 16_384;

    /// <summary>Longest a client request waits for its answer before it is told Timeout.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(7);

    /// <summary>How long an auth token is good for (--auth-token-ttl); clients with credentials authenticate again when it ends.</summary>
    public TimeSpan AuthTokenTtl { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>PBKDF2-HMAC-SHA256 iterations for new passwords (--auth-hash-iterations; OWASP's 2023 advice: 600,000).</summary>
    public int PasswordIterations { get; init; } = 600_000;

    /// <summary>
    /// How long applied batches may wait in one open storage transaction before it is committed (--backend-batch-interval,
    /// as etcd's; zero: commit every batch). Reads commit first, so they always see what is applied; the log makes the
    /// batches durable meanwhile (docs/kv.md, "The batched backend").
    /// </summary>
    public TimeSpan BackendBatchInterval { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Entries applied in one open storage transaction beyond which it is committed (--backend-batch-limit, as etcd's).</summary>
    public int BackendBatchLimit { get; init; } = 10_000;

    /// <summary>Applied entries kept in the log before it is compacted into a snapshot (--snapshot-count).</summary>
    public int SnapshotCount { get; init; } = 100_000;

    /// <summary>Raft messages queued for one peer beyond which new ones are dropped (Raft retries them) so a slow peer never blocks the others.</summary>
    public int MaxPeerQueue { get; init; } = 8_192;

    /// <summary>Sync the log on every append (the default, as etcd does). Off only for tests that do not need durability.</summary>
    public bool SyncLog { get; init; } = true;

    /// <summary>
    /// The autoscaler's settings (docs/scaling.md); null: off, and the quota is <see cref="QuotaBytes"/>. With it, the
    /// storage quota is 4 × the RAM of the unit count in force, replicated through the log.
    /// </summary>
    public Scaling.ScalingOptions? Scaling { get; init; }

    /// <summary>
    /// Whether the accountant counts process-wide memory (the managed heap, the mapped file's resident pages). Off only
    /// when several members share one process (tests), where those figures would be the same for all of them.
    /// </summary>
    public bool MeasureProcessMemory { get; init; } = true;

    /// <summary>More memory sources to count (an embedding host's own allocators).</summary>
    public IReadOnlyList<Scaling.IMemorySource> MemorySources { get; init; } = [];

    /// <summary>
    /// The member's clock: auth token expiry and login back-off, lease TTLs, request and hand-over deadlines, watch
    /// progress, client handshake and idle timeouts, the scrub's pace, the autoscaler. Tests pass a fake one and advance
    /// it. Raft's heartbeat and election ticks and socket timeouts stay on real time (docs/server.md, "Time").
    /// </summary>
    public TimeProvider Time { get; init; } = TimeProvider.System;

    /// <summary>Certificate (PEM) the client listener presents; with <see cref="ClientKeyFile"/> it turns TLS on for clients (--cert).</summary>
    public string? ClientCertFile { get; init; }

    /// <summary>Private key (PEM, unencrypted) of <see cref="ClientCertFile"/> (--key).</summary>
    public string? ClientKeyFile { get; init; }

    /// <summary>CA bundle (PEM) that signs the certificates clients present (--cacert); needed by <see cref="ClientCertAuth"/>.</summary>
    public string? ClientCaFile { get; init; }

    /// <summary>Require every client to present a certificate signed by <see cref="ClientCaFile"/>; its common name becomes the session's user (--client-cert-auth).</summary>
    public bool ClientCertAuth { get; init; }

    /// <summary>Certificate (PEM) this member presents on peer links, as server and as client (--peer-cert); with <see cref="PeerKeyFile"/> and <see cref="PeerCaFile"/> it turns TLS on for peers.</summary>
    public string? PeerCertFile { get; init; }

    /// <summary>Private key (PEM, unencrypted) of <see cref="PeerCertFile"/> (--peer-key).</summary>
    public string? PeerKeyFile { get; init; }

    /// <summary>CA bundle (PEM) that must have signed every peer's certificate (--peer-cacert).</summary>
    public string? PeerCaFile { get; init; }

    /// <summary>
    /// The cluster's peer secret: every member proves it holds it when a peer link opens (HMAC-SHA256 over fresh nonces
    /// from both sides). `cairn serve` reads it from --peer-secret-file (default ~/.cairn/peer.secret, created when
    /// absent). Null: derived from <see cref="ClusterToken"/> alone, which keeps strangers out only as well as the
    /// token is kept (a warning is logged).
    /// </summary>
    public byte[]? PeerSecret { get; init; }

    /// <summary>Client connections accepted at once; one more is answered TooManyConnections and closed (--max-connections).</summary>
    public int MaxClientConnections { get; init; } = 10_000;

    /// <summary>Requests one client connection may have in flight; one more is answered TooManyRequests (--max-requests-in-flight).</summary>
    public int MaxRequestsInFlight { get; init; } = 16_384;

    /// <summary>
    /// A client connection that sends nothing for this long, with no request in flight and no watch open, is closed
    /// with an IdleTimeout frame (--idle-timeout; zero: never).
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Longest a client may take from connecting to finishing its TLS handshake and hello, and a peer its whole link handshake (--handshake-timeout).</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// How long one pass of the background scrub takes at most (--scrub-interval): every page in use is read back from
    /// the file and checked once per interval, at the file's pages over the interval per second (at least 10), and a
    /// pass that ends early waits for the interval to end. Damage found raises the CORRUPT alarm. Zero turns it off;
    /// otherwise at least one second.
    /// </summary>
    public TimeSpan ScrubInterval { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Whether the client listener speaks TLS.</summary>
    public bool ClientTls => ClientCertFile is not null;

    /// <summary>Whether peer links speak TLS.</summary>
    public bool PeerTls => PeerCertFile is not null;

    /// <summary>
    /// Start this member's data as a one-member cluster, removing every other member from the configuration and
    /// discarding uncommitted log entries (--force-new-cluster, as etcd's): recovery from a lost quorum. Every key and
    /// revision is kept. Start once with it, then without.
    /// </summary>
    public bool ForceNewCluster { get; init; }

    /// <summary>Where diagnostics go (a line each); default: standard error.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>The member list at bootstrap (this member alone when <see cref="InitialCluster"/> is unset).</summary>
    public IReadOnlyList<(string Name, string PeerUrl)> Cluster => InitialCluster ?? [(Name, ListenPeer)];

    /// <summary>The client address this member publishes.</summary>
    public string ClientUrl => AdvertiseClient ?? ListenClient;

    /// <summary>
    /// The peer address this member publishes: its own --initial-cluster entry, the address the others dial. It may
    /// differ from --listen-peer (a wildcard listener, NAT, a proxy between the members); publishing the listener
    /// instead would send the others to 0.0.0.0 or around the proxy.
    /// </summary>
    public string PeerUrl => Cluster.FirstOrDefault(m => m.Name == Name).PeerUrl ?? ListenPeer;

    /// <summary>Refuses settings that cannot work, saying which flag to fix.</summary>
    public void Validate()
    {
        if (string.IsNullOrWhiteSpace(Name) || Name.Contains('=') || Name.Contains(',')) throw new ArgumentException($"--name '{Name}' must be non-empty without '=' or ','.", nameof(Name));
        ParseEndpoint(ListenClient, "--listen-client");
        ParseEndpoint(ListenPeer, "--listen-peer");
        if (!string.IsNullOrEmpty(ListenMetrics)) ParseEndpoint(ListenMetrics, "--listen-metrics");
        if (!string.IsNullOrEmpty(ListenGrpc)) ParseEndpoint(ListenGrpc, "--listen-grpc");
        var names = new HashSet<string>();
        foreach (var (name, url) in Cluster)
        {
            if (!names.Add(name)) throw new ArgumentException($"--initial-cluster names '{name}' twice.", nameof(InitialCluster));
            ParseEndpoint(url, $"--initial-cluster {name}");
        }
        if (!names.Contains(Name)) throw new ArgumentException($"--initial-cluster does not list this member's --name '{Name}'; add {Name}=HOST:PORT (its peer address).", nameof(InitialCluster));
        if (InitialClusterState is not ("new" or "existing")) throw new ArgumentException($"--initial-cluster-state is '{InitialClusterState}'; use 'new' or 'existing'.", nameof(InitialClusterState));
        if (HeartbeatInterval < TimeSpan.FromMilliseconds(1)) throw new ArgumentException("--heartbeat-interval must be at least 1 ms.", nameof(HeartbeatInterval));
        if (ElectionTimeout < 3 * HeartbeatInterval) throw new ArgumentException($"--election-timeout ({ElectionTimeout.TotalMilliseconds} ms) must be at least 3 × --heartbeat-interval ({HeartbeatInterval.TotalMilliseconds} ms), or followers time out between heartbeats.", nameof(ElectionTimeout));
        if (QuotaBytes < 1 << 20) throw new ArgumentException("--quota-bytes must be at least 1 MiB.", nameof(QuotaBytes));
        if (MaxFrameBytes < 64 << 10) throw new ArgumentException("--max-frame-bytes must be at least 64 KiB.", nameof(MaxFrameBytes));
        if (SnapshotCount < 1) throw new ArgumentException("--snapshot-count must be positive.", nameof(SnapshotCount));
        if (BackendBatchInterval < TimeSpan.Zero) throw new ArgumentException("--backend-batch-interval must not be negative (0 commits every batch).", nameof(BackendBatchInterval));
        if (BackendBatchLimit < 1) throw new ArgumentException("--backend-batch-limit must be at least 1.", nameof(BackendBatchLimit));
        if ((ClientCertFile is null) != (ClientKeyFile is null)) throw new ArgumentException("--cert and --key go together: give both for TLS on the client port, or neither.", nameof(ClientCertFile));
        if (ClientCertAuth && (ClientCertFile is null || ClientCaFile is null)) throw new ArgumentException("--client-cert-auth needs TLS on the client port (--cert, --key) and the CA that signs client certificates (--cacert).", nameof(ClientCertAuth));
        if (ClientCaFile is not null && ClientCertFile is null) throw new ArgumentException("--cacert without --cert and --key: client certificates are checked only over TLS; add --cert and --key (and --client-cert-auth to require them).", nameof(ClientCaFile));
        if (PeerCertFile is not null || PeerKeyFile is not null || PeerCaFile is not null)
        {
            if (PeerCertFile is null || PeerKeyFile is null || PeerCaFile is null) throw new ArgumentException("peer TLS needs all of --peer-cert, --peer-key and --peer-cacert (every member presents a certificate and checks the other's).", nameof(PeerCertFile));
        }
        if (PeerSecret is { Length: < 16 }) throw new ArgumentException("the peer secret (--peer-secret-file) must be at least 16 bytes; make one with `openssl rand -hex 32`.", nameof(PeerSecret));
        if (MaxClientConnections < 1) throw new ArgumentException("--max-connections must be at least 1.", nameof(MaxClientConnections));
        if (MaxRequestsInFlight < 1) throw new ArgumentException("--max-requests-in-flight must be at least 1.", nameof(MaxRequestsInFlight));
        if (IdleTimeout < TimeSpan.Zero) throw new ArgumentException("--idle-timeout must not be negative (0 turns it off).", nameof(IdleTimeout));
        if (HandshakeTimeout <= TimeSpan.Zero) throw new ArgumentException("--handshake-timeout must be positive.", nameof(HandshakeTimeout));
        if (ScrubInterval < TimeSpan.Zero || (ScrubInterval > TimeSpan.Zero && ScrubInterval < TimeSpan.FromSeconds(1)))
        {
            throw new ArgumentException($"--scrub-interval is {ScrubInterval.TotalSeconds} s; give 0 to turn the scrub off, or at least 1s (the default, 24h, reads every page once a day).", nameof(ScrubInterval));
        }
        Scaling?.Validate();
    }

    /// <summary>The id a member name maps to (never 0).</summary>
    public static ulong MemberId(string name)
    {
        var id = XxHash64.HashToUInt64(Encoding.UTF8.GetBytes("cairn-member/" + name));
        return id == 0 ? 1 : id;
    }

    /// <summary>The cluster id a bootstrap member list and token map to.</summary>
    public static ulong ClusterIdOf(IEnumerable<(string Name, string PeerUrl)> members, string token)
    {
        var text = token + "|" + string.Join(",", members.Select(m => $"{m.Name}={m.PeerUrl}").Order(StringComparer.Ordinal));
        var id = XxHash64.HashToUInt64(Encoding.UTF8.GetBytes(text));
        return id == 0 ? 1 : id;
    }

    /// <summary>Parses HOST:PORT (HOST an IP address or "localhost"), naming the flag on error.</summary>
    public static IPEndPoint ParseEndpoint(string text, string flag)
    {
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port > 65535)
        {
            throw new ArgumentException($"{flag} '{text}' is not HOST:PORT (e.g. 127.0.0.1:9379).");
        }
        var host = text[..colon].Trim('[', ']');
        if (host == "localhost") return new IPEndPoint(IPAddress.Loopback, port);
        if (!IPAddress.TryParse(host, out var ip)) throw new ArgumentException($"{flag} '{text}': '{host}' is not an IP address (use 127.0.0.1, 0.0.0.0 or localhost).");
        return new IPEndPoint(ip, port);
    }

    /// <summary>Parses name=HOST:PORT,name=HOST:PORT.</summary>
    public static IReadOnlyList<(string Name, string PeerUrl)> ParseCluster(string text)
    {
        var list = new List<(string, string)>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=');
            if (eq <= 0 || eq == part.Length - 1) throw new ArgumentException($"--initial-cluster entry '{part}' is not name=HOST:PORT.");
            list.Add((part[..eq], part[(eq + 1)..]));
        }
        if (list.Count == 0) throw new ArgumentException("--initial-cluster is empty; list name=HOST:PORT for every member.");
        return list;
    }
}
