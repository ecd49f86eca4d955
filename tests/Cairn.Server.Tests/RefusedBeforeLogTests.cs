using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>
/// A write the state machine would refuse is refused by the member that receives it (and by the leader, for forwarded
/// ones) before it is proposed: refused requests never become log entries (docs/server.md, "Refused before the log").
/// </summary>
public sealed class RefusedBeforeLogTests
{
    /// <summary>Waits until every member published its address (the last entries a quiet cluster appends) and all agree on the raft index; returns it.</summary>
    private static async Task<ulong> SettledIndexAsync(TestCluster cluster)
    {
        ulong index = 0;
        await TestCluster.EventuallyAsync(async () =>
        {
            if (!cluster.Running.All(m => m.MemberList().Count == 3 && m.MemberList().All(i => i.ClientUrl.Length > 0))) return false;
            var indexes = new List<ulong>();
            foreach (var m in cluster.Running)
            {
                await using var c = await TestClient.ConnectAsync(m.ClientEndpoint);
                indexes.Add((await DamageTests.StatusAsync(c)).RaftIndex);
            }
            index = indexes[0];
            return indexes.All(i => i == index) && cluster.Running.All(m => m.AppliedIndex == index);
        }, "the cluster is settled");
        return index;
    }

    private static async Task<ulong[]> IndexesAsync(TestCluster cluster)
    {
        var list = new List<ulong>();
        foreach (var m in cluster.Running)
        {
            await using var c = await TestClient.ConnectAsync(m.ClientEndpoint);
            list.Add((await DamageTests.StatusAsync(c)).RaftIndex);
        }
        return [.. list];
    }

    private static async Task<ServerError> RefusedAsync(TestClient c, MessageType type, Action<FrameWriter> body)
    {
        var answer = await c.CallAsync(type, body);
        return Assert.Throws<ServerError>(() => TestClient.Ok(answer, type));
    }

    [Fact]
    public async Task Thirty_puts_over_the_size_limits_leave_the_raft_index_where_it_was()
    {
        await using var cluster = new TestCluster(3);
        await cluster.StartAllAsync();
        var leader = await cluster.LeaderAsync();
        var follower = cluster.Running.First(m => m != leader);
        await using var atLeader = await TestClient.ConnectAsync(leader.ClientEndpoint);
        await using var atFollower = await TestClient.ConnectAsync(follower.ClientEndpoint);
        await atLeader.PutAsync("k", "v");
        var before = await SettledIndexAsync(cluster);

        var big = new byte[leader.Machine.Options.MaxValueBytes + 1];
        var longKey = new byte[leader.Machine.Options.MaxKeyBytes + 1];
        for (var i = 0; i < 30; i++)
        {
            var c = i % 2 == 0 ? atLeader : atFollower;
            var e = (i % 3) switch
            {
                0 => await RefusedAsync(c, MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = TestClient.Bytes($"big{i}"), Value = big })),
                1 => await RefusedAsync(c, MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = longKey, Value = [1] })),
                _ => await RefusedAsync(c, MessageType.Txn, w => Messages.WriteTxn(w, new TxnRequest
                {
                    Success = [new TxnOp { Put = new PutRequest { Key = TestClient.Bytes("k"), Value = [2] } }],
                    Failure = [new TxnOp { Put = new PutRequest { Key = TestClient.Bytes($"big{i}"), Value = big } }],
                })),
            };
            Assert.Equal(ErrorCode.InvalidArgument, e.Code);
            Assert.Contains("nothing was written", e.Message, StringComparison.Ordinal);
        }
        Assert.All(await IndexesAsync(cluster), i => Assert.Equal(before, i));
        Assert.Equal("v", await atFollower.GetAsync("k"));
    }

    [Fact]
    public async Task Thirty_writes_refused_by_the_NOSPACE_alarm_leave_the_raft_index_where_it_was()
    {
        await using var cluster = new TestCluster(3) { Customize = (_, o) => o with { QuotaBytes = 1 << 20 } };
        await cluster.StartAllAsync();
        var leader = await cluster.LeaderAsync();
        var follower = cluster.Running.First(m => m != leader);
        await using var atLeader = await TestClient.ConnectAsync(leader.ClientEndpoint);
        await using var atFollower = await TestClient.ConnectAsync(follower.ClientEndpoint);
        var value = new string('x', 100 << 10);
        ServerError? full = null;
        for (var i = 0; i < 40 && full is null; i++)
        {
            try
            {
                await atLeader.PutAsync($"fill{i}", value);
            }
            catch (ServerError e) when (e.Code == ErrorCode.NoSpace)
            {
                full = e;
            }
        }
        Assert.NotNull(full);
        Assert.Contains("refused before it reached the log", full.Message, StringComparison.Ordinal);
        foreach (var m in cluster.Running)
        {
            await using var c = await TestClient.ConnectAsync(m.ClientEndpoint);
            await TestCluster.EventuallyAsync(async () => (await DamageTests.AlarmsAsync(c)).Contains(new Alarm(0, AlarmType.NoSpace)), "every member applied the NOSPACE alarm");
        }
        var before = await SettledIndexAsync(cluster);

        for (var i = 0; i < 30; i++)
        {
            var c = i % 2 == 0 ? atLeader : atFollower;
            var e = (i % 3) switch
            {
                0 => await RefusedAsync(c, MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = TestClient.Bytes($"more{i}"), Value = [1] })),
                1 => await RefusedAsync(c, MessageType.Txn, w => Messages.WriteTxn(w, new TxnRequest { Success = [new TxnOp { Put = new PutRequest { Key = TestClient.Bytes($"more{i}"), Value = [1] } }] })),
                _ => await RefusedAsync(c, MessageType.LeaseGrant, w => { w.I64(10); w.I64(0); }),
            };
            Assert.Equal(ErrorCode.NoSpace, e.Code);
        }
        Assert.All(await IndexesAsync(cluster), i => Assert.Equal(before, i));

        // What frees space still goes through the log.
        TestClient.Ok(await atFollower.CallAsync(MessageType.DeleteRange, w => Messages.WriteDelete(w, new DeleteRangeRequest { Key = TestClient.Bytes("fill0") })), MessageType.DeleteRange);
        Assert.All(await IndexesAsync(cluster), i => Assert.True(i > before));
    }
}
