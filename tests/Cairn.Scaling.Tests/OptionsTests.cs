using static Cairn.Scaling.Tests.Trace;

namespace Cairn.Scaling.Tests;

/// <summary>Options refuse nonsense naming the fix; targets follow from units; the GC limit is set only where one was.</summary>
public sealed class OptionsTests
{
    public static TheoryData<ScalingOptions, string> Nonsense => new()
    {
        { new ScalingOptions { UnitRamBytes = 1000 }, "from 1 MiB to 1 TiB" },
        { new ScalingOptions { StorageRatio = 0 }, "use 1 to 1024" },
        { new ScalingOptions { InitialUnits = 0 }, "at least 1 unit" },
        { new ScalingOptions { InitialUnits = 4, MaxUnits = 2 }, "raise MaxUnits, lower InitialUnits" },
        { new ScalingOptions { Interval = TimeSpan.Zero }, "positive interval" },
        { new ScalingOptions { ScaleUpThreshold = 1.5 }, "at most 1" },
        { new ScalingOptions { TargetUtilization = 0.85 }, "lower TargetUtilization" },
        { new ScalingOptions { StorageThreshold = 0.5 }, "lower TargetUtilization" },
        { new ScalingOptions { TrendWindow = 2 }, "4 to 10000 samples" },
        { new ScalingOptions { TrendHorizon = TimeSpan.FromMinutes(-1) }, "zero (trend rule off)" },
        { new ScalingOptions { PageCacheFraction = 0.5, GcHeapLimitFraction = 0.75 }, "lower one of them" },
        { new ScalingOptions { EventLogCapacity = 0 }, "at least 1 event" },
        { new ScalingOptions { StaleAfterIntervals = 0 }, "at least 1 interval" },
        { new ScalingOptions { UnitRamBytes = 1L << 40, StorageRatio = 1024, MaxUnits = 100_000 }, "lower MaxUnits" },
    };

    [Theory]
    [MemberData(nameof(Nonsense))]
    public void Validate_refuses_nonsense_naming_the_fix(ScalingOptions options, string fix)
    {
        var e = Assert.Throws<ArgumentException>(options.Validate);
        Assert.Contains(fix, e.Message);
        Assert.Throws<ArgumentException>(() => new ScalingPolicy(options));
    }

    [Fact]
    public void The_defaults_are_a_256_MiB_unit_with_1_GiB_of_storage()
    {
        var o = new ScalingOptions();
        o.Validate();
        Assert.Equal((256 * MiB, 4, 1, (int?)null, TimeSpan.FromMinutes(1)), (o.UnitRamBytes, o.StorageRatio, o.InitialUnits, o.MaxUnits, o.Interval));
        Assert.Equal((0.80, 0.60, 10, TimeSpan.FromMinutes(15), 0.80), (o.ScaleUpThreshold, o.TargetUtilization, o.TrendWindow, o.TrendHorizon, o.StorageThreshold));
        Assert.Equal(new ScalingTargets(1, 256 * MiB, 1 * GiB, 64 * MiB, 192 * MiB), ScalingTargets.For(1, o));
        Assert.Equal(new ScalingTargets(3, 768 * MiB, 3 * GiB, 192 * MiB, 576 * MiB), ScalingTargets.For(3, o));
        Assert.Throws<ArgumentOutOfRangeException>(() => ScalingTargets.For(0, o));
    }

    [Fact]
    public void The_gc_limit_is_left_alone_when_none_was_configured_at_start()
    {
        var targets = ScalingTargets.For(2, new ScalingOptions());
        var sets = 0;
        var refreshes = 0;
        var r = ScalingTargets.ApplyGcLimit(targets, configuredAtStart: false, _ => null, (_, _) => sets++, () => refreshes++);
        Assert.False(r.Applied);
        Assert.Contains("not started with one", r.Description);
        Assert.Equal((0, 0), (sets, refreshes));
        // This test process runs without a heap hard limit, so the public entry point leaves the GC alone too.
        Assert.False(ScalingTargets.GcHeapLimitConfiguredAtStart);
        Assert.False(ScalingTargets.ApplyGcLimit(targets).Applied);
    }

    [Fact]
    public void The_gc_limit_is_set_and_refreshed_when_one_was_configured_and_put_back_when_refused()
    {
        var data = new Dictionary<string, object?> { ["GCHeapHardLimit"] = (ulong)(192 * MiB) };
        var refreshes = 0;
        var refuse = false;
        GcLimitResult Apply(int units) => ScalingTargets.ApplyGcLimit(ScalingTargets.For(units, new ScalingOptions()), true,
            k => data.GetValueOrDefault(k), (k, v) => data[k] = v,
            () => { refreshes++; if (refuse) throw new InvalidOperationException("hard limit too low"); });

        var up = Apply(2);
        Assert.True(up.Applied);
        Assert.Equal((192 * MiB, 384 * MiB), (up.PreviousLimitBytes, up.LimitBytes));
        Assert.Equal((ulong)(384 * MiB), data["GCHeapHardLimit"]);
        Assert.Equal("GC heap hard limit set from 192 MiB to 384 MiB (2 units)", up.Description);
        Assert.Equal(1, refreshes);

        Assert.False(Apply(2).Applied);  // already there: no refresh
        Assert.Equal(1, refreshes);

        refuse = true;
        var down = Apply(1);
        Assert.False(down.Applied);
        Assert.Contains("refused by the GC", down.Description);
        Assert.Equal((ulong)(384 * MiB), data["GCHeapHardLimit"]);  // put back
    }

    [Theory]
    [InlineData(0, "0 B")]
    [InlineData(512, "512 B")]
    [InlineData(1536, "1.5 KiB")]
    [InlineData(256L << 20, "256 MiB")]
    [InlineData(1L << 30, "1 GiB")]
    [InlineData(1395864371, "1.3 GiB")]
    [InlineData((1L << 30) - 1, "1 GiB")]
    [InlineData(-(3L << 20), "-3 MiB")]
    public void Byte_sizes_read_as_people_write_them(long bytes, string text) => Assert.Equal(text, ByteSize.Format(bytes));
}
