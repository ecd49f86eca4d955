using System.CommandLine;
using System.Runtime.InteropServices;
using Cairn.Crypto;
using Cairn.Server;

namespace Cairn.Cli;

/// <summary>`cairn serve` (one member) and `cairn dev-cluster` (three members on loopback, for trying things).</summary>
internal static class Serve
{
    /// <summary>The flags of `cairn serve` that take a value (the --config file's keys are these names without "--").</summary>
    private static readonly (string Name, string Help, string? Value)[] Valued =
    [
        ("--name", "This member's name (default 'default'); its id derives from it.", "NAME"),
        ("--data-dir", "Where its database, log and snapshots live (default ./default.cairn).", "DIR"),
        ("--listen-client", "Client address (default 127.0.0.1:9379).", "HOST:PORT"),
        ("--listen-peer", "Peer address (default 127.0.0.1:9380).", "HOST:PORT"),
        ("--listen-metrics", "Metrics and health over HTTP (default 127.0.0.1:9381; empty: off).", "HOST:PORT"),
        ("--listen-grpc", "etcd's v3 gRPC API, for etcdctl and etcd client libraries (default 127.0.0.1:2379, etcd's port; empty: off).", "HOST:PORT"),
        ("--advertise-client", "The client address published to others (default --listen-client).", "HOST:PORT"),
        ("--initial-cluster", "Every member at bootstrap (default: this member alone).", "NAME=HOST:PORT,..."),
        ("--initial-cluster-state", "'new' to bootstrap, 'existing' to join after `cairn member add`.", "new|existing"),
        ("--initial-cluster-token", "Separates clusters started from the same member list.", "TOKEN"),
        ("--key-file", "The master key (64 hex digits; default ~/.cairn/master.key, created with mode 0600 when absent and the data directory is new).", "FILE"),
        ("--heartbeat-interval", "Leader heartbeat period in milliseconds (default 100).", "MS"),
        ("--election-timeout", "Election timeout in milliseconds (default 1000).", "MS"),
        ("--quota-bytes", "A fixed storage quota; turns the autoscaler off.", "N"),
        ("--snapshot-count", "Applied entries kept in the log before it is compacted (default 100000, as etcd's).", "N"),
        ("--max-frame-bytes", "Largest client frame accepted.", "N"),
        ("--backend-batch-interval", "Longest applied writes wait in one storage transaction before it is committed (default 100ms; 0: every batch).", "DURATION"),
        ("--backend-batch-limit", "Entries applied in one storage transaction before it is committed (default 10000).", "N"),
        ("--unit-ram-bytes", "RAM of one unit (storage is 4x; default 256 MiB).", "N"),
        ("--initial-units", "Units at start.", "N"),
        ("--max-units", "The autoscaler's ceiling.", "N"),
        ("--scaling-interval", "Seconds between the autoscaler's checks (default 60).", "SECONDS"),
        ("--auth-token-ttl", "Seconds an auth token is good for (default 600).", "SECONDS"),
        ("--auth-hash-iterations", "PBKDF2 iterations for new passwords (default 600000).", "N"),
        ("--disk-reserve-bytes", "Free disk the leader keeps; below it writes are refused with NoSpace (default 16 MiB; 0: off).", "N"),
        ("--cert", "Certificate (PEM) of the client port; with --key turns TLS on.", "FILE"),
        ("--key", "Private key (PEM) of --cert.", "FILE"),
        ("--cacert", "CA (PEM) that signs client certificates.", "FILE"),
        ("--peer-cert", "Certificate (PEM) for peer links.", "FILE"),
        ("--peer-key", "Private key (PEM) of --peer-cert.", "FILE"),
        ("--peer-cacert", "CA (PEM) that signs every member's certificate.", "FILE"),
        ("--peer-secret-file", "The cluster's peer secret (default ~/.cairn/peer.secret, created when absent: copy it to every member).", "FILE"),
        ("--max-connections", "Client connections at once.", "N"),
        ("--max-requests-in-flight", "Requests one client connection may have in flight.", "N"),
        ("--idle-timeout", "Close idle client connections after this long (e.g. 5m; 0: never).", "DURATION"),
        ("--handshake-timeout", "Longest a TLS handshake and hello may take (e.g. 10s).", "DURATION"),
        ("--scrub-interval", "Read back and check every page of the database once per this long, in the background (default 24h; 0: off).", "DURATION"),
    ];

