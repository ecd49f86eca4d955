using System.Diagnostics;
using System.Text;

namespace Cairn.Server.Tests;

/// <summary>
/// etcdctl 3.4 (Debian's etcd-client, which scripts/setup-test.sh installs) against Cairn's etcd API: every verb an
/// operator reaches for, with its output and exit code as etcdctl prints them against etcd.
/// </summary>
public sealed class EtcdctlTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(1);
    private Member _member = null!;

    public async Task InitializeAsync()
    {
        _cluster.Customize = (_, o) => o with { ListenGrpc = "127.0.0.1:0" };
        await _cluster.StartAllAsync();
        _member = _cluster.Running.Single();
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    internal sealed record Result(int Exit, string Out, string Err)
    {
        public string[] Lines => Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    internal static async Task<Result> RunAsync(Member m, string? stdin, params string[] args)
    {
        var psi = new ProcessStartInfo("etcdctl")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = stdin is not null, UseShellExecute = false,
        };
        psi.Environment["ETCDCTL_API"] = "3";
        psi.ArgumentList.Add($"--endpoints={m.GrpcEndpoint}");
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException("etcdctl is not installed: run scripts/setup-test.sh (Debian's etcd-client)", e);
        }
        using (p)
        {
            if (stdin is not null)
            {
                await p.StandardInput.WriteAsync(stdin);
                p.StandardInput.Close();
            }
            var output = p.StandardOutput.ReadToEndAsync();
            var error = p.StandardError.ReadToEndAsync();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
            await p.WaitForExitAsync(timeout.Token);
            return new Result(p.ExitCode, await output, await error);
        }
    }

    private Task<Result> Etcdctl(params string[] args) => RunAsync(_member, null, args);

    private async Task<Result> Ok(params string[] args)
    {
        var r = await Etcdctl(args);
        Assert.True(r.Exit == 0, $"etcdctl {string.Join(' ', args)} exited {r.Exit}: {r.Err}");
        return r;
    }

    [Fact]
    public async Task Keys_put_get_delete_and_transactions()
    {
        Assert.Equal("OK", (await Ok("put", "a", "1")).Out.Trim());
        await Ok("put", "b", "2");
        await Ok("put", "c", "3");
        await Ok("put", "a", "4");
        Assert.Equal(["a", "4"], (await Ok("get", "a")).Lines);
        Assert.Equal(["a", "b", "c"], (await Ok("get", "", "--prefix", "--keys-only")).Lines);
        Assert.Equal(["b", "2", "c", "3"], (await Ok("get", "b", "--from-key")).Lines);
        Assert.Equal(["a", "4"], (await Ok("get", "", "--prefix", "--limit", "1")).Lines);
        Assert.Equal(["b", "c", "a"], (await Ok("get", "", "--prefix", "--keys-only", "--sort-by", "VALUE", "--order", "ASCEND")).Lines);
        Assert.Equal(["c", "b", "a"], (await Ok("get", "", "--prefix", "--keys-only", "--sort-by", "KEY", "--order", "DESCEND")).Lines);
        Assert.Equal(["a", "1"], (await Ok("get", "a", "--rev", "1")).Lines);
        Assert.Contains("\"count\":3", (await Ok("get", "", "--prefix", "-w", "json")).Out, StringComparison.Ordinal);
        Assert.Equal("1", (await Ok("del", "b")).Out.Trim());
        Assert.Equal("0", (await Ok("del", "b")).Out.Trim());
        var txn = await RunAsync(_member, "value(\"a\") = \"4\"\n\nput a swapped\n\nput a not-swapped\n\n", "txn", "-i");
        Assert.Equal(0, txn.Exit);
        Assert.Contains("SUCCESS", txn.Out, StringComparison.Ordinal);
        Assert.Equal(["swapped"], (await Ok("get", "a", "--print-value-only")).Lines);
        var refused = await Etcdctl("get", "a", "--rev", "1000");
        Assert.NotEqual(0, refused.Exit);
        Assert.Contains("etcdserver: mvcc: required revision is a future revision", refused.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Leases_compaction_defragmentation_and_maintenance()
    {
        var grant = (await Ok("lease", "grant", "60")).Out;
        var id = grant.Split(' ')[1];
        Assert.Contains("granted with TTL(60s)", grant, StringComparison.Ordinal);
        await Ok("put", "leased", "v", "--lease", id);
        Assert.Contains("attached keys([leased])", (await Ok("lease", "timetolive", id, "--keys")).Out, StringComparison.Ordinal);
        Assert.Contains(id, (await Ok("lease", "list")).Out, StringComparison.Ordinal);
        Assert.Contains($"lease {id} keepalived with TTL(60)", (await Ok("lease", "keep-alive", "--once", id)).Out, StringComparison.Ordinal);
        Assert.Contains($"lease {id} revoked", (await Ok("lease", "revoke", id)).Out, StringComparison.Ordinal);
        Assert.Contains("already expired", (await Ok("lease", "timetolive", id)).Out, StringComparison.Ordinal);
        Assert.Empty((await Ok("get", "leased")).Lines);

        await Ok("put", "k", "1");
        var rev = long.Parse(System.Text.RegularExpressions.Regex.Match((await Ok("get", "k", "-w", "json")).Out, "\"revision\":(\\d+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        await Ok("put", "k", "2");
        Assert.Equal($"compacted revision {rev + 1}", (await Ok("compaction", (rev + 1).ToString(System.Globalization.CultureInfo.InvariantCulture))).Out.Trim());
        var compacted = await Etcdctl("get", "k", "--rev", rev.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.NotEqual(0, compacted.Exit);
        Assert.Contains("etcdserver: mvcc: required revision has been compacted", compacted.Err, StringComparison.Ordinal);
        Assert.Contains("Finished defragmenting etcd member", (await Ok("defrag")).Out, StringComparison.Ordinal);
        Assert.Empty((await Ok("alarm", "list")).Lines);
        Assert.Contains("is healthy", (await Ok("endpoint", "health")).Out + (await Etcdctl("endpoint", "health")).Err, StringComparison.Ordinal);
        var status = (await Ok("endpoint", "status", "-w", "json")).Out;
        Assert.Contains($"\"leader\":{_member.Id}", status, StringComparison.Ordinal);
        Assert.Contains(_member.GrpcEndpoint!.ToString(), (await Ok("endpoint", "hashkv")).Out, StringComparison.Ordinal);
        var file = Path.Combine(_cluster.Root, "etcdctl.snapshot");
        await Ok("snapshot", "save", file);
        Assert.True(new FileInfo(file).Length > 0);
        using (var dump = MemberRestore.OpenDump(file))
        {
            var magic = new byte[8];
            dump.ReadExactly(magic);
            Assert.Equal("CAIRNSNP", Encoding.ASCII.GetString(magic));
        }
    }

    [Fact]
    public async Task A_watch_replays_from_a_revision_with_previous_values()
    {
        await Ok("put", "w/a", "1");
        await Ok("put", "w/a", "2");
        await Ok("del", "w/a");
        var psi = new ProcessStartInfo("etcdctl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.Environment["ETCDCTL_API"] = "3";
        foreach (var a in new[] { $"--endpoints={_member.GrpcEndpoint}", "watch", "w/", "--prefix", "--rev", "1", "--prev-kv" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var lines = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            while (lines.Count < 11 && await p.StandardOutput.ReadLineAsync(timeout.Token) is { } line) lines.Add(line);
        }
        finally
        {
            p.Kill();
        }
        // PUT w/a 1; PUT (prev w/a 1) w/a 2; DELETE (prev w/a 2) w/a
        Assert.Equal(["PUT", "w/a", "1", "PUT", "w/a", "1", "w/a", "2", "DELETE", "w/a", "2"], lines);
    }

    [Fact]
    public async Task Users_roles_and_auth_with_user_flag()
    {
        await Ok("user", "add", "root:rootpw");
        await Ok("user", "grant-role", "root", "root");
        await Ok("role", "add", "reader");
        await Ok("role", "grant-permission", "reader", "read", "app/", "--prefix");
        await Ok("user", "add", "ann:annpw");
        await Ok("user", "grant-role", "ann", "reader");
        Assert.Contains("Authentication Enabled", (await Ok("auth", "enable")).Out, StringComparison.Ordinal);
        var anonymous = await Etcdctl("get", "app/x");
        Assert.NotEqual(0, anonymous.Exit);
        Assert.Contains("etcdserver: user name is empty", anonymous.Err, StringComparison.Ordinal);
        await Ok("--user", "root:rootpw", "put", "app/x", "1");
        Assert.Equal(["app/x", "1"], (await Ok("--user", "ann:annpw", "get", "app/x")).Lines);
        var denied = await Etcdctl("--user", "ann:annpw", "put", "app/x", "2");
        Assert.Contains("etcdserver: permission denied", denied.Err, StringComparison.Ordinal);
        var wrong = await Etcdctl("--user", "ann:nope", "get", "app/x");
        Assert.Contains("etcdserver: authentication failed, invalid user ID or password", wrong.Err, StringComparison.Ordinal);
        Assert.Equal(["ann", "root"], (await Ok("--user", "root:rootpw", "user", "list")).Lines);
        Assert.Contains("[app/, app0) (prefix app/)", (await Ok("--user", "root:rootpw", "role", "get", "reader")).Out, StringComparison.Ordinal);
        Assert.Contains("Authentication Disabled", (await Ok("--user", "root:rootpw", "auth", "disable")).Out, StringComparison.Ordinal);
        await Ok("put", "app/x", "3");
    }

    [Fact]
    public async Task Check_perf_runs_its_whole_load()
    {
        // Whether each of its checks passes depends on the machine (it times requests), so only its run is asserted:
        // it writes through the etcd API for its whole 60 s and reports every figure.
        var r = await Etcdctl("check", "perf", "--load", "s");
        Assert.Contains("Throughput is", r.Out, StringComparison.Ordinal);
        Assert.Contains("Slowest request took", r.Out, StringComparison.Ordinal);
        Assert.DoesNotContain("Error", r.Err, StringComparison.Ordinal);
    }
}

/// <summary>etcdctl's cluster verbs against a three-member Cairn cluster.</summary>
public sealed class EtcdctlClusterTests
{
    [Fact]
    public async Task Member_list_endpoint_status_of_the_cluster_move_leader_and_learners()
    {
        await using var cluster = new TestCluster(3);
        cluster.Customize = (_, o) => o with { ListenGrpc = "127.0.0.1:0" };
        await cluster.StartAllAsync();
        var leader = await cluster.LeaderAsync();
        var follower = cluster.Running.First(m => m != leader);
        // Every member publishes its etcd API URL; then --cluster finds all three from one endpoint.
        await TestCluster.EventuallyAsync(async () =>
        {
            var list = await EtcdctlTests.RunAsync(follower, null, "member", "list");
            return list.Exit == 0 && cluster.Running.All(m => list.Out.Contains($", {m.GrpcEndpoint}", StringComparison.Ordinal));
        }, "every member published its etcd API URL");
        var status = await EtcdctlTests.RunAsync(follower, null, "endpoint", "status", "--cluster");
        Assert.True(status.Exit == 0, status.Err);
        Assert.Equal(3, status.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Single(status.Out.Split('\n'), l => l.Contains(", true, ", StringComparison.Ordinal));
        var health = await EtcdctlTests.RunAsync(follower, null, "endpoint", "health", "--cluster");
        Assert.True(health.Exit == 0, health.Err);
        // move-leader goes to the leader's endpoint, as etcdctl finds it.
        var move = await EtcdctlTests.RunAsync(leader, null, "move-leader", follower.Id.ToString("x", null));
        Assert.True(move.Exit == 0, move.Err);
        Assert.Contains($"Leadership transferred from {leader.Id:x} to {follower.Id:x}", move.Out, StringComparison.Ordinal);
        await TestCluster.EventuallyAsync(() => follower.IsLeader, "the follower leads");
        // A learner is added by its peer URL, listed, and removed.
        var peer = $"127.0.0.1:{TestCluster.FreePort()}";
        var add = await EtcdctlTests.RunAsync(follower, null, "member", "add", "m4", $"--peer-urls=http://{peer}", "--learner");
        Assert.True(add.Exit == 0, add.Err);
        Assert.Contains("added to cluster", add.Out, StringComparison.Ordinal);
        var listed = await EtcdctlTests.RunAsync(follower, null, "member", "list");
        var line = listed.Out.Split('\n').Single(l => l.Contains(peer, StringComparison.Ordinal));
        Assert.EndsWith("true", line.Trim(), StringComparison.Ordinal);
        var id = line.Split(',')[0];
        var remove = await EtcdctlTests.RunAsync(follower, null, "member", "remove", id);
        Assert.True(remove.Exit == 0, remove.Err);
        Assert.DoesNotContain(peer, (await EtcdctlTests.RunAsync(follower, null, "member", "list")).Out, StringComparison.Ordinal);
    }
}
