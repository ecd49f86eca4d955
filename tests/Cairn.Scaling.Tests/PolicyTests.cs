using static Cairn.Scaling.Tests.Trace;

namespace Cairn.Scaling.Tests;

/// <summary>The policy against its stated properties, over traces replayed one sample a minute (fake time).</summary>
public sealed class PolicyTests
{
    private static readonly ScalingOptions Defaults = new();
    private static readonly ScalingPolicy Policy = new(Defaults);
    private const long Unit = 256 * MiB;

    [Fact]
    public void Steady_load_with_noise_never_scales()
    {
        foreach (var seed in new[] { 1, 2, 3, 4, 5 })
        {
            var rng = new Random(seed);
            // 60% of one unit ± 3%, a day of minutes; storage steady at 60% of the quota.
            var trace = Make(24 * 60, _ => (long)(Unit * (0.60 + (rng.NextDouble() - 0.5) * 0.06)), _ => (long)(0.60 * GiB));
            var steps = Replay(Policy, trace);
            var scaled = steps.FirstOrDefault(s => s.Decision.NewUnits is not null);
            Assert.True(scaled is null, $"seed {seed}: scaled at minute {scaled?.Index}: {scaled?.Decision.Reason}");
        }
    }

    [Theory]
    [InlineData(0.005)]
    [InlineData(0.01)]
    [InlineData(0.02)]
    [InlineData(0.04)]
    public void A_sustained_rise_scales_before_the_threshold_is_crossed(double fractionPerMinute)
    {
        // From 30% of a unit, rising by a fraction of a unit a minute with ±0.5% noise, for long enough to need many units.
        var rng = new Random(7);
        var trace = Make(600, m => (long)(Unit * (0.30 + fractionPerMinute * m + (rng.NextDouble() - 0.5) * 0.01)));
        var steps = Replay(Policy, trace);
        var first = steps.First(s => s.Decision.ScalesUp);
        Assert.True(first.Sample.RamBytes < Defaults.ScaleUpThreshold * Unit,
            $"first scale-up at minute {first.Index} with {ByteSize.Format(first.Sample.RamBytes)} in use, past the threshold: {first.Decision.Reason}");
        Assert.Equal(ScalingTriggers.RamTrend, first.Decision.Triggers);
        Assert.Contains("rising", first.Decision.Reason);
        // Property: once the trend window has filled, RAM in use never passes the threshold of the units in force.
        foreach (var s in steps.Skip(Defaults.TrendWindow))
        {
            Assert.True(s.Sample.RamBytes <= Defaults.ScaleUpThreshold * s.Units * Unit,
                $"minute {s.Index}: {ByteSize.Format(s.Sample.RamBytes)} in use with {s.Units} units");
        }
    }

    [Fact]
    public void The_trend_rule_needs_a_full_window()
    {
        // Steeply rising but only TrendWindow-1 samples, all under the threshold: no trend yet.
        var trace = Make(Defaults.TrendWindow - 1, m => (long)(Unit * (0.30 + 0.05 * m)));
        var d = Policy.Decide(trace, 1);
        Assert.Null(d.NewUnits);
        Assert.Null(d.ProjectedRamBytes);
        trace.Add(At(trace.Count, (long)(Unit * (0.30 + 0.05 * trace.Count))));
        Assert.Equal(ScalingTriggers.RamTrend, Policy.Decide(trace, 1).Triggers);
    }

    [Fact]
    public void A_spike_below_the_threshold_shorter_than_the_window_never_scales_wherever_it_sits()
    {
        // Base 40%, spike to 79% (under the 80% threshold): every length shorter than the window, at every position
        // relative to the end of the history, including a spike still going on at the latest sample.
        var w = Defaults.TrendWindow;
        for (var length = 1; length < w; length++)
        {
            for (var start = 0; start < 2 * w; start++)
            {
                var trace = Make(3 * w, m => m >= start + w && m < start + w + length ? (long)(0.79 * Unit) : (long)(0.40 * Unit));
                foreach (var s in Replay(Policy, trace))
                {
                    Assert.True(s.Decision.NewUnits is null, $"spike of {length} at {start + w}: scaled at minute {s.Index}: {s.Decision.Reason}");
                }
            }
        }
    }

