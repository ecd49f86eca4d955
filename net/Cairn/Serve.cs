using System.Globalization;
using System.Runtime.InteropServices;
using Cairn.Crypto;
using Cairn.Server;

namespace Cairn.Cli;

/// <summary>`cairn serve` (one member) and `cairn dev-cluster` (three members on loopback, for trying things).</summary>
internal static class Serve
{
    public const string Usage = """
        cairn serve [--name NAME] [--data-dir DIR] [--listen-client HOST:PORT] [--listen-peer HOST:PORT]
                    [--listen-metrics HOST:PORT] [--advertise-client HOST:PORT]
                    [--initial-cluster NAME=HOST:PORT,...] [--initial-cluster-state new|existing]
                    [--initial-cluster-token TOKEN] [--key-file FILE | --plain]
                    [--heartbeat-interval MS] [--election-timeout MS] [--quota-bytes N]
                    [--snapshot-count N] [--max-frame-bytes N] [--config FILE]
                    [--unit-ram-bytes N] [--initial-units N] [--max-units N] [--scaling-interval SECONDS]
                    [--auth-token-ttl SECONDS] [--auth-hash-iterations N] [--disk-reserve-bytes N]
                    [--cert FILE --key FILE [--cacert FILE --client-cert-auth]]
                    [--peer-cert FILE --peer-key FILE --peer-cacert FILE] [--peer-secret-file FILE]
                    [--max-connections N] [--max-requests-in-flight N] [--idle-timeout 5m] [--handshake-timeout 10s]
            Runs one member. With no flags: a single-member cluster named 'default' in ./default.cairn,
            clients on 127.0.0.1:9379, peers on 127.0.0.1:9380, metrics and health on http://127.0.0.1:9381,
            encrypted with ~/.cairn/master.key (created with mode 0600 when absent).
            Resources come in units of RAM with 4x storage (256 MiB + 1 GiB by default); the autoscaler adds units
            when memory or storage runs short and never removes them (docs/scaling.md); --quota-bytes N sets a fixed
            quota instead and turns it off.
            TLS (docs/server.md): --cert/--key turn it on for clients (--client-cert-auth requires client certificates
            signed by --cacert; the certificate's common name is the user); --peer-cert/--peer-key/--peer-cacert for
            peer links. Peers always prove the cluster's secret, read from --peer-secret-file (default
            ~/.cairn/peer.secret, created when absent: copy it to every member). `cairn certs` makes test certificates.
            --config FILE reads the same settings as 'flag value' lines (e.g. "name m1"); flags override it.
            SIGTERM or Ctrl+C stops it gracefully (a leader hands leadership over first).
        cairn dev-cluster [--dir DIR] [--key-file FILE | --plain] [--peer-secret-file FILE]
            Three members in this process, named m1..m3, clients on 127.0.0.1:9379, 9479, 9579
            (peers 9380, 9480, 9580; metrics 9381, 9481, 9581), data in DIR (default ./dev-cluster).
        """;

    public static int Run(string[] args)
    {
        RaiseThreadFloor();
        var flags = Flags.Parse(args, 1);
        if (flags.Get("--config") is { } config) flags = Flags.FromConfigFile(config).Overlay(flags);
        var options = Options(flags);
        var member = Member.Start(options);
        return WaitForSignal([member]);
    }

