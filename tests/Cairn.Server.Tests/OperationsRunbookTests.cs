using System.Diagnostics;
using System.Globalization;

namespace Cairn.Server.Tests;

/// <summary>
/// docs/operations.md's disaster-recovery runbook, step by step, with real `cairn serve` processes and the `cairn`
/// commands the runbook gives: a lost quorum, a member's disk lost, a whole cluster restored from a snapshot.
/// </summary>
public sealed class OperationsRunbookTests(Xunit.Abstractions.ITestOutputHelper log) : IAsyncLifetime
{
    private readonly string _root = Directory.CreateTempSubdirectory("cairn-runbook-").FullName;
    private readonly Dictionary<string, (int Client, int Peer)> _ports = [];
    private readonly Dictionary<string, Process> _members = [];
    private readonly List<string> _output = [];

    private string Home => Directory.CreateDirectory(Path.Combine(_root, "home")).FullName;

    private string DataDir(string name) => Path.Combine(_root, name);

    private string PeerUrl(string name) => $"127.0.0.1:{_ports[name].Peer}";

    private string Endpoint(string name) => $"127.0.0.1:{_ports[name].Client}";

    private string Cluster(params string[] names) => string.Join(",", names.Select(n => $"{n}={PeerUrl(n)}"));

    private void Reserve(params string[] names)
    {
        foreach (var n in names) _ports[n] = (TestCluster.FreePort(), TestCluster.FreePort());
    }

    /// <summary>`cairn serve` for <paramref name="name"/> with the runbook's flags and <paramref name="more"/>.</summary>
    private void Serve(string name, params string[] more)
    {
        string[] args =
        [
            "serve", "--listen-grpc", "", "--name", name, "--data-dir", DataDir(name),
            "--listen-client", Endpoint(name), "--listen-peer", PeerUrl(name), "--listen-metrics", "",
            "--heartbeat-interval", "50", "--election-timeout", "500", .. more,
        ];
        var p = Process.Start(CairnProcess.StartInfo(_root, Home, args))!;
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        _members[name] = p;
    }

    private async Task KillAsync(string name)
    {
        _members[name].Kill();
        await _members[name].WaitForExitAsync();
        _members.Remove(name);
    }

