using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>Members as separate `cairn serve` processes, killed with SIGKILL: what an operator's cluster goes through.</summary>
public sealed class ProcessTests(Xunit.Abstractions.ITestOutputHelper log) : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "cairn-process-tests", Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, (int Client, int Peer, int Metrics)> _ports = [];
    private readonly Dictionary<string, Process> _processes = [];
    private readonly List<string> _output = [];

    private string Cluster => string.Join(",", _ports.Select(p => $"{p.Key}=127.0.0.1:{p.Value.Peer}"));

    private IPEndPoint Client(string name) => new(IPAddress.Loopback, _ports[name].Client);

    private void Start(string name)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "cairn.dll");
        var (client, peer, metrics) = _ports[name];
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[]
        {
            dll, "serve", "--listen-grpc", "", "--name", name, "--data-dir", Path.Combine(_root, name),
            "--listen-client", $"127.0.0.1:{client}", "--listen-peer", $"127.0.0.1:{peer}", "--listen-metrics", $"127.0.0.1:{metrics}",
            "--initial-cluster", Cluster, "--key-file", Path.Combine(_root, "master.key"),
            "--heartbeat-interval", "50", "--election-timeout", "500", "--snapshot-count", "50",
        }) psi.ArgumentList.Add(a);
        var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        _processes[name] = p;
    }

    private async Task<(ulong Leader, StatusResponse Status)?> StatusAsync(string name)
    {
        try
        {
            await using var c = await TestClient.ConnectAsync(Client(name));
            var p = TestClient.Ok(await c.CallAsync(MessageType.Status, _ => { }, TimeSpan.FromSeconds(2)), MessageType.Status);
            var r = new PayloadReader(p);
            Messages.ReadHeader(ref r);
            var s = Messages.ReadStatus(ref r);
            return (s.Leader, s);
        }
        catch (Exception e) when (e is SocketException or IOException or TimeoutException or ServerError)
        {
            return null;
        }
    }

    private async Task<string> LeaderAsync(IEnumerable<string> among)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (DateTime.UtcNow < deadline)
        {
            var seen = new List<ulong>();
            foreach (var n in among) seen.Add((await StatusAsync(n))?.Leader ?? 0);
            // Agreed on by every member asked, and one of them (followers may still name a leader that was just killed).
            if (seen[0] != 0 && seen.All(s => s == seen[0]) && among.FirstOrDefault(n => MemberOptions.MemberId(n) == seen[0]) is { } leader) return leader;
            await Task.Delay(100);
        }
        throw new TimeoutException("no leader agreed on; output:\n" + string.Join("\n", _output.TakeLast(40)));
    }

    private async Task<string> MetricsAsync(string name)
    {
        using var http = new HttpClient();
        return await http.GetStringAsync(new Uri($"http://127.0.0.1:{_ports[name].Metrics}/metrics"));
    }

    [Fact]
    public async Task Kill_9_of_the_leader_under_steady_writes_loses_no_acknowledged_write_and_the_old_leader_catches_up()
    {
        foreach (var n in new[] { "m1", "m2", "m3" }) _ports[n] = (TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort());
        foreach (var n in _ports.Keys) Start(n);
        var leader = await LeaderAsync(_ports.Keys);
        var followers = _ports.Keys.Where(n => n != leader).ToArray();

        var acknowledged = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        var unknown = 0;
        using var stop = new CancellationTokenSource();
        async Task Writer(int id)
        {
            var i = 0;
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await using var c = await TestClient.ConnectAsync(Client(followers[id % 2]));
                    for (; !stop.IsCancellationRequested; i++)
                    {
                        try
                        {
                            await c.PutAsync($"w{id}/{i:D6}", $"{i}");
                            acknowledged[$"w{id}/{i:D6}"] = $"{i}";
                        }
                        catch (ServerError e) when (e.Code is ErrorCode.Timeout)
                        {
                            Interlocked.Increment(ref unknown);   // outcome unknown: not counted as acknowledged
                        }
                    }
                }
                catch (Exception e) when (e is SocketException or IOException or TimeoutException)
                {
                    await Task.Delay(50);
                }
            }
        }
        var writers = Enumerable.Range(0, 4).Select(Writer).ToList();
        await TestCluster.EventuallyAsync(() => acknowledged.Count > 200, "writes flow", TimeSpan.FromSeconds(30));

        _processes[leader].Kill();                                   // SIGKILL: no hand-over, no flush
        await _processes[leader].WaitForExitAsync();
        var killedAt = DateTime.UtcNow;
        var next = await LeaderAsync(followers);
        var electedIn = DateTime.UtcNow - killedAt;
        Assert.NotEqual(leader, next);
        Assert.True(electedIn < TimeSpan.FromSeconds(10), $"a new leader took {electedIn.TotalSeconds:0.0} s");
        var before = acknowledged.Count;
        await TestCluster.EventuallyAsync(() => acknowledged.Count > before + 300, "writes flow under the new leader", TimeSpan.FromSeconds(30));

        Start(leader);                                               // the log moved on past several compactions (--snapshot-count 50)
        await LeaderAsync(_ports.Keys);
        var after = acknowledged.Count;
        await TestCluster.EventuallyAsync(() => acknowledged.Count > after + 200, "writes flow with all three", TimeSpan.FromSeconds(30));
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        // Every member holds every acknowledged write, including the one that was killed.
        foreach (var name in _ports.Keys)
        {
            Assert.False(_processes[name].HasExited, $"{name} exited (code {(_processes[name].HasExited ? _processes[name].ExitCode : 0)}); its output is below");
            await using var c = await TestClient.ConnectAsync(Client(name));
            var all = await c.RangeAsync(new RangeRequest { Key = [(byte)'w'], RangeEnd = RangeRequest.Prefix([(byte)'w']) });
            var stored = all.Kvs.ToDictionary(kv => System.Text.Encoding.UTF8.GetString(kv.Key), kv => System.Text.Encoding.UTF8.GetString(kv.Value));
            var missing = acknowledged.Where(kv => stored.GetValueOrDefault(kv.Key) != kv.Value).Select(kv => kv.Key).Take(5).ToList();
            Assert.True(missing.Count == 0, $"{name} lacks acknowledged writes {string.Join(", ", missing)}");
        }
        var metrics = await MetricsAsync(leader);
        var installed = metrics.Split('\n').First(l => l.StartsWith("cairn_snapshots_installed_total ", StringComparison.Ordinal));
        Assert.NotEqual("cairn_snapshots_installed_total 0", installed);
    }

    [Fact]
    public async Task SIGTERM_stops_a_leader_gracefully_after_it_hands_leadership_over()
    {
        foreach (var n in new[] { "m1", "m2", "m3" }) _ports[n] = (TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort());
        foreach (var n in _ports.Keys) Start(n);
        var leader = await LeaderAsync(_ports.Keys);
        await using (var c = await TestClient.ConnectAsync(Client(leader))) await c.PutAsync("before", "1");
        using (var kill = Process.Start("kill", ["-TERM", _processes[leader].Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
        await _processes[leader].WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        _processes[leader].WaitForExit();                       // also waits until its output has been read to the end
        Assert.Equal(0, _processes[leader].ExitCode);
        lock (_output) Assert.True(_output.Any(l => l.Contains($"cairn {leader}: handed leadership to", StringComparison.Ordinal)), string.Join("\n", _output));
        var others = _ports.Keys.Where(n => n != leader).ToArray();
        var next = await LeaderAsync(others);
        await using var after = await TestClient.ConnectAsync(Client(next));
        Assert.Equal("1", await after.GetAsync("before"));
        await after.PutAsync("after", "2");
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        // The members' output goes with the test's (the runner shows it when the test fails).
        lock (_output) foreach (var line in _output) log.WriteLine(line);
        if (Environment.GetEnvironmentVariable("CAIRN_TEST_LOGS") is { } logs)
        {
            Directory.CreateDirectory(logs);
            lock (_output) File.WriteAllLines(Path.Combine(logs, "process-" + Path.GetFileName(_root) + ".log"), _output);
        }
        foreach (var p in _processes.Values)
        {
            if (!p.HasExited)
            {
                p.Kill();
                await p.WaitForExitAsync();
            }
            p.Dispose();
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
