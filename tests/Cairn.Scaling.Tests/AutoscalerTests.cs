using Microsoft.Extensions.Time.Testing;
using static Cairn.Scaling.Tests.Trace;

namespace Cairn.Scaling.Tests;

/// <summary>The loop in fake time: one check per interval, the callback with the right counts, the worst member.</summary>
public sealed class AutoscalerTests
{
    private const long Unit = 256 * MiB;

    /// <summary>An autoscaler over one local RAM figure, whose callback applies at once (as a committed proposal would).</summary>
    private sealed class Rig : IDisposable
    {
        public readonly FakeTimeProvider Time = new(Start);
        public readonly MemoryAccountant Accountant;
        public readonly Autoscaler Scaler;
        public readonly List<ScalingDecision> Calls = [];
        public long Ram = (long)(0.40 * Unit);
        public long Storage = 100 * MiB;
        public int Units = 1;
        public int Reads;
        public bool Apply = true;
        public Func<ScalingDecision, Task>? Callback;

        public Rig(ScalingOptions? options = null)
        {
            Accountant = new MemoryAccountant(Time);
            Accountant.Add("ram", SourceKind.Native, () => { Reads++; return Ram; });
            Accountant.Add("db", SourceKind.Storage, () => Storage);
            Scaler = new Autoscaler(Accountant, new ScalingPolicy(options ?? new ScalingOptions()), Time, () => Units, d =>
            {
                Calls.Add(d);
                if (Callback is not null) return Callback(d);
                if (Apply) Units = d.NewUnits!.Value;
                return Task.CompletedTask;
            });
        }

        // A minute at a time: one Advance fires every timer due within it, but the clock reads the end of the span.
        public void Minutes(int n)
        {
            for (var i = 0; i < n; i++) Time.Advance(TimeSpan.FromMinutes(1));
        }

        public void Dispose() => Scaler.Dispose();
    }