    /// <summary>The switches of `cairn serve`.</summary>
    private static readonly (string Name, string Help)[] Switches =
    [
        ("--plain", "Store the data unencrypted (no master key)."),
        ("--client-cert-auth", "Require client certificates signed by --cacert; the certificate's common name is the user."),
        ("--allow-insecure-key-file", "Accept a --key-file that group or others may read (refused by default, as ssh refuses such a private key)."),
        ("--force-new-cluster", "Start this member's data as a one-member cluster (every other member removed, every key kept): recovery from a lost quorum. Start once with it."),
    ];

    /// <summary>`cairn serve`: one member.</summary>
    public static Command ServeCommand(CliIo io)
    {
        var command = new Command("serve", """
            Run one member. With no flags: a single-member cluster named 'default' in ./default.cairn, clients on
            127.0.0.1:9379, peers on 127.0.0.1:9380, metrics and health on http://127.0.0.1:9381, encrypted with
            ~/.cairn/master.key. Resources come in units of RAM with 4x storage; the autoscaler adds units and never
            removes them (--quota-bytes sets a fixed quota instead). SIGTERM or Ctrl+C stops it gracefully.
            """);
        foreach (var (name, help, value) in Valued)
        {
            var aliases = EtcdSpellings.Aliases.Where(a => a.Value == name).Select(a => a.Key).ToArray();
            command.Options.Add(new Option<string?>(name, aliases) { Description = help, HelpName = value });
        }
        foreach (var (name, help) in Switches) command.Options.Add(new Option<bool>(name) { Description = help });
        var config = new Option<string?>("--config") { Description = "Read settings from FILE, a 'flag value' line each (e.g. \"name m1\"); flags given here win.", HelpName = "FILE" };
        command.Options.Add(config);
        command.SetAction(p =>
        {
            ParseResult? fromFile = null;
            if (p.GetValue(config) is { } path) fromFile = ConfigFile.Parse(path, command, p.RootCommandResult.Command);
            return Run(new Flags(p, fromFile), io);
        });
        return command;
    }

    /// <summary>`cairn dev-cluster`: three members in this process.</summary>
    public static Command DevClusterCommand(CliIo io)
    {
        var command = new Command("dev-cluster", """
            Three members in this process, named m1..m3, clients on 127.0.0.1:9379, 9479, 9579 (peers 9380, 9480,
            9580; metrics 9381, 9481, 9581), data in DIR (default ./dev-cluster). For trying things.
            """);
        command.Options.Add(new Option<string?>("--dir") { Description = "Where the three members keep their data (default ./dev-cluster).", HelpName = "DIR" });
        command.Options.Add(new Option<string?>("--key-file") { Description = "The master key (default ~/.cairn/master.key).", HelpName = "FILE" });
        command.Options.Add(new Option<bool>("--plain") { Description = "Store the data unencrypted." });
        command.Options.Add(new Option<bool>("--allow-insecure-key-file") { Description = "Accept a --key-file that group or others may read." });
        command.Options.Add(new Option<string?>("--peer-secret-file") { Description = "The peer secret (default ~/.cairn/peer.secret).", HelpName = "FILE" });
        command.SetAction(p => DevCluster(new Flags(p), io));
        return command;
    }

    private static int Run(Flags flags, CliIo io)
    {
        RaiseThreadFloor();
        var options = Options(flags);
        options.Validate();
        // Ports first, then the key files: a busy port refuses start before anything is written.
        var listeners = MemberListeners.Bind(options);
        Member member;
        try
        {
            options = options with { MasterKey = Key(flags, options.DataDir), PeerSecret = PeerSecret(flags) };
            member = Member.Start(options, listeners);
        }
        catch
        {
            listeners.Dispose();
            throw;
        }
        return WaitForSignal([member]);
    }

    private static int DevCluster(Flags flags, CliIo io)
    {
        RaiseThreadFloor();
        var dir = flags.Get("--dir") ?? "dev-cluster";
        var names = new[] { "m1", "m2", "m3" };
        var key = Key(flags, Path.Combine(dir, names[0]));
        var secret = PeerSecret(flags);
        var cluster = names.Select((n, i) => (n, $"127.0.0.1:{9380 + 100 * i}")).ToList();
        var members = new List<Member>();
        try
        {
            for (var i = 0; i < names.Length; i++)
            {
                members.Add(Member.Start(new MemberOptions
                {
                    Name = names[i],
                    DataDir = Path.Combine(dir, names[i]),
                    ListenClient = $"127.0.0.1:{9379 + 100 * i}",
                    ListenPeer = $"127.0.0.1:{9380 + 100 * i}",
                    ListenMetrics = $"127.0.0.1:{9381 + 100 * i}",
                    ListenGrpc = $"127.0.0.1:{(i == 0 ? 2379 : 2379 + 10000 * (i + 1))}", // etcd's local cluster ports: 2379, 22379, 32379
                    InitialCluster = cluster,
                    ClusterToken = "cairn-dev-cluster",
                    MasterKey = key,
                    PeerSecret = secret,
                    Scaling = new Scaling.ScalingOptions(),
                }));
            }
        }
        catch
        {
            foreach (var m in members) m.DisposeAsync().AsTask().GetAwaiter().GetResult();
            throw;
        }
        io.Out.WriteLine($"cairn dev-cluster: three members in {Path.GetFullPath(dir)}; try");
        io.Out.WriteLine("  cairn --endpoints 127.0.0.1:9379,127.0.0.1:9479,127.0.0.1:9579 status -w table");
        return WaitForSignal(members);
    }

