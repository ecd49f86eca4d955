using Cairn.Faults;
using Microsoft.Extensions.Time.Testing;

namespace Cairn.Faults.Tests;

public class RecorderTests
{
    [Fact]
    public void Records_intervals_results_and_outcomes()
    {
        var time = new FakeTimeProvider();
        var r = new HistoryRecorder(time);
        var put = r.Put(1, "x", "1");
        time.Advance(TimeSpan.FromMilliseconds(2));
        put.Ok();
        var get = r.Get(2, "x");
        var cas = r.CompareAndSwap(3, "x", "1", "2");
        time.Advance(TimeSpan.FromMilliseconds(1));
        get.Observed("1");
        cas.Swapped(true);
        var del = r.Delete(1, "x");
        del.Failed();
        var lost = r.Put(2, "x", "3");
        lost.Unknown();
        r.Get(3, "x"); // never completed

        var h = r.ToHistory();
        Assert.Equal(6, h.Count);
        var ops = h.Operations.ToDictionary(o => o.Id);
        Assert.Equal((0L, 2000L, Outcome.Ok), (ops[0].Invoke, ops[0].Complete, ops[0].Outcome));
        Assert.Equal(("1", 3000L), (ops[1].Observed, ops[1].Complete));
        Assert.True(ops[2].Succeeded);
        Assert.Equal(Outcome.Failed, ops[3].Outcome);
        Assert.Equal((Outcome.Unknown, Operation.Never), (ops[4].Outcome, ops[4].Complete));
        Assert.Equal((Outcome.Unknown, Operation.Never), (ops[5].Outcome, ops[5].Complete));
        Assert.Equal(Verdict.Linearizable, new LinearizabilityChecker().Check(h).Verdict);
    }

    [Fact]
    public void Completing_twice_or_with_the_wrong_result_throws()
    {
        var r = new HistoryRecorder();
        var put = r.Put(1, "x", "1");
        Assert.Throws<InvalidOperationException>(() => put.Observed("1"));
        put.Ok();
        Assert.Throws<InvalidOperationException>(put.Ok);
        Assert.Throws<InvalidOperationException>(put.Unknown);
        Assert.Throws<ArgumentOutOfRangeException>(() => r.Delete(1, "x").DeletedCount(2));
    }

    [Fact]
    public async Task Concurrent_clients_on_a_locked_register_record_a_linearizable_history()
    {
        var r = new HistoryRecorder();
        var gate = new object();
        var value = (string?)null;
        var tasks = Enumerable.Range(0, 4).Select(p => Task.Run(() =>
        {
            var random = new Random(p);
            for (var i = 0; i < 200; i++)
            {
                var key = "k" + random.Next(2);
                switch (random.Next(3))
                {
                    case 0:
                        var put = r.Put(p, key, $"{p}-{i}");
                        lock (gate) value = key == "k0" ? $"{p}-{i}" : value;
                        // k1 is never really written: its puts end unknown, which the checker must accept.
                        if (key == "k0") put.Ok(); else put.Unknown();
                        break;
                    case 1:
                        var get = r.Get(p, key);
                        string? seen;
                        lock (gate) seen = key == "k0" ? value : null;
                        get.Observed(seen);
                        break;
                    default:
                        var cas = r.CompareAndSwap(p, key, null, "x");
                        cas.Failed();
                        break;
                }
            }
        })).ToArray();
        await Task.WhenAll(tasks);
        var h = r.ToHistory();
        Assert.Equal(800, h.Count);
        var report = new LinearizabilityChecker().Check(h);
        Assert.True(report.Verdict == Verdict.Linearizable, report.ToString());
    }
}
