using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Scaling;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Server.Tests;

/// <summary>The autoscaler wired into members: decisions go through the log, every member applies the same count.</summary>
public sealed class ScalingTests
{
    private static async Task AdvanceAsync(FakeTimeProvider time, TimeSpan interval, int times)
    {
        for (var i = 0; i < times; i++)
        {
            time.Advance(interval);               // one interval at a time: each timer sees its own tick
            await Task.Delay(100);                // reports travel to the leader, proposals commit
        }
    }

    [Fact]
    public async Task In_a_cluster_the_leader_scales_for_the_loaded_member_and_every_member_applies_the_same_units_and_quota()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var scaling = new ScalingOptions { UnitRamBytes = 64L << 20, MaxUnits = 8 };
        long ballast = 0;
        await using var cluster = new TestCluster(3);
        cluster.Customize = (name, o) => o with
        {
            Scaling = scaling,
            Time = time,
            // m3 holds memory of its own (a native allocation the accountant is told of): it is the loaded member.
            MemorySources = name == "m3" ? [new DelegateSource("ballast", () => Interlocked.Read(ref ballast), SourceKind.Native)] : [],
        };
        await cluster.StartAllAsync();
        Assert.All(cluster.Running, m => Assert.Equal(1, m.Units));
        Assert.All(cluster.Running, m => Assert.Equal(4 * scaling.UnitRamBytes, m.QuotaBytes));

        await AdvanceAsync(time, scaling.Interval, 3);                // steady and light: nothing changes
        Assert.All(cluster.Running, m => Assert.Equal(1, m.Units));

        Interlocked.Exchange(ref ballast, 100L << 20);                 // 100 MiB on m3 against 64 MiB provisioned
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (cluster.Running.Any(m => m.Units < 3) && DateTime.UtcNow < deadline) await AdvanceAsync(time, scaling.Interval, 1);
        var units = cluster.Running.Select(m => m.Units).Distinct().ToList();
        var only = Assert.Single(units);                             // one count everywhere, from the log
        Assert.True(only >= 3, $"100 MiB at 60% target utilization of 64 MiB units needs at least 3 units, got {only}");
        Assert.All(cluster.Running, m => Assert.Equal(4L * only * scaling.UnitRamBytes, m.QuotaBytes));
        var leader = await cluster.LeaderAsync();
        Assert.Contains(leader.Autoscaler!.Events, e => e.Kind == ScalingEventKind.ScaleUp && e.Member == "m3");

        Interlocked.Exchange(ref ballast, 0);                          // load gone: units stay
        await AdvanceAsync(time, scaling.Interval, 5);
        Assert.All(cluster.Running, m => Assert.Equal(only, m.Units));
    }

    [Fact]
    public async Task A_member_filled_by_writes_grows_units_before_NOSPACE_and_every_write_succeeds_and_manual_scale_down_is_refused_with_figures()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var scaling = new ScalingOptions { UnitRamBytes = 2L << 20, MaxUnits = 20 };   // 2 MiB RAM + 8 MiB storage a unit
        await using var cluster = new TestCluster(1);
        // A short log (compacted every 50 entries): the accountant counts the Raft log's memory (its arena), and 600
        // entries of 32 KiB held in it would need more RAM than these tiny units give; storage is what should grow them.
        cluster.Customize = (_, o) => o with { Scaling = scaling, Time = time, SnapshotCount = 50 };
        await cluster.StartAllAsync();
        var member = cluster.Members["m1"]!;
        Assert.Equal(8L << 20, member.QuotaBytes);
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        var value = new string('x', 32 << 10);
        for (var i = 0; i < 600; i++)                                 // ~19 MiB of values: more than two units hold
        {
            await c.PutAsync($"fill/{i:D4}", value);                   // throws on NOSPACE: none may fail
            if (i % 16 == 15) await AdvanceAsync(time, scaling.Interval, 1);
        }
        Assert.True(member.Units >= 3, $"units {member.Units}");
        Assert.True(member.QuotaBytes > member.Machine.Storage.DataSize);
        Assert.False(member.Machine.NoSpaceAlarm);

        // Back down to one unit would leave ~19 MiB of data over an 8 MiB quota: refused, with the figures.
        var down = await c.CallAsync(MessageType.ScaleSet, w => w.U32(1));
        var e = Assert.Throws<ServerError>(() => TestClient.Ok(down, MessageType.ScaleSet));
        Assert.Contains("storage in use", e.Message, StringComparison.Ordinal);
        // Up by hand is allowed and applied through the log.
        var up = TestClient.Ok(await c.CallAsync(MessageType.ScaleSet, w => w.U32((uint)member.Units + 1)), MessageType.ScaleSet);
        Assert.NotEmpty(up);
        var status = TestClient.Ok(await c.CallAsync(MessageType.ScaleStatus, _ => { }), MessageType.ScaleStatus);
        var r = new PayloadReader(status);
        Messages.ReadHeader(ref r);
        var json = r.String();
        Assert.Contains("\"units\":", json, StringComparison.Ordinal);
        Assert.Contains("page-cache", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reads_of_an_encrypted_store_show_in_the_page_cache_source_and_watches_in_the_watch_source()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var cluster = new TestCluster(1, encrypted: true);   // encrypted pages are read through the page cache
        cluster.Customize = (_, o) => o with { Scaling = new ScalingOptions(), Time = time };
        await cluster.StartAllAsync();
        var member = cluster.Members["m1"]!;
        long Figure(string name) => member.Accountant!.Sample().Figure(name)!.Bytes;
        var watchBefore = Figure("watch-buffers");
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        for (var i = 0; i < 300; i++) await c.PutAsync($"page/{i:D4}", new string('p', 2000));
        var cacheBefore = Figure("page-cache");
        member.Machine.Storage.PageCacheBudget = 1L << 30;                 // room for every page
        var all = await c.RangeAsync(new RangeRequest { Key = "page/"u8.ToArray(), RangeEnd = RangeRequest.Prefix("page/"u8) }, Consistency.Serializable);
        Assert.Equal(300, all.Kvs.Count);
        Assert.True(Figure("page-cache") > cacheBefore, $"page cache {Figure("page-cache")} after reading 600 KB of pages, {cacheBefore} before");

        for (var i = 0; i < 40; i++)
        {
            var stream = c.OpenStream(out var id);
            await c.SendAsync(MessageType.WatchCreate, id, w => Messages.WriteWatchCreate(w, new WatchRequest { Key = System.Text.Encoding.UTF8.GetBytes($"w{i}") }));
            await stream.Reader.ReadAsync();
        }
        Assert.Equal(40L * member.Machine.Watches.QueueCapacity * 256, Figure("watch-buffers") - watchBefore);
        Assert.Contains(member.Accountant!.Sample().Figures, f => f.Name == "database" && f.Kind == SourceKind.Storage && f.Bytes >= 600_000);
    }
}
