using System.Globalization;

namespace Cairn.Scaling;

/// <summary>
/// Decides unit counts from samples: pure, no clock, no I/O (the <see cref="Autoscaler"/> feeds it). It scales up
/// <list type="number">
/// <item>when RAM in use is above <see cref="ScalingOptions.ScaleUpThreshold"/> of provisioned RAM;</item>
/// <item>when the trend over the last <see cref="ScalingOptions.TrendWindow"/> samples is a sustained rise whose
/// projection <see cref="ScalingOptions.TrendHorizon"/> ahead is above that threshold (see <see cref="Trend"/>);</item>
/// <item>when storage in use is above <see cref="ScalingOptions.StorageThreshold"/> of the storage quota, so writes
/// never meet NOSPACE while units can still grow;</item>
/// </list>
/// to the fewest units that bring the larger of RAM in use (or its projection, when the trend fired) and storage in use
/// to at most <see cref="ScalingOptions.TargetUtilization"/>, and always at least one more. It never scales down:
/// that is an operator's call, checked by <see cref="CheckManual"/>.
/// </summary>
public sealed class ScalingPolicy
{
    /// <summary>A policy over validated <paramref name="options"/>.</summary>
    public ScalingPolicy(ScalingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        Options = options;
    }

    /// <summary>The options decided with.</summary>
    public ScalingOptions Options { get; }

    /// <summary>The most units the policy will provision.</summary>
    public int UnitCeiling => Options.MaxUnits ?? (int)Math.Min(int.MaxValue, long.MaxValue / Options.UnitStorageBytes);

    /// <summary>The targets of <paramref name="units"/> units under these options.</summary>
    public ScalingTargets Targets(int units) => ScalingTargets.For(units, Options);

    /// <summary>The larger of RAM and storage in use as fractions of what <paramref name="units"/> provide.</summary>
    public double Utilization(MemorySample sample, int units)
    {
        ArgumentNullException.ThrowIfNull(sample);
        var ram = (double)units * Options.UnitRamBytes;
        return Math.Max(sample.RamBytes / ram, sample.StorageBytes / (ram * Options.StorageRatio));
    }

    /// <summary>Decides on <paramref name="history"/> (oldest first, one member's samples) with <paramref name="currentUnits"/> in force.</summary>
    public ScalingDecision Decide(IReadOnlyList<MemorySample> history, int currentUnits)
    {
        ArgumentNullException.ThrowIfNull(history);
        ArgumentOutOfRangeException.ThrowIfLessThan(currentUnits, 1);
        if (history.Count == 0)
        {
            return new ScalingDecision { CurrentUnits = currentUnits, Reason = "no samples yet" };
        }
        var o = Options;
        var window = Window(history, o.TrendWindow);
        var latest = window[^1];
        double ram = (double)currentUnits * o.UnitRamBytes;
        double quota = ram * o.StorageRatio;
        double ramLimit = o.ScaleUpThreshold * ram;
        double storageLimit = o.StorageThreshold * quota;

        Trend? trend = window.Length >= o.TrendWindow && o.TrendHorizon > TimeSpan.Zero ? Trend.Fit(window) : null;
        double? projected = trend?.ProjectAhead(o.TrendHorizon);

        var triggers = ScalingTriggers.None;
        if (latest.RamBytes > ramLimit) triggers |= ScalingTriggers.RamThreshold;
        if (trend is { Sustained: true } && projected > ramLimit) triggers |= ScalingTriggers.RamTrend;
        if (latest.StorageBytes > storageLimit) triggers |= ScalingTriggers.Storage;

        var decision = new ScalingDecision
        {
            CurrentUnits = currentUnits,
            Reason = "",
            Triggers = triggers,
            Samples = window,
            ProjectedRamBytes = projected is double p ? (long)Math.Max(0, p) : null,
            Utilization = Utilization(latest, currentUnits),
        };
        if (triggers == ScalingTriggers.None)
        {
            return decision with { Reason = Steady(latest, currentUnits, trend) };
        }

        // Enough units for the larger need at the target utilization, and at least one more than now.
        double ramNeed = Math.Max(latest.RamBytes, (triggers & ScalingTriggers.RamTrend) != 0 ? projected!.Value : 0);
        double unitsForRam = Math.Ceiling(ramNeed / (o.TargetUtilization * o.UnitRamBytes));
        double unitsForStorage = Math.Ceiling(latest.StorageBytes / (o.TargetUtilization * o.UnitStorageBytes));
        double wanted = Math.Max(currentUnits + 1.0, Math.Max(unitsForRam, unitsForStorage));
        var why = Why(triggers, latest, currentUnits, projected, trend);
        var ceiling = UnitCeiling;
        if (currentUnits >= ceiling)
        {
            return decision with
            {
                Capped = true,
                Reason = $"{why}; already at the maximum of {Units(ceiling)} ({Number(wanted)} wanted): raise MaxUnits, or reduce the load",
            };
        }
        if (wanted > ceiling)
        {
            return decision with
            {
                NewUnits = ceiling,
                Capped = true,
                Reason = $"{why}; {Number(wanted)} units wanted, capped at the maximum of {Units(ceiling)}, which {Brings(ceiling, ramNeed, latest.StorageBytes)}",
            };
        }
        var units = (int)wanted;
        return decision with { NewUnits = units, Reason = $"{why}; {Units(units)} {Brings(units, ramNeed, latest.StorageBytes)}" };
    }