    [Fact]
    public void A_spike_over_a_noisy_baseline_shorter_than_the_window_never_scales_wherever_it_sits()
    {
        // Regression (found replaying the documentation's trace): ±2% noise on the baseline gave the older half of the
        // window a small positive slope, and the spike's one rising edge then counted as a "sustained" rise.
        var w = Defaults.TrendWindow;
        foreach (var seed in new[] { 1, 2, 3 })
        {
            for (var length = 1; length < w; length++)
            {
                for (var start = 0; start < 2 * w; start++)
                {
                    var rng = new Random(seed * 1000 + length * 50 + start);
                    var trace = Make(3 * w, m => (long)(Unit * ((m >= start + w && m < start + w + length ? 0.75 : 0.40) + (rng.NextDouble() - 0.5) * 0.04)));
                    foreach (var s in Replay(Policy, trace))
                    {
                        Assert.True(s.Decision.NewUnits is null, $"seed {seed}, spike of {length} at {start + w}: scaled at minute {s.Index}: {s.Decision.Reason}");
                    }
                }
            }
        }
    }

    [Fact]
    public void A_spike_above_the_threshold_scales_by_the_threshold_rule_only()
    {
        // The trend rule ignores the spike; the threshold rule sees RAM in use above 80% and scales for it.
        var trace = Make(20, m => m is 15 or 16 ? (long)(0.90 * Unit) : (long)(0.40 * Unit));
        var steps = Replay(Policy, trace);
        var up = Assert.Single(steps, s => s.Decision.NewUnits is not null);
        Assert.Equal(15, up.Index);
        Assert.Equal(ScalingTriggers.RamThreshold, up.Decision.Triggers);
        Assert.Equal(2, up.Decision.NewUnits);  // 0.9 unit at 60% target → ⌈1.5⌉
        Assert.Contains("above the 80% threshold", up.Decision.Reason);
    }

    [Fact]
    public void Falling_usage_never_scales_down()
    {
        // Up to 3 GiB and back to nothing: units only ever grow, and stay where they got to.
        var trace = Make(400, m => (long)(3.0 * GiB * Math.Sin(Math.PI * m / 400)));
        var steps = Replay(Policy, trace);
        var peak = steps.Max(s => s.Units);
        Assert.True(peak > 10, $"the rise should have needed many units, got {peak}");
        for (var i = 1; i < steps.Count; i++) Assert.True(steps[i].Units >= steps[i - 1].Units);
        Assert.Equal(peak, steps[^1].Units);
        var idle = Policy.Decide([At(0, 1 * MiB), At(1, 1 * MiB)], 50);
        Assert.Null(idle.NewUnits);
        Assert.StartsWith("no change", idle.Reason);
    }

    [Fact]
    public void Storage_nearing_the_quota_scales_up_before_it_is_full()
    {
        // 1 unit: quota 1 GiB. Storage grows 10 MiB a minute while RAM stays low; the quota must never be reached.
        var trace = Make(300, _ => 50 * MiB, m => 100 * MiB + m * 10 * MiB);
        var steps = Replay(Policy, trace);
        var first = steps.First(s => s.Decision.ScalesUp);
        Assert.Equal(ScalingTriggers.Storage, first.Decision.Triggers);
        Assert.True(first.Sample.StorageBytes > 0.8 * GiB && first.Sample.StorageBytes < GiB);
        Assert.Equal(2, first.Decision.NewUnits);  // 820 MiB at 60% of 1 GiB per unit → ⌈1.33⌉
        Assert.Contains("quota", first.Decision.Reason);
        foreach (var s in steps) Assert.True(s.Sample.StorageBytes < ScalingTargets.For(s.Units, Defaults).StorageQuotaBytes, $"minute {s.Index}: quota reached");
    }

