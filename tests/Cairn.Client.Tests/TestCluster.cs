using System.Net;
using System.Net.Sockets;
using Cairn.Server;

namespace Cairn.Client.Tests;

/// <summary>Real members started in this process on loopback, with short timings, each in its own data directory.</summary>
public sealed class TestCluster : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "cairn-client-tests", Guid.NewGuid().ToString("N"));
    private readonly List<(string Name, string PeerUrl)> _cluster = [];
    private readonly Dictionary<string, int> _clientPorts = [];
    public Dictionary<string, Member?> Members { get; } = [];
    public List<string> Log { get; } = [];
    private Func<MemberOptions, MemberOptions> _customize = o => o;

    private TestCluster(int size)
    {
        for (var i = 1; i <= size; i++)
        {
            var name = $"m{i}";
            _clientPorts[name] = FreePort();
            _cluster.Add((name, $"127.0.0.1:{FreePort()}"));
        }
    }

    /// <summary>Starts <paramref name="size"/> members and waits until every one knows the leader.</summary>
    public static async Task<TestCluster> StartAsync(int size, Func<MemberOptions, MemberOptions>? customize = null)
    {
        var c = new TestCluster(size) { _customize = customize ?? (o => o) };
        try
        {
            foreach (var (name, _) in c._cluster) c.Members[name] = Member.Start(c.Options(name));
            await c.LeaderAsync();
            return c;
        }
        catch
        {
            await c.DisposeAsync();
            throw;
        }
    }

    public static int FreePort() => Cairn.Tests.TestPorts.Next();

    /// <summary>
    /// A port nothing listens on, held (bound, not listening) until disposed so no one else takes it meanwhile:
    /// connecting to it is refused at once.
    /// </summary>
    public static (Socket Holder, int Port) ClosedPort()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        s.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return (s, ((IPEndPoint)s.LocalEndPoint!).Port);
    }

    private MemberOptions Options(string name) => _customize(new()
    {
        Name = name,
        DataDir = Path.Combine(_root, name),
        ListenClient = Endpoint(name),
        ListenPeer = _cluster.First(m => m.Name == name).PeerUrl,
        ListenMetrics = "",
        InitialCluster = _cluster,
        HeartbeatInterval = TimeSpan.FromMilliseconds(20),
        ElectionTimeout = TimeSpan.FromMilliseconds(400),
        RequestTimeout = TimeSpan.FromSeconds(3),
        SyncLog = false,
        Log = line => { lock (Log) Log.Add(line); },
    });

    public string Endpoint(string name) => $"127.0.0.1:{_clientPorts[name]}";

    public IReadOnlyList<string> Names => [.. _cluster.Select(m => m.Name)];

    public IReadOnlyList<string> AllEndpoints => [.. Names.Select(Endpoint)];

    public IEnumerable<Member> Running => Members.Values.OfType<Member>();

    public string NameOf(Member m) => Members.First(kv => kv.Value == m).Key;

    /// <summary>A client of the given members (all of them by default), with timings to match the members'.</summary>
    public CairnClient Client(IReadOnlyList<string>? endpoints = null, bool discover = false, TimeSpan? requestTimeout = null, CairnCredentials? credentials = null, string? token = null) => new(new CairnClientOptions
    {
        Credentials = credentials,
        Token = token,
        Endpoints = endpoints ?? AllEndpoints,
        DiscoverEndpoints = discover,
        ConnectTimeout = TimeSpan.FromSeconds(1),
        RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(8),
    });

    /// <summary>Waits until one running member leads and every running member knows it.</summary>
    public async Task<Member> LeaderAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < deadline)
        {
            var leaders = Running.Where(m => m.IsLeader).ToList();
            if (leaders.Count == 1 && Running.All(m => m.Leader == leaders[0].Id)) return leaders[0];
            await Task.Delay(10);
        }
        throw new TimeoutException($"no leader within the timeout; log:\n{string.Join("\n", Log.TakeLast(40))}");
    }

    /// <summary>Starts a stopped member again on its data directory.</summary>
    public Member Restart(string name) => (Members[name] = Member.Start(Options(name)))!;

    /// <summary>A member's database file.</summary>
    public string DbPath(string name) => Path.Combine(_root, name, "member", "kv.db");

    public async Task StopAsync(string name, bool handOver = true)
    {
        if (Members.GetValueOrDefault(name) is { } m) await m.StopAsync(handOver);
        Members[name] = null;
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
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>One member shared by the tests of a class.</summary>
public sealed class SingleMember : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public string Endpoint => Cluster.Endpoint("m1");

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(1);

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}
