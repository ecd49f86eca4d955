using System.Text;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Server;

namespace Cairn.Client.Tests;

/// <summary>Three members shared by the tests of a class (none of them stops a member).</summary>
public sealed class ThreeMembers : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await TestCluster.StartAsync(3);

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}

/// <summary>A three-member cluster through the client: forwarding, discovery, per-member calls, membership.</summary>
public sealed class ClusterTests(ThreeMembers three) : IClassFixture<ThreeMembers>
{
    private TestCluster Cluster => three.Cluster;

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private async Task<(Member Leader, List<Member> Followers)> RolesAsync()
    {
        var leader = await Cluster.LeaderAsync();
        return (leader, [.. Cluster.Running.Where(m => m != leader)]);
    }

    [Fact]
    public async Task Writes_through_a_follower_are_forwarded_and_every_member_reads_them_linearizably()
    {
        var (leader, followers) = await RolesAsync();
        await using (var viaFollower = Cluster.Client([Cluster.Endpoint(Cluster.NameOf(followers[0]))]))
        {
            var puts = await Task.WhenAll(Enumerable.Range(0, 50).Select(i => viaFollower.PutAsync($"fwd/{i}", $"v{i}")));
            Assert.All(puts, p => Assert.Equal(leader.Id, p.Header.MemberId)); // the follower relayed the leader's answer as it was
        }
        foreach (var name in Cluster.Names)
        {
            await using var c = Cluster.Client([Cluster.Endpoint(name)]);
            var (h, range) = await c.GetPrefixAsync("fwd/");
            Assert.Equal(50, range.Count);
            Assert.Equal(Enumerable.Range(0, 50).Select(i => $"v{i}").Order(StringComparer.Ordinal), range.Kvs.Select(kv => S(kv.Value)).Order(StringComparer.Ordinal));
            Assert.Equal(MemberOptions.MemberId(name), (await c.StatusAsync()).Header.MemberId);
            _ = h;
        }
    }

    [Fact]
    public async Task Discovery_from_one_endpoint_finds_every_member()
    {
        await using var first = Cluster.Client([Cluster.Endpoint("m2")]);
        await TestCluster.EventuallyAsync(async () => (await first.MemberListAsync()).Body.All(m => m.ClientUrl.Length > 0), "every member has published its client address");
        await using var client = Cluster.Client([Cluster.Endpoint("m2")], discover: true);
        var hello = await client.ConnectAsync();
        Assert.Equal(MemberOptions.MemberId("m2"), hello.MemberId);
        Assert.Equal(Cluster.AllEndpoints.Order(StringComparer.Ordinal), client.Endpoints.Order(StringComparer.Ordinal));
        Assert.Equal(Cluster.Endpoint("m2"), client.Endpoints[0]);
    }

    [Fact]
    public async Task Status_hash_and_member_list_agree_across_members()
    {
        await using var client = Cluster.Client();
        for (var i = 0; i < 20; i++) await client.PutAsync($"hash/{i}", $"{i}");
        var rev = (await client.GetAsync("hash/0")).Header.Revision;
        var (_, members) = await client.MemberListAsync();
        Assert.Equal(Cluster.Names, members.Select(m => m.Name));
        Assert.All(members, m => Assert.Equal(MemberOptions.MemberId(m.Name), m.Id));
        var hashes = new List<ulong>();
        foreach (var name in Cluster.Names)
        {
            var endpoint = Cluster.Endpoint(name);
            // A follower may be a moment behind: its hash at the revision is asked once it has applied it.
            await TestCluster.EventuallyAsync(async () => (await client.GetAsync("hash/0", Consistency.Serializable)).Header.Revision >= rev, "caught up");
            Answer<HashResponse>? hash = null;
            await TestCluster.EventuallyAsync(async () =>
            {
                try
                {
                    hash = await client.HashAsync(rev, endpoint);
                    return true;
                }
                catch (CairnException e) when (e.Code == ErrorCode.FutureRevision)
                {
                    return false;
                }
            }, $"{name} reached revision {rev}");
            Assert.Equal(MemberOptions.MemberId(name), hash!.Value.Header.MemberId);
            Assert.Equal(rev, hash.Value.Body.Revision);
            hashes.Add(hash.Value.Body.Hash);
            var (sh, status) = await client.StatusAsync(endpoint);
            Assert.Equal(MemberOptions.MemberId(name), sh.MemberId);
            Assert.Contains(status.Leader, members.Select(m => m.Id)); // the leader it knows (a loaded machine may have held an election since)
            Assert.False(status.IsLearner);
            Assert.True(status.AppliedIndex > 0 && status.RaftIndex >= status.AppliedIndex);
        }
        Assert.Single(hashes.Distinct());
    }