    /// <summary>
    /// Whether an operator may set <paramref name="requestedUnits"/>: any count from 1 to the maximum, except a
    /// scale-down that would leave storage in use above the new quota or RAM in use above the new RAM (judged on
    /// <paramref name="latest"/>; a scale-down with no sample yet is refused).
    /// </summary>
    public ManualScalingCheck CheckManual(int requestedUnits, MemorySample? latest, int currentUnits)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(currentUnits, 1);
        var o = Options;
        ManualScalingCheck Refuse(string reason) => new(false, currentUnits, requestedUnits, reason);
        ManualScalingCheck Allow(string reason) => new(true, currentUnits, requestedUnits, reason);

        if (requestedUnits < 1) return Refuse($"{requestedUnits} units is not a deployment: ask for at least 1 unit");
        if (requestedUnits > UnitCeiling)
        {
            return Refuse($"{Units(requestedUnits)} is above the maximum of {Units(UnitCeiling)}: raise MaxUnits first");
        }
        if (requestedUnits == currentUnits) return Allow($"already {Units(currentUnits)}; nothing to change");
        var targets = Targets(requestedUnits);
        if (requestedUnits > currentUnits)
        {
            return Allow($"scale up from {Units(currentUnits)} to {Units(requestedUnits)}: {ByteSize.Format(targets.RamBytes)} RAM, {ByteSize.Format(targets.StorageQuotaBytes)} storage quota");
        }
        if (latest is null)
        {
            return Refuse($"no sample of memory and storage in use yet, so a scale-down to {Units(requestedUnits)} cannot be checked; wait for the next check");
        }
        if (latest.StorageBytes > targets.StorageQuotaBytes)
        {
            return Refuse($"storage in use {ByteSize.Format(latest.StorageBytes)} exceeds the quota of {ByteSize.Format(targets.StorageQuotaBytes)} that {Units(requestedUnits)} gives; delete or compact data first");
        }
        if (latest.RamBytes > targets.RamBytes)
        {
            return Refuse($"RAM in use {ByteSize.Format(latest.RamBytes)} exceeds the {ByteSize.Format(targets.RamBytes)} that {Units(requestedUnits)} gives; reduce the load (fewer watches, a smaller page cache) first");
        }
        var reason = $"scale down from {Units(currentUnits)} to {Units(requestedUnits)}: RAM in use {ByteSize.Format(latest.RamBytes)} of {ByteSize.Format(targets.RamBytes)}, storage in use {ByteSize.Format(latest.StorageBytes)} of {ByteSize.Format(targets.StorageQuotaBytes)}";
        if (latest.RamBytes > o.ScaleUpThreshold * targets.RamBytes || latest.StorageBytes > o.StorageThreshold * targets.StorageQuotaBytes)
        {
            reason += "; note this is above the scale-up threshold, so the autoscaler will add units again at its next check";
        }
        return Allow(reason);
    }

    private static MemorySample[] Window(IReadOnlyList<MemorySample> history, int size)
    {
        var count = Math.Min(size, history.Count);
        var window = new MemorySample[count];
        for (var i = 0; i < count; i++) window[i] = history[history.Count - count + i];
        return window;
    }

    private string Why(ScalingTriggers triggers, MemorySample latest, int units, double? projected, Trend? trend)
    {
        var o = Options;
        var ram = units * o.UnitRamBytes;
        var parts = new List<string>(3);
        if ((triggers & ScalingTriggers.RamThreshold) != 0)
        {
            parts.Add($"RAM in use {ByteSize.Format(latest.RamBytes)} is {Percent(latest.RamBytes / (double)ram)} of the {ByteSize.Format(ram)} that {Units(units)} gives, above the {Percent(o.ScaleUpThreshold)} threshold");
        }
        if ((triggers & ScalingTriggers.RamTrend) != 0)
        {
            parts.Add($"RAM in use {ByteSize.Format(latest.RamBytes)} is rising {PerMinute(trend!.Value)} and projects to {ByteSize.Format((long)projected!.Value)} within {Minutes(o.TrendHorizon)}, above {Percent(o.ScaleUpThreshold)} of {ByteSize.Format(ram)}");
        }
        if ((triggers & ScalingTriggers.Storage) != 0)
        {
            var quota = ram * o.StorageRatio;
            parts.Add($"storage in use {ByteSize.Format(latest.StorageBytes)} is {Percent(latest.StorageBytes / (double)quota)} of the {ByteSize.Format(quota)} quota that {Units(units)} gives, above the {Percent(o.StorageThreshold)} threshold");
        }
        return string.Join("; ", parts);
    }

    private string Brings(int units, double ramNeed, long storage)
    {
        var t = Targets(units);
        return $"bring{(units == 1 ? "s" : "")} RAM to {Percent(ramNeed / t.RamBytes)} and storage to {Percent(storage / (double)t.StorageQuotaBytes)}";
    }

    private string Steady(MemorySample latest, int units, Trend? trend)
    {
        var t = Targets(units);
        var text = $"no change: RAM in use {ByteSize.Format(latest.RamBytes)} of {ByteSize.Format(t.RamBytes)} ({Percent(latest.RamBytes / (double)t.RamBytes)}), storage in use {ByteSize.Format(latest.StorageBytes)} of {ByteSize.Format(t.StorageQuotaBytes)} ({Percent(latest.StorageBytes / (double)t.StorageQuotaBytes)})";
        if (trend is { } tr) text += $", trend {PerMinute(tr)}{(tr.Sustained ? "" : " (not a sustained rise)")}";
        return text;
    }

    private static string Units(long n) => n == 1 ? "1 unit" : $"{n.ToString(CultureInfo.InvariantCulture)} units";

    private static string Number(double n) => n.ToString("0", CultureInfo.InvariantCulture);

    private static string Percent(double fraction) => (fraction * 100).ToString("0", CultureInfo.InvariantCulture) + "%";

    private static string Minutes(TimeSpan span) => span.TotalMinutes.ToString("0.#", CultureInfo.InvariantCulture) + " min";

    private static string PerMinute(Trend trend)
    {
        var perMinute = trend.SlopeBytesPerSecond * 60;
        return (perMinute < 0 ? "-" : "+") + ByteSize.Format((long)Math.Abs(perMinute)) + "/min";
    }
}