    [Fact]
    public void The_new_count_covers_the_larger_of_ram_and_storage_at_the_target()
    {
        var d = Policy.Decide([At(0, (long)(0.85 * Unit), (long)(2.5 * GiB))], 1);
        Assert.Equal(ScalingTriggers.RamThreshold | ScalingTriggers.Storage, d.Triggers);
        Assert.Equal(5, d.NewUnits);  // storage: 2.5 GiB / (0.6 × 1 GiB) = 4.17 → 5; RAM would need 2
        var t = ScalingTargets.For(d.NewUnits!.Value, Defaults);
        Assert.True(2.5 * GiB <= Defaults.TargetUtilization * t.StorageQuotaBytes);
    }

    [Fact]
    public void The_maximum_is_respected_and_said()
    {
        var capped = new ScalingPolicy(Defaults with { MaxUnits = 3 });
        var d = capped.Decide([At(0, 2 * GiB)], 1);
        Assert.Equal(3, d.NewUnits);
        Assert.True(d.Capped);
        Assert.Contains("capped at the maximum of 3 units", d.Reason);
        var atMax = capped.Decide([At(0, 2 * GiB)], 3);
        Assert.Null(atMax.NewUnits);
        Assert.True(atMax.Capped);
        Assert.Contains("already at the maximum of 3 units", atMax.Reason);
        // A long rise never takes a replay above the maximum.
        var steps = Replay(capped, Make(500, m => m * 10 * MiB));
        Assert.Equal(3, steps.Max(s => s.Units));
    }

    [Fact]
    public void Manual_scale_down_is_refused_when_the_data_does_not_fit_and_allowed_when_it_does()
    {
        var full = At(0, 100 * MiB, (long)(1.3 * GiB));
        var refused = Policy.CheckManual(1, full, 2);
        Assert.False(refused.Allowed);
        Assert.Equal("storage in use 1.3 GiB exceeds the quota of 1 GiB that 1 unit gives; delete or compact data first", refused.Reason);

        var busy = Policy.CheckManual(1, At(0, 300 * MiB, 100 * MiB), 2);
        Assert.False(busy.Allowed);
        Assert.StartsWith("RAM in use 300 MiB exceeds the 256 MiB that 1 unit gives", busy.Reason);

        var fits = Policy.CheckManual(2, full, 4);
        Assert.True(fits.Allowed, fits.Reason);
        var fitsButHot = Policy.CheckManual(1, At(0, 230 * MiB, 100 * MiB), 2);
        Assert.True(fitsButHot.Allowed);
        Assert.Contains("will add units again", fitsButHot.Reason);

        Assert.True(Policy.CheckManual(8, null, 2).Allowed);
        Assert.False(Policy.CheckManual(1, null, 2).Allowed);
        Assert.False(Policy.CheckManual(0, full, 2).Allowed);
        var max = new ScalingPolicy(Defaults with { MaxUnits = 4 }).CheckManual(5, full, 2);
        Assert.False(max.Allowed);
        Assert.Contains("raise MaxUnits", max.Reason);
    }

    [Fact]
    public void A_decision_carries_the_samples_that_led_to_it()
    {
        var trace = Make(25, m => (long)(Unit * (0.30 + 0.02 * m)));
        var d = Policy.Decide(trace, 1);
        Assert.Equal(trace.TakeLast(Defaults.TrendWindow), d.Samples);
        Assert.NotNull(d.ProjectedRamBytes);
        // The projection is the least-squares line 15 minutes past the latest sample: here the data is exactly linear.
        var expected = Unit * (0.30 + 0.02 * (24 + 15));
        Assert.InRange(d.ProjectedRamBytes!.Value, expected - MiB, expected + MiB);
    }
}