    [Fact]
    public async Task Move_leader_and_a_learner_added_then_removed()
    {
        var (leader, followers) = await RolesAsync();
        await using var client = Cluster.Client();
        var target = followers[0].Id;
        var moved = await client.MoveLeaderAsync(target);
        Assert.Equal(leader.Id, moved.MemberId); // answered by the leader it moved from
        var now = await Cluster.LeaderAsync();
        Assert.Equal(target, now.Id);
        Assert.NotEqual(leader.Id, now.Id);

        var (_, added) = await client.MemberAddAsync("m9", $"127.0.0.1:{TestCluster.FreePort()}", learner: true);
        Assert.Equal(MemberOptions.MemberId("m9"), added.MemberId);
        var m9 = Assert.Single(added.Members, m => m.Name == "m9");
        Assert.True(m9.IsLearner);
        Assert.Equal("", m9.ClientUrl);
        var (_, removed) = await client.MemberRemoveAsync(added.MemberId);
        Assert.DoesNotContain(removed.Members, m => m.Id == added.MemberId);
        // The member list is served from the asked member's applied state: a follower shows the removal a moment later.
        await TestCluster.EventuallyAsync(async () => (await client.MemberListAsync()).Body.Count == 3, "every member applied the removal");
        var e = await Assert.ThrowsAsync<CairnException>(() => client.MemberRemoveAsync(0xdead));
        Assert.Equal(ErrorCode.MemberChange, e.Code);
    }
}