    public static int DevCluster(string[] args)
    {
        RaiseThreadFloor();
        var flags = Flags.Parse(args, 1);
        var dir = flags.Get("--dir") ?? "dev-cluster";
        var key = Key(flags);
        var secret = PeerSecret(flags);
        var names = new[] { "m1", "m2", "m3" };
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
        Console.WriteLine($"cairn dev-cluster: three members in {Path.GetFullPath(dir)}; try");
        Console.WriteLine("  cairn --endpoints 127.0.0.1:9379,127.0.0.1:9479,127.0.0.1:9579 status -w table");
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

    private static KeyFileProvider? Key(Flags flags)
    {
        if (flags.Has("--plain")) return null;
        var path = flags.Get("--key-file") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cairn", "master.key");
        return KeyFileProvider.OpenOrCreate(path);
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
            AdvertiseClient = f.Get("--advertise-client"),
            InitialCluster = f.Get("--initial-cluster") is { } c ? MemberOptions.ParseCluster(c) : null,
            InitialClusterState = f.Get("--initial-cluster-state") ?? d.InitialClusterState,
            ClusterToken = f.Get("--initial-cluster-token") ?? d.ClusterToken,
            MasterKey = Key(f),
            HeartbeatInterval = f.Get("--heartbeat-interval") is { } hb ? TimeSpan.FromMilliseconds(Flags.Long("--heartbeat-interval", hb)) : d.HeartbeatInterval,
            ElectionTimeout = f.Get("--election-timeout") is { } et ? TimeSpan.FromMilliseconds(Flags.Long("--election-timeout", et)) : d.ElectionTimeout,
            QuotaBytes = f.Get("--quota-bytes") is { } q ? Flags.Long("--quota-bytes", q) : d.QuotaBytes,
            // Units by default; a fixed --quota-bytes turns the autoscaler off.
            Scaling = f.Has("--quota-bytes") ? null : ScalingFrom(f),
            SnapshotCount = f.Get("--snapshot-count") is { } sc ? (int)Flags.Long("--snapshot-count", sc) : d.SnapshotCount,
            MaxFrameBytes = f.Get("--max-frame-bytes") is { } mf ? (int)Flags.Long("--max-frame-bytes", mf) : d.MaxFrameBytes,
            DiskReserveBytes = f.Get("--disk-reserve-bytes") is { } dr ? Flags.Long("--disk-reserve-bytes", dr) : d.DiskReserveBytes,
            AuthTokenTtl = f.Get("--auth-token-ttl") is { } ttl ? TimeSpan.FromSeconds(Positive("--auth-token-ttl", Flags.Long("--auth-token-ttl", ttl))) : d.AuthTokenTtl,
            PasswordIterations = f.Get("--auth-hash-iterations") is { } hi ? (int)Math.Min(int.MaxValue, Positive("--auth-hash-iterations", Flags.Long("--auth-hash-iterations", hi))) : d.PasswordIterations,
            ClientCertFile = f.Get("--cert"),
            ClientKeyFile = f.Get("--key"),
            ClientCaFile = f.Get("--cacert"),
            ClientCertAuth = f.Has("--client-cert-auth"),
            PeerCertFile = f.Get("--peer-cert"),
            PeerKeyFile = f.Get("--peer-key"),
            PeerCaFile = f.Get("--peer-cacert"),
            PeerSecret = PeerSecret(f),
            MaxClientConnections = f.Get("--max-connections") is { } mc ? (int)Flags.Long("--max-connections", mc) : d.MaxClientConnections,
            MaxRequestsInFlight = f.Get("--max-requests-in-flight") is { } mr ? (int)Flags.Long("--max-requests-in-flight", mr) : d.MaxRequestsInFlight,
            IdleTimeout = f.Get("--idle-timeout") is { } it ? Flags.Duration("--idle-timeout", it) : d.IdleTimeout,
            HandshakeTimeout = f.Get("--handshake-timeout") is { } ht ? Flags.Duration("--handshake-timeout", ht) : d.HandshakeTimeout,
        };
    }

    private static long Positive(string flag, long v) => v > 0 ? v : throw new ArgumentException($"{flag} must be at least 1 (got {v}).");
}

/// <summary>Command-line flags: "--flag value" pairs and bare switches.</summary>
internal sealed class Flags
{
    private static readonly HashSet<string> Switches = ["--plain", "--prefix", "--keys-only", "--prev-kv", "--learner", "--count-only", "--interactive", "--keys", "--json", "--physical", "--once", "--compressed", "--cluster", "--no-password", "--from-key", "--client-cert-auth"];
    private readonly Dictionary<string, string?> _values;

    private Flags(Dictionary<string, string?> values, List<string> positional)
    {
        _values = values;
        Positional = positional;
    }

    /// <summary>Arguments that are not flags, in order.</summary>
    public List<string> Positional { get; }

    public static Flags Parse(string[] args, int from)
    {
        var values = new Dictionary<string, string?>();
        var positional = new List<string>();
        for (var i = from; i < args.Length; i++)
        {
            var a = args[i];
            if (a.StartsWith("--", StringComparison.Ordinal) && a.Length > 2 || a == "-w")
            {
                var eq = a.IndexOf('=');
                if (eq > 0)
                {
                    values[a[..eq]] = a[(eq + 1)..];
                }
                else if (Switches.Contains(a))
                {
                    values[a] = null;
                }
                else
                {
                    if (i + 1 >= args.Length) throw new ArgumentException($"{a} needs a value.");
                    values[a] = args[++i];
                }
            }
            else
            {
                positional.Add(a);
            }
        }
        return new Flags(values, positional);
    }

    public static Flags FromConfigFile(string path)
    {
        var values = new Dictionary<string, string?>();
        foreach (var raw in File.ReadAllLines(path))
        {
            var line = raw.Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var sp = line.IndexOfAny([' ', '\t', ':', '=']);
            var key = "--" + (sp < 0 ? line : line[..sp]).Trim().TrimStart('-');
            values[key] = sp < 0 ? null : line[(sp + 1)..].Trim().Trim('"');
        }
        return new Flags(values, []);
    }

    public Flags Overlay(Flags other)
    {
        var merged = new Dictionary<string, string?>(_values);
        foreach (var (k, v) in other._values) merged[k] = v;
        return new Flags(merged, other.Positional);
    }

    public string? Get(string name) => _values.TryGetValue(name, out var v) ? v : null;

    public bool Has(string name) => _values.ContainsKey(name);

    /// <summary>A duration such as 500ms, 30s or 5m (a bare number is seconds); 0 is allowed (it turns a timeout off where that means anything).</summary>
    public static TimeSpan Duration(string name, string text)
    {
        var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : (text, 1.0);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0) throw new ArgumentException($"{name} '{text}' is not a duration such as 500ms, 30s or 5m.");
        return TimeSpan.FromSeconds(v * scale);
    }

    public static long Long(string name, string text) =>
        long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new ArgumentException($"{name} '{text}' is not a whole number.");
}