    private async Task StopAsync(string name)
    {
        using (var kill = Process.Start("kill", ["-TERM", _members[name].Id.ToString(CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
        await _members[name].WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        _members.Remove(name);
    }

    /// <summary>A `cairn` command against <paramref name="at"/>; asserts it succeeded and returns its output.</summary>
    private async Task<string> CairnAsync(string at, params string[] args)
    {
        var r = await CairnProcess.RunAsync(_root, Home, ["--endpoints", Endpoint(at), "--dial-timeout", "2s", .. args]);
        Assert.True(r.Code == 0, $"cairn {string.Join(' ', args)} exited {r.Code}: {r.Err}\nmembers:\n{Output()}");
        return r.Out;
    }

    /// <summary>Waits until a write through <paramref name="at"/> succeeds (a leader is elected and reachable).</summary>
    private async Task WritableAsync(string at)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            var r = await CairnProcess.RunAsync(_root, Home, ["--endpoints", Endpoint(at), "--dial-timeout", "1s", "--command-timeout", "3s", "put", "runbook/probe", "x"]);
            if (r.Code == 0) return;
            if (deadline.Elapsed > TimeSpan.FromSeconds(40)) throw new TimeoutException($"{at} never took a write: {r.Err}\nmembers:\n{Output()}");
            await Task.Delay(200);
        }
    }

    private string Output()
    {
        lock (_output) return string.Join("\n", _output.TakeLast(40));
    }

    private async Task<string[]> MemberNamesAsync(string at) =>
        [.. (await CairnAsync(at, "member", "list")).Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split(", ")[2]).Order(StringComparer.Ordinal)];

    private async Task StartThreeAsync()
    {
        Reserve("m1", "m2", "m3");
        foreach (var n in new[] { "m1", "m2", "m3" }) Serve(n, "--initial-cluster", Cluster("m1", "m2", "m3"));
        await WritableAsync("m1");
        for (var i = 0; i < 20; i++) await CairnAsync("m1", "put", $"app/k{i:D2}", $"v{i}");
    }

    [Fact]
    public async Task Lost_quorum_the_survivor_is_forced_into_a_new_cluster_and_grown_back()
    {
        await StartThreeAsync();
        // Two machines are gone for good.
        await KillAsync("m2");
        await KillAsync("m3");
        var stuck = await CairnProcess.RunAsync(_root, Home, ["--endpoints", Endpoint("m1"), "--command-timeout", "2s", "put", "app/stuck", "x"]);
        Assert.NotEqual(0, stuck.Code);

        // Step 1-2: stop the survivor and start it once with --force-new-cluster.
        await StopAsync("m1");
        Serve("m1", "--initial-cluster", Cluster("m1", "m2", "m3"), "--force-new-cluster");
        await WritableAsync("m1");
        Assert.Equal(["m1"], await MemberNamesAsync("m1"));
        Assert.Equal("app/k19\nv19\n", await CairnAsync("m1", "get", "app/k19"));
        Assert.Equal("20\n", await CairnAsync("m1", "get", "app/", "--prefix", "--count-only"));

        // Step 3: restart it as usual (without the flag).
        await StopAsync("m1");
        Serve("m1", "--initial-cluster", Cluster("m1", "m2", "m3"));
        await WritableAsync("m1");

        // Step 4: grow back, one member at a time: a learner, started empty, then promoted.
        Reserve("m4");
        await CairnAsync("m1", "member", "add", "m4", "--peer-urls", PeerUrl("m4"), "--learner");
        Serve("m4", "--initial-cluster", Cluster("m1", "m4"), "--initial-cluster-state", "existing");
        await EventuallyAsync(async () => (await CairnProcess.RunAsync(_root, Home, ["--endpoints", Endpoint("m1"), "member", "promote", "m4"])).Code == 0, "m4 promoted");
        await CairnAsync("m1", "put", "app/after", "grown");
        Assert.Equal("app/after\ngrown\n", await CairnAsync("m4", "get", "app/after"));
        Assert.Equal(["m1", "m4"], await MemberNamesAsync("m4"));
    }

    [Fact]
    public async Task A_members_disk_lost_it_is_removed_and_a_fresh_member_added_in_its_place()
    {
        await StartThreeAsync();
        await KillAsync("m3");
        Directory.Delete(DataDir("m3"), recursive: true);

        // Step 1: remove the lost member (a quorum remains). Step 2: add its replacement under a new name.
        await CairnAsync("m1", "member", "remove", "m3");
        Reserve("m3b");
        await CairnAsync("m1", "member", "add", "m3b", "--peer-urls", PeerUrl("m3b"));
        // Step 3: start it with an empty data directory; it receives the data from the leader.
        Serve("m3b", "--initial-cluster", Cluster("m1", "m2", "m3b"), "--initial-cluster-state", "existing");
        await EventuallyAsync(async () => (await CairnProcess.RunAsync(_root, Home, ["--endpoints", Endpoint("m3b"), "get", "app/k19", "--consistency", "s"])).Out == "app/k19\nv19\n", "m3b caught up");
        Assert.Equal(["m1", "m2", "m3b"], await MemberNamesAsync("m3b"));
        // Step 4: check every member.
        Assert.DoesNotContain("unreachable", await CairnAsync("m1", "status", "-w", "table"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_whole_cluster_is_restored_from_a_snapshot_on_new_machines()
    {
        await StartThreeAsync();
        // Step 1: a snapshot, saved regularly from any member; step 2: check it.
        var backup = Path.Combine(_root, "backup.db");
        await CairnAsync("m2", "snapshot", "save", backup);
        var status = (await CairnAsync("m1", "snapshot", "status", backup)).Trim().Split(", ");
        Assert.Equal(4, status.Length);

        // The old cluster is gone.
        foreach (var n in new[] { "m1", "m2", "m3" }) await KillAsync(n);

        // Step 3: restore a data directory per new member; step 4: start them.
        Reserve("n1", "n2", "n3");
        var cluster = Cluster("n1", "n2", "n3");
        foreach (var n in new[] { "n1", "n2", "n3" })
        {
            var r = await CairnProcess.RunAsync(_root, Home, ["snapshot", "restore", backup, "--name", n, "--data-dir", DataDir(n), "--initial-cluster", cluster, "--initial-cluster-token", "restored"]);
            Assert.True(r.Code == 0, r.Err);
            Assert.Contains($"cairn serve --name {n} --data-dir {DataDir(n)} --initial-cluster {cluster} --initial-cluster-token restored", r.Out, StringComparison.Ordinal);
        }
        foreach (var n in new[] { "n1", "n2", "n3" }) Serve(n, "--initial-cluster", cluster, "--initial-cluster-token", "restored");
        await WritableAsync("n2");
        // Step 5: check it: every key, the same revision onwards, the new members only.
        Assert.Equal("20\n", await CairnAsync("n3", "get", "app/", "--prefix", "--count-only"));
        Assert.Equal(["n1", "n2", "n3"], await MemberNamesAsync("n1"));
        await CairnAsync("n1", "put", "app/new", "cluster");
        Assert.Equal("app/new\ncluster\n", await CairnAsync("n3", "get", "app/new"));
    }

    private async Task EventuallyAsync(Func<Task<bool>> condition, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!await condition())
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(40)) throw new TimeoutException($"timed out waiting until {what}; members:\n{Output()}");
            await Task.Delay(300);
        }
    }

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        lock (_output) foreach (var line in _output) log.WriteLine(line);
        foreach (var p in _members.Values)
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