/// <summary>Clients that cannot reach anything, or lose the member they use.</summary>
public sealed class FailoverTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    [Fact]
    public async Task A_client_pointed_at_a_closed_port_is_told_no_member_is_reachable_there()
    {
        var (holder, port) = TestCluster.ClosedPort();
        using var _ = holder;
        await using var client = new CairnClient(new CairnClientOptions { Endpoints = [$"127.0.0.1:{port}"], ConnectTimeout = TimeSpan.FromSeconds(1) });
        var started = DateTime.UtcNow;
        var e = await Assert.ThrowsAsync<CairnUnavailableException>(() => client.GetAsync("x"));
        Assert.Contains($"127.0.0.1:{port}", e.Message);
        Assert.Contains("connection refused", e.Message);
        Assert.Equal([($"127.0.0.1:{port}", "connection refused")], e.Failures);
        Assert.Null(e.Code);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(2), "an unreachable cluster is reported at once, not after the request timeout");
        var put = await Assert.ThrowsAsync<CairnUnavailableException>(() => client.PutAsync("x", "y"));
        Assert.Contains($"127.0.0.1:{port}", put.Message);
    }

    [Fact]
    public async Task Stopping_the_leader_leaves_reads_transparent_writes_typed_and_the_watch_whole()
    {
        await using var cluster = await TestCluster.StartAsync(3);
        var leader = await cluster.LeaderAsync();
        var leaderName = cluster.NameOf(leader);
        // The leader first: the client serves from it until it stops.
        var order = new List<string> { cluster.Endpoint(leaderName) };
        order.AddRange(cluster.Names.Where(n => n != leaderName).Select(cluster.Endpoint));
        await using var client = cluster.Client(order);
        await using var watcher = cluster.Client(order);
        var start = (await client.PutAsync("fo/start", "0")).Header.Revision;

        // The watch is served by the leader (the watcher's current member) and must carry on elsewhere.
        var watch = watcher.WatchAsync(new WatchRequest { Key = "fo/"u8.ToArray(), RangeEnd = RangeRequest.Prefix("fo/"u8), StartRevision = start }).GetAsyncEnumerator();
        Assert.True(await watch.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
        var events = new List<(string Key, long Rev)>(watch.Current.Events.Select(e => (S(e.Kv.Key), e.Kv.ModRevision)));

        var outcomes = new List<(int I, string Outcome, bool AfterStop)>();
        var stopped = 0;
        var reads = 0;
        using var stop = new CancellationTokenSource();
        var writers = Enumerable.Range(0, 4).Select(w => Task.Run(async () =>
        {
            for (var i = w; !stop.IsCancellationRequested; i += 4)
            {
                string outcome;
                try
                {
                    await client.PutAsync($"fo/{i:d5}", $"v{i}");
                    outcome = "ok";
                }
                catch (CairnUnknownOutcomeException e)
                {
                    outcome = "unknown";
                    output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} write {i}: {e.Message}");
                }
                catch (CairnException e)
                {
                    outcome = $"refused {e.Code}";
                }
                lock (outcomes) outcomes.Add((i, outcome, Volatile.Read(ref stopped) == 1));
                // Reads are retried transparently: they must never fail.
                var (_, got) = await client.GetAsync("fo/start");
                Assert.Equal("0", S(got!.Value));
                Interlocked.Increment(ref reads);
            }
        })).ToList();
        await Task.Delay(300);
        // Normally the client and the watch are on the leader; a leadership blip on a loaded machine may have moved
        // them or the leadership, and then the writes in flight are forwarded ones: either way they must fail over.
        leaderName = cluster.NameOf(await cluster.LeaderAsync());
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} stopping {leaderName}; {outcomes.Count} writes so far");
        await cluster.StopAsync(leaderName, handOver: true);
        output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} stopped");
        Volatile.Write(ref stopped, 1);
        // Writes carry on once the others have elected a leader (an election timeout or two; longer on a loaded machine).
        await TestCluster.EventuallyAsync(() =>
        {
            lock (outcomes) return Task.FromResult(outcomes.Count(o => o.Outcome == "ok" && o.AfterStop) >= 20);
        }, "20 writes succeeded after the leader stopped", TimeSpan.FromSeconds(20));
        stop.Cancel();
        await Task.WhenAll(writers);

        lock (cluster.Log) foreach (var line in cluster.Log) output.WriteLine(line);
        Assert.NotEqual(cluster.Endpoint(leaderName), client.CurrentEndpoint);
        Assert.True(reads >= 20, $"only {reads} reads");
        // Every acknowledged write is there; every refused one is not; unknown ones may be either.
        var (h, range) = await client.GetPrefixAsync("fo/");
        var present = range.Kvs.ToDictionary(kv => S(kv.Key), kv => S(kv.Value));
        foreach (var (i, outcome, _) in outcomes)
        {
            if (outcome == "ok") Assert.Equal($"v{i}", present.GetValueOrDefault($"fo/{i:d5}"));
            else if (outcome != "unknown") Assert.False(present.ContainsKey($"fo/{i:d5}"), $"write {i} was refused ({outcome}) but applied");
        }

        // The watch saw every change under fo/ once, in order, across the loss of the member serving it.
        while (events.Count == 0 || events[^1].Rev < h.Revision)
        {
            Assert.True(await watch.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)), "the watch ended");
            events.AddRange(watch.Current.Events.Select(e => (S(e.Kv.Key), e.Kv.ModRevision)));
        }
        await watch.DisposeAsync();
        Assert.NotEqual(cluster.Endpoint(leaderName), watcher.CurrentEndpoint);
        Assert.Equal(events.Select(e => e.Rev).Distinct().Count(), events.Count);
        Assert.Equal(events.Select(e => e.Rev).Order(), events.Select(e => e.Rev));
        Assert.Equal(present.Keys.Order(StringComparer.Ordinal), events.Select(e => e.Key).Order(StringComparer.Ordinal));
    }
}
