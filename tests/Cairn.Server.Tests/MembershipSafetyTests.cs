using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>
/// Membership changes that would stop the cluster are refused before they are proposed (etcd's strict
/// reconfiguration check), and a cluster that lost its quorum has a way back: --force-new-cluster (issue 15).
/// </summary>
public sealed class MembershipSafetyTests
{
    private static async Task<ServerError> RefusedAsync(TestClient c, MessageType type, Action<FrameWriter> write)
    {
        var answer = await c.CallAsync(type, write);
        return Assert.Throws<ServerError>(() => TestClient.Ok(answer, type));
    }

    [Fact]
    public async Task Adding_a_voter_to_a_one_member_cluster_is_refused_and_the_learner_path_grows_it()
    {
        await using var cluster = new TestCluster(1);
        await cluster.StartAllAsync();
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        cluster.Reserve("m2");

        // As a voter, m2 would make two voters of which one runs: no quorum until m2 starts (and for good if it never does).
        var refused = await RefusedAsync(c, MessageType.MemberAdd, w => Messages.WriteMemberAdd(w, "m2", cluster.PeerUrl("m2"), learner: false));
        Assert.Equal(ErrorCode.MemberChange, refused.Code);
        Assert.Contains("1 of 2 voters started, short of the quorum of 2", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--learner", refused.Message, StringComparison.Ordinal);
        await c.PutAsync("still", "writable");
        Assert.Equal(["m1"], (await c.MembersAsync()).Select(m => m.Name));

        // Promoting a learner that never started is refused too.
        TestClient.Ok(await c.CallAsync(MessageType.MemberAdd, w => Messages.WriteMemberAdd(w, "m2", cluster.PeerUrl("m2"), learner: true)), MessageType.MemberAdd);
        var early = await RefusedAsync(c, MessageType.MemberPromote, w => w.U64(MemberOptions.MemberId("m2")));
        Assert.Contains("has not started yet", early.Message, StringComparison.Ordinal);
        await c.PutAsync("with-a-learner", "writable");

        // The way: add as a learner, start it, promote it.
        var m2 = cluster.Start("m2", [.. cluster.Cluster, ("m2", cluster.PeerUrl("m2"))], state: "existing");
        await TestCluster.EventuallyAsync(() => m2.AppliedIndex >= cluster.Members["m1"]!.AppliedIndex && m2.Leader != 0, "m2 caught up");
        TestClient.Ok(await c.CallAsync(MessageType.MemberPromote, w => w.U64(MemberOptions.MemberId("m2"))), MessageType.MemberPromote);
        await TestCluster.EventuallyAsync(async () => (await c.MembersAsync()).All(m => !m.IsLearner) && (await c.MembersAsync()).Length == 2, "m2 became a voter");
        await c.PutAsync("two-voters", "writable");
    }

    [Fact]
    public async Task Removing_a_voter_while_another_is_down_is_refused()
    {
        await using var cluster = new TestCluster(3);
        await cluster.StartAllAsync();
        var leader = await cluster.LeaderAsync();
        var others = cluster.Members.Keys.Where(n => cluster.Members[n] != leader).ToList();
        await cluster.StopAsync(others[1]);
        await using var c = await TestClient.ConnectAsync(leader.ClientEndpoint);
        // Removing others[0] would leave two voters, one of them down: no quorum.
        var refused = await RefusedAsync(c, MessageType.MemberRemove, w => w.U64(MemberOptions.MemberId(others[0])));
        Assert.Equal(ErrorCode.MemberChange, refused.Code);
        Assert.Contains($"bring {others[1]} up first", refused.Message, StringComparison.Ordinal);
        await c.PutAsync("still", "writable");
        Assert.Equal(3, (await c.MembersAsync()).Length);
        // Removing the member that is down is fine: two voters remain, both up.
        TestClient.Ok(await c.CallAsync(MessageType.MemberRemove, w => w.U64(MemberOptions.MemberId(others[1]))), MessageType.MemberRemove);
        await c.PutAsync("after", "writable");
    }

    [Fact]
    public async Task Force_new_cluster_starts_a_survivor_alone_with_every_key_and_revision()
    {
        await using var cluster = new TestCluster(3);
        await cluster.StartAllAsync();
        long revision;
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            for (var i = 0; i < 50; i++) await c.PutAsync($"k{i:D2}", $"v{i}");
            revision = await c.PutAsync("last", "one");
        }
        // Two of three are lost for good: the survivor alone has no quorum.
        foreach (var n in new[] { "m1", "m2", "m3" }) await cluster.StopAsync(n);

        cluster.Customize = (name, o) => name == "m1" ? o with { ForceNewCluster = true } : o;
        var m1 = cluster.Start("m1");
        await TestCluster.EventuallyAsync(() => m1.IsLeader, "m1 leads alone");
        lock (cluster.Log) Assert.True(cluster.Log.Any(l => l.Contains("--force-new-cluster: now a one-member cluster; removed m2, m3", StringComparison.Ordinal)), string.Join("\n", cluster.Log.Where(l => l.Contains("force", StringComparison.Ordinal))));
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            Assert.Equal(["m1"], (await c.MembersAsync()).Select(m => m.Name));
            Assert.Equal("v49", await c.GetAsync("k49"));
            Assert.Equal("one", await c.GetAsync("last"));
            Assert.True(await c.PutAsync("recovered", "yes") > revision);
        }

        // Started again without the flag (and with the old --initial-cluster): still alone, still leading.
        await cluster.StopAsync("m1");
        cluster.Customize = (_, o) => o;
        m1 = cluster.Start("m1");
        await TestCluster.EventuallyAsync(() => m1.IsLeader, "m1 leads alone after a plain restart");
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            Assert.Equal("yes", await c.GetAsync("recovered"));
            Assert.Equal(["m1"], (await c.MembersAsync()).Select(m => m.Name));
        }
    }
}
