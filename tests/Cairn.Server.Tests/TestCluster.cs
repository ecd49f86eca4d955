using System.Net;
using System.Net.Sockets;
using Cairn.Crypto;

namespace Cairn.Server.Tests;

/// <summary>Members started in this process on loopback with short timings, each in its own data directory.</summary>
internal sealed class TestCluster : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "cairn-server-tests", Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, (int Client, int Peer)> _ports = [];
    private readonly List<(string Name, string PeerUrl)> _cluster = [];
    private readonly IKeyProvider? _key;
    private readonly int _snapshotCount;
    private readonly string _token;
    public readonly Dictionary<string, Member?> Members = [];
    public readonly List<string> Log = [];

    public TestCluster(int size, bool encrypted = false, int snapshotCount = 10_000, string token = "test")
    {
        _key = encrypted ? StaticKeyProvider.CreateRandom("test key") : null;
        _snapshotCount = snapshotCount;
        _token = token;
        for (var i = 1; i <= size; i++) Reserve($"m{i}");
        foreach (var name in _ports.Keys.ToList()) _cluster.Add((name, $"127.0.0.1:{_ports[name].Peer}"));
    }

    public string Root => _root;

    public IReadOnlyList<(string Name, string PeerUrl)> Cluster => _cluster;

    public void Reserve(string name) => _ports[name] = (FreePort(), FreePort());

    public string PeerUrl(string name) => $"127.0.0.1:{_ports[name].Peer}";

    public IPEndPoint ClientEndpoint(string name) => new(IPAddress.Loopback, _ports[name].Client);

    public static int FreePort() => Cairn.Tests.TestPorts.Next();

    /// <summary>Changes the options of the members started from now on (scaling, memory sources, clock).</summary>
    public Func<string, MemberOptions, MemberOptions> Customize { get; set; } = (_, o) => o;

    public MemberOptions Options(string name, IReadOnlyList<(string, string)>? cluster = null, string state = "new", string? token = null) => Customize(name, new()
    {
        Name = name,
        DataDir = Path.Combine(_root, name),
        ListenClient = $"127.0.0.1:{_ports[name].Client}",
        ListenPeer = $"127.0.0.1:{_ports[name].Peer}",
        ListenMetrics = "",
        InitialCluster = cluster ?? _cluster,
        InitialClusterState = state,
        ClusterToken = token ?? _token,
        MasterKey = _key,
        HeartbeatInterval = TimeSpan.FromMilliseconds(50),
        ElectionTimeout = TimeSpan.FromMilliseconds(500),
        RequestTimeout = TimeSpan.FromSeconds(5),
        SnapshotCount = _snapshotCount,
        MeasureProcessMemory = false,     // members share this process: its heap is nobody's in particular
        Log = line => { lock (Log) Log.Add(line); },
    });

    public Member Start(string name, IReadOnlyList<(string, string)>? cluster = null, string state = "new", string? token = null)
    {
        var m = Member.Start(Options(name, cluster, state, token));
        Members[name] = m;
        return m;
    }

    public async Task StartAllAsync()
    {
        foreach (var (name, _) in _cluster) Start(name);
        await LeaderAsync();
    }

    public async Task StopAsync(string name, bool handOver = false)
    {
        if (Members.GetValueOrDefault(name) is { } m) await m.StopAsync(handOver);
        Members[name] = null;
    }

    public IEnumerable<Member> Running => Members.Values.OfType<Member>();

    /// <summary>Waits until one running member leads and every running member knows it.</summary>
    public async Task<Member> LeaderAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < deadline)
        {
            var leaders = Running.Where(m => m.IsLeader).ToList();
            if (leaders.Count == 1 && Running.All(m => m.Leader == leaders[0].Id)) return leaders[0];
            await Task.Delay(20);
        }
        throw new TimeoutException($"no leader within the timeout; log:\n{string.Join("\n", Log.TakeLast(40))}");
    }

    public string NameOf(Member m) => Members.First(kv => kv.Value == m).Key;

    public static async Task EventuallyAsync(Func<bool> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    public static async Task EventuallyAsync(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"timed out waiting until {what}");
            await Task.Delay(20);
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var m in Running.ToList()) await m.DisposeAsync();
        if (Environment.GetEnvironmentVariable("CAIRN_TEST_LOGS") is { } logs)
        {
            Directory.CreateDirectory(logs);
            lock (Log) File.WriteAllLines(Path.Combine(logs, Path.GetFileName(_root) + ".log"), Log);
        }
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
