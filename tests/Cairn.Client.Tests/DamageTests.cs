using System.Text;
using Cairn.Protocol;
using Cairn.Server.Tests;

namespace Cairn.Client.Tests;

/// <summary>A member whose database is damaged, through the client: <see cref="CairnCorruptException"/>, and reads served by the others.</summary>
public sealed class DamageTests
{
    [Fact]
    public async Task A_read_a_damaged_member_answers_Corrupt_goes_to_another_member_and_alone_it_names_the_page()
    {
        await using var cluster = await TestCluster.StartAsync(3, o => o with { ScrubInterval = TimeSpan.Zero });
        var value = new string('v', 1000);
        await using (var c = cluster.Client())
        {
            // kv.index holds no values: thirty small keys after each spread it over several leaves (k10's and k50's apart).
            for (var i = 0; i < 60; i++)
            {
                await c.PutAsync($"k{i:D2}", value);
                for (var j = 0; j < 30; j++) await c.PutAsync($"k{i:D2}-{j:D2}", "f");
            }
        }
        await cluster.StopAsync("m2");
        var page = DamagedPage.Flip(cluster.DbPath("m2"), null, "kv.index", Encoding.UTF8.GetBytes("k10"), Encoding.UTF8.GetBytes("k50"));
        var m2 = cluster.Restart("m2");
        await cluster.LeaderAsync();

        await using (var only = cluster.Client([cluster.Endpoint("m2")]))
        {
            var e = await Assert.ThrowsAsync<CairnCorruptException>(() => only.GetAsync("k10", Consistency.Serializable));
            Assert.Equal(ErrorCode.Corrupt, e.Code);
            Assert.Equal(page, e.PageNumber);
            Assert.Contains("checksum mismatch", e.Message, StringComparison.Ordinal);
            Assert.Equal(value, Encoding.UTF8.GetString((await only.GetAsync("k50", Consistency.Serializable)).Body!.Value));
        }

        await using var client = cluster.Client([cluster.Endpoint("m2"), cluster.Endpoint("m1"), cluster.Endpoint("m3")]);
        var read = await client.GetAsync("k10", Consistency.Serializable);
        Assert.Equal(value, Encoding.UTF8.GetString(read.Body!.Value));
        Assert.NotEqual(m2.Id, read.Header.MemberId);               // answered by a member with an intact copy

        // Writes are refused cluster-wide under the CORRUPT alarm, with the same exception naming the damaged member's page.
        CairnCorruptException? refused = null;
        await TestCluster.EventuallyAsync(async () =>
        {
            try
            {
                await client.PutAsync("k00", "new");
                return false;
            }
            catch (CairnCorruptException e)
            {
                refused = e;
                return true;
            }
        }, "a write is refused with CairnCorruptException");
        Assert.Equal(page, refused!.PageNumber);
        Assert.Contains("CORRUPT alarm", refused.Message, StringComparison.Ordinal);
        var alarms = (await client.AlarmListAsync()).Body;
        Assert.Contains(new Alarm(m2.Id, AlarmType.Corrupt), alarms);
    }

    [Fact]
    public async Task A_watch_on_a_member_that_stops_applying_carries_on_on_another_member_and_misses_nothing()
    {
        await using var cluster = await TestCluster.StartAsync(3, o => o with { ScrubInterval = TimeSpan.Zero });
        var value = new string('v', 1000);
        await using (var c = cluster.Client())
        {
            // kv.index holds no values: thirty small keys after each spread it over several leaves (k10's and k50's apart).
            for (var i = 0; i < 60; i++)
            {
                await c.PutAsync($"k{i:D2}", value);
                for (var j = 0; j < 30; j++) await c.PutAsync($"k{i:D2}-{j:D2}", "f");
            }
        }
        await cluster.StopAsync("m2");
        DamagedPage.Flip(cluster.DbPath("m2"), null, "kv.index", Encoding.UTF8.GetBytes("k10"), Encoding.UTF8.GetBytes("k50"));
        var m2 = cluster.Restart("m2");
        await cluster.LeaderAsync();

        await using var watching = cluster.Client([cluster.Endpoint("m2"), cluster.Endpoint("m1"), cluster.Endpoint("m3")]);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await using var events = watching.WatchAsync("k1", prefix: true, cancellationToken: stop.Token).GetAsyncEnumerator(stop.Token);
        var first = events.MoveNextAsync();                  // the watch is created on m2, the current endpoint
        await TestCluster.EventuallyAsync(() => Task.FromResult(m2.Sessions.Any(s => s.Watches.Count > 0)), "m2 serves the watch");

        // Applying this put reads m2's damaged page: m2 stops applying and ends its watches with Corrupt.
        await using (var writer = cluster.Client([cluster.Endpoint("m1"), cluster.Endpoint("m3")])) await writer.PutAsync("k10", "new");
        Assert.True(await first);
        var e = Assert.Single(events.Current.Events);
        Assert.Equal("k10", Encoding.UTF8.GetString(e.Kv.Key));
        Assert.Equal("new", Encoding.UTF8.GetString(e.Kv.Value));
        Assert.True(m2.ApplyHalted);
    }
}
