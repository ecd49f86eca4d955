using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>
/// Defragmentation is online: a leader defragmenting its database goes on heartbeating and committing writes, so it
/// keeps its term (etcd's defragmentation stops the world, etcd issue 9222).
/// </summary>
public sealed class DefragmentTests
{
    [Fact]
    public async Task A_leader_defragmenting_under_writes_keeps_its_term_and_loses_no_write()
    {
        await using var cluster = new TestCluster(3);
        await cluster.StartAllAsync();
        var leader = await cluster.LeaderAsync();
        var term = leader.Current.Term;
        await using var c = await TestClient.ConnectAsync(leader.ClientEndpoint);
        for (var i = 0; i < 2_000; i++) await c.PutAsync($"old/{i:D4}", new string('x', 200));

        // Writers go on all along; the copy (held open as long as a copy of a large database takes, here two election
        // timeouts and more) waits until writes were committed while it copied.
        var acknowledged = new System.Collections.Concurrent.ConcurrentDictionary<string, string>();
        using var stop = new CancellationTokenSource();
        async Task Writer(int w)
        {
            await using var wc = await TestClient.ConnectAsync(leader.ClientEndpoint);
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                await wc.PutAsync($"w{w}/{i:D5}", $"{i}");
                acknowledged[$"w{w}/{i:D5}"] = $"{i}";
            }
        }
        var writers = Enumerable.Range(0, 4).Select(Writer).ToList();
        var during = 0;
        leader.Machine.DefragmentCopied = () =>
        {
            var before = acknowledged.Count;
            Thread.Sleep(2_000);
            during = acknowledged.Count - before;
        };
        var answer = await c.CallAsync(MessageType.Defragment, _ => { }, TimeSpan.FromSeconds(30));
        TestClient.Ok(answer, MessageType.Defragment);
        await stop.CancelAsync();
        await Task.WhenAll(writers);

        Assert.True(during > 0, "no write was committed while the leader's database was being copied");
        lock (cluster.Log) Assert.True(leader.IsLeader, "the leader lost its leadership while it defragmented:\n" + string.Join("\n", cluster.Log.TakeLast(15)));
        Assert.Equal(term, leader.Current.Term);
        foreach (var (key, value) in acknowledged.Take(500).Concat(acknowledged.TakeLast(50))) Assert.Equal(value, await c.GetAsync(key));
        Assert.Equal("x", (await c.GetAsync("old/1999"))![..1]);
    }
}
