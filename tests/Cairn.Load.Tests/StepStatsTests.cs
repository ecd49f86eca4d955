using Cairn.Load;

namespace Cairn.Load.Tests;

public class StepStatsTests
{
    [Fact]
    public void Percentiles_of_a_uniform_distribution()
    {
        var stats = new StepStats("uniform");
        // 1 µs … 10,000 µs, each once, in a scrambled order.
        foreach (var v in Enumerable.Range(1, 10_000).OrderBy(i => (i * 7919L) % 10_007)) stats.RecordOkMicroseconds(v);
        stats.Sample(1);
        var r = stats.ToReport(2);

        Assert.Equal(10_000, r.Ok);
        Assert.Equal(5_000, r.OpsPerSecond);
        // HdrHistogram with three significant digits: within 0.1 % of the exact order statistics.
        Assert.Equal(5.000, r.P50Ms, 0.005);
        Assert.Equal(9.000, r.P90Ms, 0.009);
        Assert.Equal(9.900, r.P99Ms, 0.010);
        Assert.Equal(9.990, r.P999Ms, 0.010);
        Assert.Equal(10.000, r.MaxMs, 0.010);
        Assert.Equal(5.0005, r.MeanMs, 0.005);
    }

    [Fact]
    public void The_tail_of_a_bimodal_distribution_shows_past_p99()
    {
        var stats = new StepStats("bimodal");
        for (var i = 0; i < 9_990; i++) stats.RecordOkMicroseconds(1_000);        // 99.9 % at 1 ms
        for (var i = 0; i < 10; i++) stats.RecordOkMicroseconds(250_000);         // 0.1 % at 250 ms
        stats.Sample(1);
        var r = stats.ToReport(1);

        Assert.Equal(1.0, r.P50Ms, 0.001);
        Assert.Equal(1.0, r.P99Ms, 0.001);
        Assert.Equal(1.0, r.P999Ms, 0.001);    // the 9,990th of 10,000 is still 1 ms
        Assert.Equal(250, r.MaxMs, 0.25);
        Assert.Equal(10, stats.CountAtOrAboveMs(200));
    }

    [Fact]
    public void The_timeline_has_one_point_per_sample_with_that_interval_only()
    {
        var stats = new StepStats("t");
        for (var i = 0; i < 100; i++) stats.RecordOkMicroseconds(2_000);
        stats.RecordError("Busy");
        var first = stats.Sample(1);
        for (var i = 0; i < 50; i++) stats.RecordOkMicroseconds(8_000);
        var second = stats.Sample(2);
        var empty = stats.Sample(3, keepEmpty: false);

        Assert.Equal(new TimelinePoint(1, 100, 1, 2, 2, 2), first with { P50Ms = Math.Round(first.P50Ms, 2), P99Ms = Math.Round(first.P99Ms, 2), MaxMs = Math.Round(first.MaxMs, 2) });
        Assert.Equal(50, second.Ok);
        Assert.Equal(0, second.Errors);
        Assert.Equal(8.0, second.P50Ms, 0.01);
        Assert.Equal(0, empty.Ok);
        var report = stats.ToReport(2);
        Assert.Equal(2, report.Timeline.Count);
        Assert.Equal(150, report.Ok);
        Assert.Equal(("Busy", 1L), Assert.Single(report.ErrorsByKind));
    }

    [Fact]
    public void Values_outside_the_range_are_clamped_not_thrown()
    {
        var stats = new StepStats("clamp");
        stats.RecordOkMicroseconds(0);
        stats.RecordOkMicroseconds(-5);
        stats.RecordOkMicroseconds(long.MaxValue);
        stats.Sample(1);
        Assert.Equal(3, stats.ToReport(1).Ok);
    }

    [Fact]
    public void Reset_forgets_the_warm_up()
    {
        var stats = new StepStats("warm");
        stats.RecordOkMicroseconds(900_000);
        stats.RecordError("Timeout");
        stats.Sample(1);
        stats.Reset();
        stats.RecordOkMicroseconds(1_000);
        stats.Sample(1);
        var r = stats.ToReport(1);
        Assert.Equal(1, r.Ok);
        Assert.Equal(0, r.Errors);
        Assert.Equal(1.0, r.MaxMs, 0.01);
        Assert.Single(r.Timeline);
    }
}