    /// <summary>
    /// The thread pool starts with one thread per core (two here) and adds more slowly; a member's sockets must never
    /// wait behind a briefly blocked thread, or heartbeats arrive late and elections start.
    /// </summary>
    private static void RaiseThreadFloor()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 16), Math.Max(io, 16));
    }

    private static int WaitForSignal(List<Member> members)
    {
        using var stop = new CancellationTokenSource();
        void OnSignal(PosixSignalContext ctx)
        {
            ctx.Cancel = true;
            stop.Cancel();
        }
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
        var anyStopped = Task.WhenAny(members.Select(m => m.Stopped));
        Task.WaitAny([anyStopped, Task.Delay(Timeout.Infinite, stop.Token).ContinueWith(_ => { }, TaskScheduler.Default)]);
        foreach (var m in members) m.StopAsync(handOver: true).GetAwaiter().GetResult();
        // A member that stopped on a fatal error (its disk failed, say) exits 1, so a supervisor can tell it from a clean stop.
        return members.Any(m => m.Failed) ? 1 : 0;
    }

    /// <summary>
    /// The master key of --key-file (default ~/.cairn/master.key). A missing key file is created only for a data
    /// directory that holds no data yet: for one that does, a new key could never open it (a typo in --key-file would
    /// leave a fresh key behind and a member that refuses its own data), so start is refused naming both.
    /// </summary>
    internal static KeyFileProvider? Key(Flags flags, string dataDir)
    {
        if (flags.Has("--plain")) return null;
        var given = flags.Get("--key-file");
        var path = given ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cairn", "master.key");
        if (!File.Exists(path) && HoldsData(dataDir))
        {
            throw new UsageException($"the key file {path} does not exist, but {Path.GetFullPath(dataDir)} holds data sealed with another key; " +
                $"pass the --key-file it was created with{(given is null ? "" : " (check the path for a typo)")}, or --plain if it is not encrypted");
        }
        return KeyFileProvider.OpenOrCreate(path, flags.Has("--allow-insecure-key-file"));
    }

    /// <summary>Whether a member's data directory already holds a database or a log.</summary>
    internal static bool HoldsData(string dataDir)
    {
        var member = Path.Combine(dataDir, "member");
        return File.Exists(Path.Combine(member, "kv.db")) || (Directory.Exists(Path.Combine(member, "wal")) && Directory.EnumerateFileSystemEntries(Path.Combine(member, "wal")).Any());
    }

    /// <summary>The peer secret from --peer-secret-file, or from ~/.cairn/peer.secret (created when absent).</summary>
    private static byte[] PeerSecret(Flags flags) =>
        flags.Get("--peer-secret-file") is { } path ? PeerSecretFile.Load(path) : PeerSecretFile.LoadOrCreate(PeerSecretFile.DefaultPath);

    private static Scaling.ScalingOptions ScalingFrom(Flags f)
    {
        var d = new Scaling.ScalingOptions();
        return new Scaling.ScalingOptions
        {
            UnitRamBytes = f.Get("--unit-ram-bytes") is { } u ? Flags.Long("--unit-ram-bytes", u) : d.UnitRamBytes,
            InitialUnits = f.Get("--initial-units") is { } i ? (int)Flags.Long("--initial-units", i) : d.InitialUnits,
            MaxUnits = f.Get("--max-units") is { } m ? (int)Flags.Long("--max-units", m) : d.MaxUnits,
            Interval = f.Get("--scaling-interval") is { } s ? TimeSpan.FromSeconds(Flags.Long("--scaling-interval", s)) : d.Interval,
        };
    }

    /// <summary>etcd's client port: etcd's clients and etcdctl find Cairn where they look for etcd.</summary>
    internal const string DefaultGrpc = "127.0.0.1:2379";

    private static MemberOptions Options(Flags f)
    {
        var d = new MemberOptions();
        var name = f.Get("--name") ?? d.Name;
        var listenPeer = f.Get("--listen-peer") ?? d.ListenPeer;
        return new MemberOptions
        {
            Name = name,
            DataDir = f.Get("--data-dir") ?? d.DataDir,
            ListenClient = f.Get("--listen-client") ?? d.ListenClient,
            ListenPeer = listenPeer,
            ListenMetrics = f.Get("--listen-metrics") ?? d.ListenMetrics,
            ListenGrpc = f.Get("--listen-grpc") ?? DefaultGrpc,
            AdvertiseClient = f.Get("--advertise-client"),
            InitialCluster = f.Get("--initial-cluster") is { } c ? MemberOptions.ParseCluster(c) : null,
            InitialClusterState = f.Get("--initial-cluster-state") ?? d.InitialClusterState,
            ClusterToken = f.Get("--initial-cluster-token") ?? d.ClusterToken,
            HeartbeatInterval = f.Get("--heartbeat-interval") is { } hb ? TimeSpan.FromMilliseconds(Flags.Long("--heartbeat-interval", hb)) : d.HeartbeatInterval,
            ElectionTimeout = f.Get("--election-timeout") is { } et ? TimeSpan.FromMilliseconds(Flags.Long("--election-timeout", et)) : d.ElectionTimeout,
            QuotaBytes = f.Get("--quota-bytes") is { } q ? Flags.Long("--quota-bytes", q) : d.QuotaBytes,
            // Units by default; a fixed --quota-bytes turns the autoscaler off.
            Scaling = f.Has("--quota-bytes") ? null : ScalingFrom(f),
            SnapshotCount = f.Get("--snapshot-count") is { } sc ? (int)Flags.Long("--snapshot-count", sc) : d.SnapshotCount,
            MaxFrameBytes = f.Get("--max-frame-bytes") is { } mf ? (int)Flags.Long("--max-frame-bytes", mf) : d.MaxFrameBytes,
            BackendBatchInterval = f.Get("--backend-batch-interval") is { } bi ? Flags.Duration("--backend-batch-interval", bi) : d.BackendBatchInterval,
            BackendBatchLimit = f.Get("--backend-batch-limit") is { } bl ? (int)Math.Clamp(Flags.Long("--backend-batch-limit", bl), 0, int.MaxValue) : d.BackendBatchLimit,
            DiskReserveBytes = f.Get("--disk-reserve-bytes") is { } dr ? Flags.Long("--disk-reserve-bytes", dr) : d.DiskReserveBytes,
            AuthTokenTtl = f.Get("--auth-token-ttl") is { } ttl ? TimeSpan.FromSeconds(Positive("--auth-token-ttl", Flags.Long("--auth-token-ttl", ttl))) : d.AuthTokenTtl,
            PasswordIterations = f.Get("--auth-hash-iterations") is { } hi ? (int)Math.Min(int.MaxValue, Positive("--auth-hash-iterations", Flags.Long("--auth-hash-iterations", hi))) : d.PasswordIterations,
            ClientCertFile = f.Get("--cert"),
            ClientKeyFile = f.Get("--key"),
            ClientCaFile = f.Get("--cacert"),
            ClientCertAuth = f.Has("--client-cert-auth"),
            ForceNewCluster = f.Has("--force-new-cluster"),
            PeerCertFile = f.Get("--peer-cert"),
            PeerKeyFile = f.Get("--peer-key"),
            PeerCaFile = f.Get("--peer-cacert"),
            MaxClientConnections = f.Get("--max-connections") is { } mc ? (int)Flags.Long("--max-connections", mc) : d.MaxClientConnections,
            MaxRequestsInFlight = f.Get("--max-requests-in-flight") is { } mr ? (int)Flags.Long("--max-requests-in-flight", mr) : d.MaxRequestsInFlight,
            IdleTimeout = f.Get("--idle-timeout") is { } it ? Flags.Duration("--idle-timeout", it) : d.IdleTimeout,
            HandshakeTimeout = f.Get("--handshake-timeout") is { } ht ? Flags.Duration("--handshake-timeout", ht) : d.HandshakeTimeout,
            ScrubInterval = f.Get("--scrub-interval") is { } si ? Flags.Duration("--scrub-interval", si) : d.ScrubInterval,
        };
    }

    private static long Positive(string flag, long v) => v > 0 ? v : throw new UsageException($"{flag} must be at least 1 (got {v}).");
}