    [Fact]
    public void It_checks_once_per_interval()
    {
        using var rig = new Rig();
        rig.Scaler.Start();
        rig.Scaler.Start();  // idempotent: still one timer
        rig.Time.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, rig.Scaler.Checks);
        rig.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, rig.Scaler.Checks);
        Assert.Equal(1, rig.Reads);
        rig.Minutes(5);
        Assert.Equal(6, rig.Scaler.Checks);
        Assert.Equal(6, rig.Reads);
        Assert.Empty(rig.Calls);  // 40% steady: nothing to do
        rig.Scaler.Dispose();
        rig.Minutes(5);
        Assert.Equal(6, rig.Scaler.Checks);
    }

    [Fact]
    public void It_calls_back_with_the_right_counts_and_only_to_scale_up()
    {
        using var rig = new Rig();
        rig.Scaler.Start();
        rig.Minutes(3);
        rig.Ram = (long)(0.90 * Unit);  // 90% of 1 unit: ⌈0.9 / 0.6⌉ = 2
        rig.Minutes(1);
        var first = Assert.Single(rig.Calls);
        Assert.Equal((1, 2), (first.CurrentUnits, first.NewUnits));
        Assert.Equal(2, rig.Units);
        rig.Minutes(12);  // 45% of 2 units, for longer than the trend window (two steps within it would be a rise)
        Assert.Single(rig.Calls);
        rig.Ram = (long)(1.70 * Unit);  // 85% of 2 units: ⌈1.7 / 0.6⌉ = 3
        rig.Minutes(1);
        Assert.Equal(2, rig.Calls.Count);
        Assert.Equal((2, 3), (rig.Calls[1].CurrentUnits, rig.Calls[1].NewUnits));
        rig.Ram = 10 * MiB;  // falling: never down
        rig.Minutes(30);
        Assert.Equal(2, rig.Calls.Count);
        Assert.Equal(3, rig.Units);
        var ups = rig.Scaler.Events.Where(e => e.Kind == ScalingEventKind.ScaleUp).Select(e => (e.UnitsBefore, e.UnitsAfter)).ToArray();
        Assert.Equal([(1, 2), (2, 3)], ups);
        Assert.Equal(2, rig.Scaler.ScaleUps);
    }

    [Fact]
    public void A_proposal_not_yet_applied_is_asked_for_again_and_a_failed_one_is_logged()
    {
        using var rig = new Rig { Apply = false, Ram = (long)(0.90 * Unit) };
        rig.Scaler.Start();
        rig.Minutes(2);
        Assert.Equal([2, 2], rig.Calls.Select(c => c.NewUnits!.Value));
        rig.Callback = _ => throw new InvalidOperationException("not the leader");
        rig.Minutes(1);
        var failed = Assert.Single(rig.Scaler.Events, e => e.Kind == ScalingEventKind.ApplyFailed);
        Assert.Contains("not the leader", failed.Reason);
        rig.Callback = null;
        rig.Apply = true;
        rig.Minutes(1);
        Assert.Equal(2, rig.Units);
    }

    [Fact]
    public async Task A_tick_while_the_callback_still_runs_is_skipped()
    {
        using var rig = new Rig { Ram = (long)(0.90 * Unit) };
        var pending = new TaskCompletionSource();
        rig.Callback = _ => pending.Task;
        rig.Scaler.Start();
        rig.Minutes(3);
        Assert.Single(rig.Calls);
        Assert.Equal(2, rig.Scaler.SkippedTicks);
        rig.Units = 2;
        pending.SetResult();
        await rig.Scaler.CheckNowAsync();  // waits for the running check to let go, then checks
        Assert.Equal(2, rig.Scaler.Checks);
        rig.Minutes(1);
        Assert.Equal((3, 2L), (rig.Scaler.Checks, rig.Scaler.SkippedTicks));
    }

    [Fact]
    public async Task It_decides_on_the_worst_member()
    {
        using var rig = new Rig();
        var now = rig.Time.GetUtcNow();
        rig.Scaler.Report("b", new MemorySample(now, (long)(0.95 * Unit), 0));
        rig.Scaler.Report("c", new MemorySample(now, (long)(0.60 * Unit), 0));
        var d = await rig.Scaler.CheckNowAsync();
        Assert.Equal("b", d.Member);
        Assert.Equal(2, d.NewUnits);  // ⌈0.95 / 0.6⌉
        Assert.StartsWith("member b: RAM in use", d.Reason);
        Assert.Equal("b", Assert.Single(rig.Calls).Member);
    }

    [Fact]
    public void A_rising_member_beats_a_fuller_steady_one()
    {
        using var rig = new Rig();
        rig.Scaler.Start();
        for (var m = 0; m < 12; m++)
        {
            var now = rig.Time.GetUtcNow();
            rig.Scaler.Report("steady", new MemorySample(now, (long)(0.75 * Unit), 0));
            rig.Scaler.Report("rising", new MemorySample(now, (long)(Unit * (0.30 + 0.03 * m)), 0));
            rig.Minutes(1);
        }
        var up = rig.Calls.First();
        Assert.Equal("rising", up.Member);
        Assert.Equal(ScalingTriggers.RamTrend, up.Triggers);
    }

    [Fact]
    public void A_member_that_stops_reporting_is_left_out()
    {
        using var rig = new Rig();
        rig.Scaler.Start();
        rig.Scaler.Report("b", new MemorySample(rig.Time.GetUtcNow(), (long)(0.70 * Unit), 0));
        rig.Minutes(1);
        Assert.Equal("b", rig.Scaler.LastDecision!.Member);  // 70% beats the local 40%
        rig.Minutes(3);                                        // 4 intervals silent > 3
        Assert.Equal("local", rig.Scaler.LastDecision!.Member);
        Assert.False(rig.Scaler.LatestSamples.ContainsKey("b"));
        Assert.True(rig.Scaler.LatestSamples.ContainsKey("local"));
    }

    [Fact]
    public void Quiet_checks_are_logged_on_change_and_hourly_and_the_log_is_bounded()
    {
        using var rig = new Rig();
        rig.Scaler.Start();
        rig.Minutes(60);
        Assert.Single(rig.Scaler.Events);  // the first check, at minute 1
        rig.Minutes(1);
        Assert.Equal(2, rig.Scaler.Events.Count);  // an hour after it
        Assert.All(rig.Scaler.Events, e => Assert.Equal(ScalingEventKind.NoChange, e.Kind));
        Assert.Contains("RAM 102.4 MiB", rig.Scaler.Events[0].Samples);

        using var small = new Rig(new ScalingOptions { EventLogCapacity = 5, NoChangeLogInterval = TimeSpan.Zero });
        small.Scaler.Start();
        small.Minutes(20);
        Assert.Equal(5, small.Scaler.Events.Count);
        Assert.Equal(Start.AddMinutes(20), small.Scaler.Events[^1].Time);
        Assert.Equal(Start.AddMinutes(16), small.Scaler.Events[0].Time);
    }

    [Fact]
    public void Capped_at_the_maximum_is_logged_without_calling_back()
    {
        using var rig = new Rig(new ScalingOptions { MaxUnits = 1 }) { Ram = (long)(0.95 * Unit) };
        rig.Scaler.Start();
        rig.Minutes(10);
        Assert.Empty(rig.Calls);
        var capped = Assert.Single(rig.Scaler.Events);
        Assert.Equal(ScalingEventKind.Capped, capped.Kind);
        Assert.Contains("already at the maximum of 1 unit", capped.Reason);
    }

    [Fact]
    public void A_manual_scale_down_is_judged_on_the_worst_member()
    {
        using var rig = new Rig { Units = 2 };
        rig.Scaler.Report("local", new MemorySample(rig.Time.GetUtcNow(), 50 * MiB, 100 * MiB));
        rig.Scaler.Report("b", new MemorySample(rig.Time.GetUtcNow(), 60 * MiB, (long)(1.3 * GiB)));
        var refused = rig.Scaler.CheckManual(1);
        Assert.False(refused.Allowed);
        Assert.Equal("storage in use 1.3 GiB exceeds the quota of 1 GiB that 1 unit gives; delete or compact data first", refused.Reason);
        var e = Assert.Single(rig.Scaler.Events);
        Assert.Equal(ScalingEventKind.ManualRefused, e.Kind);
        Assert.Contains("storage 1.3 GiB (b)", e.Samples);
        Assert.True(rig.Scaler.CheckManual(3).Allowed);
    }
}
