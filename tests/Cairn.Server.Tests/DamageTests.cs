using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>
/// A member whose database file is damaged (a flipped byte in one page) while it serves: the requests that touch the
/// page are answered Corrupt, the member raises the CORRUPT alarm and keeps serving what is intact (docs/server.md,
/// "A damaged database").
/// </summary>
public sealed class DamageTests
{
    private static readonly string Value = new('v', 1000);

    /// <summary>
    /// Sixty keys of 1 KB, each followed by thirty small ones: kv.index (which holds no values, so its entries are
    /// small) spreads over several leaves of 16 KiB, with k10 and k50 in different ones.
    /// </summary>
    private static async Task WriteKeysAsync(TestClient c)
    {
        for (var i = 0; i < 60; i++)
        {
            await c.PutAsync($"k{i:D2}", Value);
            for (var j = 0; j < 30; j++) await c.PutAsync($"k{i:D2}-{j:D2}", "f");
        }
    }

    private static string DbPath(TestCluster cluster, string name) => Path.Combine(cluster.Root, name, "member", "kv.db");

    [Fact]
    public async Task A_get_that_reads_a_damaged_page_is_answered_Corrupt_and_the_member_keeps_serving()
    {
        await using var cluster = new TestCluster(1, encrypted: true);
        await cluster.StartAllAsync();
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"))) await WriteKeysAsync(c);
        await cluster.StopAsync("m1");
        var page = DamagedPage.Flip(DbPath(cluster, "m1"), cluster.Options("m1").MasterKey, "kv.index", TestClient.Bytes("k10"), TestClient.Bytes("k50"));

        var member = cluster.Start("m1");
        await cluster.LeaderAsync();
        await using var client = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        foreach (var consistency in new[] { Consistency.Linearizable, Consistency.Serializable, Consistency.Linearizable })
        {
            var e = await Assert.ThrowsAsync<ServerError>(() => client.GetAsync("k10", consistency));
            Assert.Equal(ErrorCode.Corrupt, e.Code);
            Assert.Contains($"page {page}: authentication tag mismatch", e.Message, StringComparison.Ordinal);
        }
        Assert.False(member.Stopped.IsCompleted, "the member stays up");
        Assert.False(member.Failed);
        Assert.Equal(Value, await client.GetAsync("k50"));                               // what is intact is served
        Assert.Equal(Value, await client.GetAsync("k51", Consistency.Serializable));
        await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(client)).Contains(new Alarm(member.Id, AlarmType.Corrupt)), "the CORRUPT alarm is listed");
        lock (cluster.Log) Assert.Single(cluster.Log, l => l.Contains($"database damaged", StringComparison.Ordinal) && l.Contains($"page {page}:", StringComparison.Ordinal));
        var status = await StatusAsync(client);
        Assert.Contains(status.Errors, s => s.Contains("this member's database is damaged", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_replays_snapshots_and_defragmentation_that_meet_a_damaged_page_end_with_Corrupt_and_the_member_keeps_serving()
    {
        await using var cluster = new TestCluster(1, encrypted: true) { Customize = (_, o) => o with { ScrubInterval = TimeSpan.Zero } };
        await cluster.StartAllAsync();
        long k10, k50;
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            await WriteKeysAsync(c);
            k10 = (await c.RangeAsync(new RangeRequest { Key = TestClient.Bytes("k10") })).Kvs[0].ModRevision;
            k50 = (await c.RangeAsync(new RangeRequest { Key = TestClient.Bytes("k50") })).Kvs[0].ModRevision;
            await c.PutAsync("k10", Value);   // k10's current value is now in the history's last leaf
        }
        await cluster.StopAsync("m1");
        // The history leaf of k10's first put (history keys: revision big-endian, then sub-revision): live reads do not touch it.
        static byte[] HistoryKey(long revision) => [.. BitConverter.GetBytes(System.Buffers.Binary.BinaryPrimitives.ReverseEndianness(revision)), 0, 0, 0, 0];
        var page = DamagedPage.Flip(DbPath(cluster, "m1"), cluster.Options("m1").MasterKey, "kv.history", HistoryKey(k10), HistoryKey(k50));
        var member = cluster.Start("m1");
        await cluster.LeaderAsync();
        await using var client = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        Assert.Equal(Value, await client.GetAsync("k10"));                        // the current value lives elsewhere

        var watch = client.OpenStream(out var watchId);
        await client.SendAsync(MessageType.WatchCreate, watchId, w => Messages.WriteWatchCreate(w, new WatchRequest { Key = TestClient.Bytes("k"), RangeEnd = RangeRequest.Prefix(TestClient.Bytes("k")), StartRevision = 1 }));
        Assert.Equal(ErrorCode.Corrupt, (await StreamErrorAsync(watch)).Code);

        var dump = client.OpenStream(out var dumpId);
        await client.SendAsync(MessageType.Snapshot, dumpId, _ => { });
        Assert.Equal(ErrorCode.Corrupt, (await StreamErrorAsync(dump)).Code);

        var defrag = await client.CallAsync(MessageType.Defragment, _ => { });
        var e = Assert.Throws<ServerError>(() => TestClient.Ok(defrag, MessageType.Defragment));
        Assert.Equal(ErrorCode.Corrupt, e.Code);
        Assert.Contains($"page {page}:", e.Message, StringComparison.Ordinal);

        Assert.False(member.Failed);
        Assert.Equal(Value, await client.GetAsync("k50", Consistency.Serializable));
        await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(client)).Contains(new Alarm(member.Id, AlarmType.Corrupt)), "the CORRUPT alarm is raised");
    }

    /// <summary>Reads a stream's frames until its Error frame; fails if it ends without one.</summary>
    private static async Task<ServerError> StreamErrorAsync(System.Threading.Channels.Channel<(FrameHeader, byte[])> stream)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            var (h, payload) = await stream.Reader.ReadAsync(timeout.Token);
            if (h.Type == MessageType.Error) return Assert.Throws<ServerError>(() => TestClient.Ok((h, payload), MessageType.Error));
            Assert.True((h.Flags & FrameFlags.Last) == 0, $"the {h.Type} stream ended without an error");
        }
    }

    [Fact]
    public async Task A_damaged_leader_hands_over_every_member_lists_the_alarm_and_writes_wait_for_a_restore_and_a_disarm()
    {
        // No scrub: the member learns of the damage from the read below, after it was made leader.
        await using var cluster = new TestCluster(3, encrypted: true) { Customize = (_, o) => o with { ScrubInterval = TimeSpan.Zero } };
        await cluster.StartAllAsync();
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint(cluster.NameOf(await cluster.LeaderAsync())))) await WriteKeysAsync(c);
        await cluster.StopAsync("m1", handOver: true);
        var path = DbPath(cluster, "m1");
        File.Copy(path, path + ".backup");
        var page = DamagedPage.Flip(path, cluster.Options("m1").MasterKey, "kv.index", TestClient.Bytes("k10"), TestClient.Bytes("k50"));
        var m1 = cluster.Start("m1");
        await MoveLeaderAsync(cluster, m1);

        await using (var atM1 = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            var e = await Assert.ThrowsAsync<ServerError>(() => atM1.GetAsync("k10", Consistency.Serializable));
            Assert.Equal(ErrorCode.Corrupt, e.Code);
        }
        await TestCluster.EventuallyAsync(() => !m1.IsLeader && cluster.Running.Count(m => m.IsLeader) == 1, "the damaged leader hands leadership over");
        lock (cluster.Log) Assert.Contains(cluster.Log, l => l.Contains("cairn m1: handing leadership to", StringComparison.Ordinal));
        foreach (var name in new[] { "m1", "m2", "m3" })
        {
            await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint(name));
            await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(c)).Contains(new Alarm(m1.Id, AlarmType.Corrupt)), $"{name} lists m1's CORRUPT alarm");
        }

        // Writes are refused on every member, before the log: no index moves.
        var indexes = await IndexesAsync(cluster);
        foreach (var name in new[] { "m1", "m2", "m3" })
        {
            await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint(name));
            var e = await Assert.ThrowsAsync<ServerError>(() => c.PutAsync("k00", "after"));
            Assert.Equal(ErrorCode.Corrupt, e.Code);
            Assert.Contains("CORRUPT alarm", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(indexes, await IndexesAsync(cluster));

        // The healthy members serve the key m1 cannot read; m1 serves what is intact; m1 does not take leadership.
        await using var m2 = await TestClient.ConnectAsync(cluster.ClientEndpoint("m2"));
        Assert.Equal(Value, await m2.GetAsync("k10"));
        await using (var atM1 = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"))) Assert.Equal(Value, await atM1.GetAsync("k50", Consistency.Serializable));
        var move = await m2.CallAsync(MessageType.MoveLeader, w => w.U64(m1.Id));
        Assert.Equal(ErrorCode.Timeout, Assert.Throws<ServerError>(() => TestClient.Ok(move, MessageType.MoveLeader)).Code);
        Assert.False(m1.IsLeader);

        // A disarm while m1 still holds the damage: m1 raises its alarm again.
        TestClient.Ok(await m2.CallAsync(MessageType.AlarmDisarm, _ => { }), MessageType.AlarmDisarm);
        await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(m2)).Contains(new Alarm(m1.Id, AlarmType.Corrupt)), "m1 raises its alarm again");

        // Restored from a backup (the log brings it up to date), then disarmed: writes are taken again.
        await cluster.StopAsync("m1");
        File.Copy(path + ".backup", path, overwrite: true);
        cluster.Start("m1");
        await cluster.LeaderAsync();
        TestClient.Ok(await m2.CallAsync(MessageType.AlarmDisarm, _ => { }), MessageType.AlarmDisarm);
        foreach (var name in new[] { "m1", "m2", "m3" })
        {
            await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint(name));
            await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(c)).Length == 0, $"{name} lists no alarm");
        }
        await m2.PutAsync("k00", "after");
        await using (var atM1 = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            Assert.Equal(Value, await atM1.GetAsync("k10", Consistency.Serializable));
            await TestCluster.EventuallyAsync(async () => await atM1.GetAsync("k00", Consistency.Serializable) == "after", "m1 applies the new write");
        }
    }

    [Fact]
    public async Task A_leader_that_cannot_apply_a_write_does_not_acknowledge_it_and_stops_applying_without_crashing()
    {
        await using var cluster = new TestCluster(3, encrypted: true) { Customize = (_, o) => o with { ScrubInterval = TimeSpan.Zero } };
        await cluster.StartAllAsync();
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint(cluster.NameOf(await cluster.LeaderAsync())))) await WriteKeysAsync(c);
        await cluster.StopAsync("m1", handOver: true);
        var page = DamagedPage.Flip(DbPath(cluster, "m1"), cluster.Options("m1").MasterKey, "kv.index", TestClient.Bytes("k10"), TestClient.Bytes("k50"));
        var m1 = cluster.Start("m1");
        await MoveLeaderAsync(cluster, m1);

        // Applying the put reads k10's page: the write commits (a quorum has it) but m1 cannot apply it.
        await using (var atM1 = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            var e = await Assert.ThrowsAsync<ServerError>(() => atM1.PutAsync("k10", "new"));
            Assert.Equal(ErrorCode.Timeout, e.Code);                  // not acknowledged: its outcome is unknown to m1
            Assert.Contains("could not apply it", e.Message, StringComparison.Ordinal);
            var stale = await Assert.ThrowsAsync<ServerError>(() => atM1.GetAsync("k50", Consistency.Serializable));
            Assert.Equal(ErrorCode.Corrupt, stale.Code);              // its state is behind: it serves no reads
            Assert.Contains("stopped applying", stale.Message, StringComparison.Ordinal);
        }
        Assert.True(m1.ApplyHalted);
        Assert.False(m1.Failed);
        Assert.False(m1.Stopped.IsCompleted);
        lock (cluster.Log) Assert.Contains(cluster.Log, l => l.Contains("cairn m1: stopped applying the log at index", StringComparison.Ordinal) && l.Contains($"page {page}:", StringComparison.Ordinal));
        await TestCluster.EventuallyAsync(() => !m1.IsLeader && cluster.Running.Count(m => m.IsLeader) == 1, "m1 hands leadership over");
        await using var m2 = await TestClient.ConnectAsync(cluster.ClientEndpoint("m2"));
        Assert.Equal("new", await m2.GetAsync("k10"));                 // the healthy members applied it
        await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(m2)).Contains(new Alarm(m1.Id, AlarmType.Corrupt)), "m2 lists m1's alarm");
        var applied = m1.AppliedIndex;

        // A restart replays the log from the database's applied index and stops at the same page, again without crashing.
        await cluster.StopAsync("m1");
        m1 = cluster.Start("m1");
        await TestCluster.EventuallyAsync(() => m1.ApplyHalted, "m1 stops applying at the same entry");
        Assert.Equal(applied, m1.AppliedIndex);
        Assert.False(m1.Failed);
        Assert.False(m1.IsLeader);
    }

    [Fact]
    public async Task The_background_scrub_finds_a_damaged_page_no_request_read_and_raises_the_alarm()
    {
        await using var cluster = new TestCluster(1, encrypted: true) { Customize = (_, o) => o with { ScrubInterval = TimeSpan.FromSeconds(1) } };
        await cluster.StartAllAsync();
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"))) await WriteKeysAsync(c);
        await cluster.StopAsync("m1");
        var page = DamagedPage.Flip(DbPath(cluster, "m1"), cluster.Options("m1").MasterKey, "kv.index", TestClient.Bytes("k10"), TestClient.Bytes("k50"));

        var member = cluster.Start("m1");
        await TestCluster.EventuallyAsync(() => member.Damaged, "the scrub finds the damage");
        await TestCluster.EventuallyAsync(() => member.MetricsText().Contains("cairn_scrub_passes_total 2", StringComparison.Ordinal), "two passes complete");
        var metrics = member.MetricsText();
        Assert.Contains("cairn_scrub_damaged_pages_total 1\n", metrics, StringComparison.Ordinal);  // found again in the second pass, counted once
        Assert.Matches(@"cairn_scrub_pages_verified_total [1-9]\d*\n", metrics);
        Assert.Matches(@"cairn_scrub_last_pass_completed_timestamp_seconds [1-9]\d*\n", metrics);
        Assert.Matches(@"cairn_scrub_pages_per_second [1-9][\d.]*\n", metrics);
        lock (cluster.Log) Assert.Single(cluster.Log, l => l.Contains("found by the background scrub", StringComparison.Ordinal) && l.Contains($"page {page}:", StringComparison.Ordinal));
        await using var client = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(client)).Contains(new Alarm(member.Id, AlarmType.Corrupt)), "the CORRUPT alarm is raised");
    }

    [Fact]
    public async Task A_member_that_becomes_leader_over_a_damaged_lease_page_stays_up_and_raises_the_alarm()
    {
        await using var cluster = new TestCluster(1, encrypted: true) { Customize = (_, o) => o with { ScrubInterval = TimeSpan.Zero } };
        await cluster.StartAllAsync();
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            TestClient.Ok(await c.CallAsync(MessageType.LeaseGrant, w => { w.I64(600); w.I64(77); }), MessageType.LeaseGrant);
            await c.PutAsync("k", "v");
        }
        await cluster.StopAsync("m1");
        var leaseKey = new byte[8];
        System.Buffers.Binary.BinaryPrimitives.WriteInt64BigEndian(leaseKey, 77);
        var page = DamagedPage.Flip(DbPath(cluster, "m1"), cluster.Options("m1").MasterKey, "kv.lease", leaseKey, null);

        var member = cluster.Start("m1");                                 // leading, it reads every lease to start their clocks
        await TestCluster.EventuallyAsync(() => member.Damaged, "the member notes the damage");
        await TestCluster.EventuallyAsync(() => member.IsLeader, "it leads (alone: nobody to hand over to)"); // its role is published after the round that found the damage
        Assert.False(member.Failed);
        await using var client = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        Assert.Equal("v", await client.GetAsync("k"));
        var list = await client.CallAsync(MessageType.LeaseList, _ => { });
        var e = Assert.Throws<ServerError>(() => TestClient.Ok(list, MessageType.LeaseList));
        Assert.Equal(ErrorCode.Corrupt, e.Code);
        Assert.Contains($"page {page}:", e.Message, StringComparison.Ordinal);
        await TestCluster.EventuallyAsync(async () => (await AlarmsAsync(client)).Contains(new Alarm(member.Id, AlarmType.Corrupt)), "the CORRUPT alarm is raised");
    }

    [Fact]
    public async Task A_leader_whose_snapshot_for_a_lagging_member_meets_damage_hands_over_and_a_healthy_leader_sends_it()
    {
        await using var cluster = new TestCluster(3, encrypted: true, snapshotCount: 20) { Customize = (_, o) => o with { ScrubInterval = TimeSpan.Zero } };
        await cluster.StartAllAsync();
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint(cluster.NameOf(await cluster.LeaderAsync())))) await WriteKeysAsync(c);
        await cluster.StopAsync("m1", handOver: true);
        DamagedPage.Flip(DbPath(cluster, "m1"), cluster.Options("m1").MasterKey, "kv.index", TestClient.Bytes("k10"), TestClient.Bytes("k50"));
        var m1 = cluster.Start("m1");
        await MoveLeaderAsync(cluster, m1);
        var m3Applied = cluster.Members["m3"]!.AppliedIndex;
        await cluster.StopAsync("m3");
        // New keys land on the last leaf, far from k10's; enough of them that m1 compacts its log past m3 (once the
        // backend's next durable commit lets it).
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            for (var i = 0; i < 60; i++) await c.PutAsync($"z{i:D2}", "late");
        }
        var snapMeta = Path.Combine(cluster.Root, "m1", "member", "snap.meta");
        await TestCluster.EventuallyAsync(() => File.Exists(snapMeta) && Cairn.Raft.SnapshotFile.Read(snapMeta, cluster.Options("m1").MasterKey).Metadata.Index > m3Applied, "m1 compacts its log past m3");
        Assert.False(m1.Damaged);
        var m3 = cluster.Start("m3");                                     // needs a snapshot: m1's dump reads k10's page
        await TestCluster.EventuallyAsync(() => m1.Damaged && !m1.IsLeader, "m1 finds the damage and hands leadership over");
        await TestCluster.EventuallyAsync(() => m3.Stats.SnapshotsInstalled > 0, "m3 installs a snapshot from the healthy leader");
        await using var atM3 = await TestClient.ConnectAsync(cluster.ClientEndpoint("m3"));
        await TestCluster.EventuallyAsync(async () => await atM3.GetAsync("z59", Consistency.Serializable) == "late", "m3 caught up");
        Assert.Equal(Value, await atM3.GetAsync("k10", Consistency.Serializable));
        lock (cluster.Log) Assert.Contains(cluster.Log, l => l.Contains("cairn m1: database damaged", StringComparison.Ordinal) && l.Contains("a snapshot sent to", StringComparison.Ordinal));
    }

    /// <summary>Moves leadership to <paramref name="target"/> (retried while it catches up) and waits until everyone follows it.</summary>
    private static async Task MoveLeaderAsync(TestCluster cluster, Member target)
    {
        await TestCluster.EventuallyAsync(async () =>
        {
            var leader = await cluster.LeaderAsync();
            if (leader == target) return true;
            await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint(cluster.NameOf(leader)));
            var answer = await c.CallAsync(MessageType.MoveLeader, w => w.U64(target.Id));
            return answer.Header.Type == MessageType.MoveLeader;
        }, $"{cluster.NameOf(target)} leads");
        Assert.Same(target, await cluster.LeaderAsync());
    }

    /// <summary>Each running member's raft index (Status).</summary>
    private static async Task<ulong[]> IndexesAsync(TestCluster cluster)
    {
        var list = new List<ulong>();
        foreach (var m in cluster.Running.OrderBy(m => m.Name, StringComparer.Ordinal))
        {
            await using var c = await TestClient.ConnectAsync(m.ClientEndpoint);
            list.Add((await StatusAsync(c)).RaftIndex);
        }
        return [.. list];
    }

    internal static async Task<Alarm[]> AlarmsAsync(TestClient c)
    {
        var p = TestClient.Ok(await c.CallAsync(MessageType.AlarmList, _ => { }), MessageType.AlarmList);
        var r = new PayloadReader(p);
        Messages.ReadHeader(ref r);
        return Messages.ReadAlarms(ref r);
    }

    internal static async Task<StatusResponse> StatusAsync(TestClient c)
    {
        var p = TestClient.Ok(await c.CallAsync(MessageType.Status, _ => { }), MessageType.Status);
        var r = new PayloadReader(p);
        Messages.ReadHeader(ref r);
        return Messages.ReadStatus(ref r);
    }
}
