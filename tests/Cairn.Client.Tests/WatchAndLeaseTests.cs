using System.Text;
using Cairn.Kv;

namespace Cairn.Client.Tests;

/// <summary>Watches and leases through the client against a real member.</summary>
public sealed class WatchAndLeaseTests(SingleMember member) : IClassFixture<SingleMember>
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private static string Describe(WatchEvent e) => $"{e.Type} {S(e.Kv.Key)}={S(e.Kv.Value)}@{e.Kv.ModRevision}";

    /// <summary>Reads events until one at <paramref name="revision"/> or later has arrived.</summary>
    private static async Task<List<string>> CollectAsync(IAsyncEnumerator<WatchResponse> watch, long revision, List<long>? headers = null)
    {
        var seen = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var last = 0L;
        while (last < revision)
        {
            Assert.True(await watch.MoveNextAsync().AsTask().WaitAsync(timeout.Token), "the watch ended early");
            var r = watch.Current;
            Assert.False(r.Canceled);
            headers?.Add(r.Header.Revision);
            foreach (var e in r.Events)
            {
                seen.Add(Describe(e));
                last = e.Kv.ModRevision;
            }
        }
        return seen;
    }

    [Fact]
    public async Task A_watch_from_a_past_revision_replays_every_put_and_delete_in_order()
    {
        var rng = new Random(7);
        await using var client = member.Cluster.Client();
        var history = new List<string>();
        var live = new HashSet<string>();
        long first = 0, last = 0;
        for (var i = 0; i < 200; i++)
        {
            var key = $"w/{rng.Next(10)}";
            if (rng.Next(3) == 0 && live.Contains(key))
            {
                var (h, _) = await client.DeleteAsync(key);
                live.Remove(key);
                history.Add($"Delete {key}=@{h.Revision}");
                last = h.Revision;
            }
            else
            {
                var value = $"v{i}";
                var (h, _) = await client.PutAsync(key, value);
                live.Add(key);
                history.Add($"Put {key}={value}@{h.Revision}");
                last = h.Revision;
            }
            if (first == 0) first = last;
            await client.PutAsync("unwatched", $"{i}"); // not under the prefix: never delivered
        }
        await using var replay = client.WatchAsync(new WatchRequest { Key = B("w/"), RangeEnd = RangeRequest.Prefix(B("w/")), StartRevision = first }).GetAsyncEnumerator();
        var headers = new List<long>();
        Assert.Equal(history, await CollectAsync(replay, last, headers));
        Assert.Equal(headers.Order(), headers);
    }

    [Fact]
    public async Task A_live_watch_delivers_exactly_the_writes_made_after_it_started()
    {
        var rng = new Random(11);
        await using var client = member.Cluster.Client();
        // From the next revision: every write below is owed to the watch whether it is created before or after them.
        var start = (await client.GetAsync("lw/none")).Header.Revision + 1;
        var e = client.WatchAsync(new WatchRequest { Key = B("lw/"), RangeEnd = RangeRequest.Prefix(B("lw/")), StartRevision = start, PrevKv = true }).GetAsyncEnumerator();
        try
        {
            var firstMove = e.MoveNextAsync().AsTask();
            var history = new List<string>();
            var prev = new Dictionary<string, string>();
            var prevSeen = new List<string>();
            long last = 0;
            for (var i = 0; i < 150; i++)
            {
                var key = $"lw/{rng.Next(6)}";
                if (rng.Next(4) == 0 && prev.TryGetValue(key, out var before))
                {
                    var (h, _) = await client.DeleteAsync(key);
                    history.Add($"Delete {key}=@{h.Revision}");
                    prevSeen.Add(before);
                    prev.Remove(key);
                    last = h.Revision;
                }
                else
                {
                    var (h, _) = await client.PutAsync(key, $"v{i}");
                    history.Add($"Put {key}=v{i}@{h.Revision}");
                    prevSeen.Add(prev.GetValueOrDefault(key, "-"));
                    prev[key] = $"v{i}";
                    last = h.Revision;
                }
            }
            Assert.True(await firstMove.WaitAsync(TimeSpan.FromSeconds(10)));
            var seen = new List<string>();
            var prevs = new List<string>();
            void Take(WatchResponse r)
            {
                foreach (var ev in r.Events)
                {
                    seen.Add(Describe(ev));
                    prevs.Add(ev.PrevKv is null ? "-" : S(ev.PrevKv.Value));
                }
            }
            Take(e.Current);
            while (seen.Count < history.Count)
            {
                Assert.True(await e.MoveNextAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10)));
                Take(e.Current);
            }
            Assert.Equal(history, seen);
            Assert.Equal(prevSeen, prevs);
            Assert.Equal(last, int.Parse(seen[^1][(seen[^1].LastIndexOf('@') + 1)..]));
        }
        finally
        {
            await e.DisposeAsync();
        }
        // Leaving the enumeration canceled the watch on the member, which acknowledged it.
        Assert.Equal(1, client.WatchCancelsAcknowledged);
        Assert.Equal(0, client.PendingRequests);
    }

    [Fact]
    public async Task A_watch_from_a_compacted_revision_ends_with_the_compaction_revision()
    {
        await using var client = member.Cluster.Client();
        var (h1, _) = await client.PutAsync("cw/a", "1");
        await client.PutAsync("cw/a", "2");
        var (h3, _) = await client.PutAsync("cw/a", "3");
        await client.CompactAsync(h3.Revision);
        var responses = new List<WatchResponse>();
        await foreach (var r in client.WatchAsync(new WatchRequest { Key = B("cw/a"), StartRevision = h1.Revision }).WithCancellation(new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token))
        {
            responses.Add(r);
        }
        var last = Assert.Single(responses);
        Assert.True(last.Canceled);
        Assert.Equal(h3.Revision, last.CompactRevision);
        await Assert.ThrowsAsync<CairnCompactedException>(() => client.RangeAsync(new RangeRequest { Key = B("cw/a"), Revision = h1.Revision }));
    }

    [Fact]
    public async Task Lease_grant_keep_alive_time_to_live_list_and_revoke()
    {
        await using var client = member.Cluster.Client();
        var (_, grant) = await client.LeaseGrantAsync(20);
        Assert.Equal(20, grant.Ttl);
        Assert.True(grant.Id > 0);
        var (_, chosen) = await client.LeaseGrantAsync(20, id: 0x77);
        Assert.Equal(0x77, chosen.Id);
        await Assert.ThrowsAsync<CairnException>(() => client.LeaseGrantAsync(20, id: 0x77));
        await client.PutAsync("lease/a", "1", lease: grant.Id);
        await client.PutAsync("lease/b", "2", lease: grant.Id);
        var (_, ttl) = await client.LeaseTimeToLiveAsync(grant.Id, keys: true);
        Assert.Equal(20, ttl.GrantedTtl);
        Assert.InRange(ttl.Ttl, 1, 20);
        Assert.Equal(["lease/a", "lease/b"], ttl.Keys.Select(S).Order(StringComparer.Ordinal));
        var (_, renewed) = await client.LeaseKeepAliveAsync(grant.Id);
        Assert.Equal((grant.Id, 20L), (renewed.Id, renewed.Ttl));
        var (_, list) = await client.LeaseListAsync();
        Assert.Contains(grant.Id, list);
        Assert.Contains(0x77, list);
        var (_, revoked) = await client.LeaseRevokeAsync(grant.Id);
        Assert.Equal(2, revoked.Deleted);
        Assert.Null((await client.GetAsync("lease/a")).Body);
        await Assert.ThrowsAsync<CairnLeaseNotFoundException>(() => client.LeaseTimeToLiveAsync(grant.Id));
        await Assert.ThrowsAsync<CairnLeaseNotFoundException>(() => client.LeaseKeepAliveAsync(grant.Id));
        await Assert.ThrowsAsync<CairnLeaseNotFoundException>(() => client.PutAsync("lease/c", "3", lease: grant.Id));
        Assert.DoesNotContain(grant.Id, (await client.LeaseListAsync()).Body);
        await client.LeaseRevokeAsync(0x77);
    }

    [Fact]
    public async Task A_lease_kept_alive_outlives_its_ttl_and_one_left_alone_expires_with_its_keys()
    {
        await using var client = member.Cluster.Client();
        var kept = (await client.LeaseGrantAsync(2)).Body.Id;
        var left = (await client.LeaseGrantAsync(1)).Body.Id;
        await client.PutAsync("exp/kept", "k", lease: kept);
        await client.PutAsync("exp/left", "l", lease: left);
        var keeper = client.KeepAlive(kept);
        await TestCluster.EventuallyAsync(async () => (await client.GetAsync("exp/left")).Body is null, "the lease left alone expires", TimeSpan.FromSeconds(10));
        await Assert.ThrowsAsync<CairnLeaseNotFoundException>(() => client.LeaseTimeToLiveAsync(left));
        // Well past its TTL the kept lease and its key are still there.
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(keeper.Completion.IsCompleted, keeper.Completion.Exception?.ToString());
        Assert.Equal("k", S((await client.GetAsync("exp/kept")).Body!.Value));
        await keeper.DisposeAsync();
        await keeper.Completion;
        await TestCluster.EventuallyAsync(async () => (await client.GetAsync("exp/kept")).Body is null, "the lease no longer kept alive expires", TimeSpan.FromSeconds(10));
    }
}
