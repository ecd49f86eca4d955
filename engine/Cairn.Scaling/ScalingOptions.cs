namespace Cairn.Scaling;

/// <summary>
/// Units and the autoscaling policy. A unit is <see cref="UnitRamBytes"/> of RAM plus <see cref="StorageRatio"/> times
/// as much storage (256 MiB + 1 GiB by default). Every limit is checked by <see cref="Validate"/>.
/// </summary>
public sealed record ScalingOptions
{
    /// <summary>RAM in one unit, in bytes.</summary>
    public long UnitRamBytes { get; init; } = 256L << 20;

    /// <summary>Storage per byte of RAM: a unit's storage quota is this times <see cref="UnitRamBytes"/>.</summary>
    public int StorageRatio { get; init; } = 4;

    /// <summary>Units a new deployment starts with.</summary>
    public int InitialUnits { get; init; } = 1;

    /// <summary>The most units the autoscaler (or an operator) may provision; null for no maximum.</summary>
    public int? MaxUnits { get; init; }

    /// <summary>Time between checks.</summary>
    public TimeSpan Interval { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Scale up when RAM in use is above this fraction of provisioned RAM (now, or projected by the trend).</summary>
    public double ScaleUpThreshold { get; init; } = 0.80;

    /// <summary>A scale-up adds enough units to bring RAM (or projected RAM) and storage in use to at most this fraction.</summary>
    public double TargetUtilization { get; init; } = 0.60;

    /// <summary>Samples the trend is fitted over (the last this many checks, one <see cref="Interval"/> apart).</summary>
    public int TrendWindow { get; init; } = 10;

    /// <summary>How far ahead the trend is projected; <see cref="TimeSpan.Zero"/> turns the trend rule off.</summary>
    public TimeSpan TrendHorizon { get; init; } = TimeSpan.FromMinutes(15);

    /// <summary>Scale up when storage in use is above this fraction of the storage quota.</summary>
    public double StorageThreshold { get; init; } = 0.80;

    /// <summary>Share of a deployment's RAM given to the page cache.</summary>
    public double PageCacheFraction { get; init; } = 0.25;

    /// <summary>Share of a deployment's RAM the GC heap may use, when the process runs with a heap hard limit.</summary>
    public double GcHeapLimitFraction { get; init; } = 0.75;

    /// <summary>Events the autoscaler keeps (oldest dropped first).</summary>
    public int EventLogCapacity { get; init; } = 256;

    /// <summary>A decision that changes nothing is logged at most this often unless its outcome differs from the last.</summary>
    public TimeSpan NoChangeLogInterval { get; init; } = TimeSpan.FromHours(1);

    /// <summary>A member whose reports stop for this many intervals is left out of decisions until it reports again.</summary>
    public int StaleAfterIntervals { get; init; } = 3;

    /// <summary>Storage quota of one unit, in bytes.</summary>
    public long UnitStorageBytes => UnitRamBytes * StorageRatio;

    /// <summary>Refuses nonsense and unsafe mixes, naming the fix.</summary>
    /// <exception cref="ArgumentException">A limit is out of range.</exception>
    public void Validate()
    {
        if (UnitRamBytes < 1L << 20 || UnitRamBytes > 1L << 40)
        {
            throw new ArgumentException($"UnitRamBytes {UnitRamBytes} is out of range: give a unit from 1 MiB to 1 TiB of RAM (the default is 256 MiB).", nameof(UnitRamBytes));
        }
        if (StorageRatio is < 1 or > 1024)
        {
            throw new ArgumentException($"StorageRatio {StorageRatio} is out of range: use 1 to 1024 bytes of storage per byte of RAM (the default is 4).", nameof(StorageRatio));
        }
        if (InitialUnits < 1)
        {
            throw new ArgumentException($"InitialUnits {InitialUnits} is not allowed: a deployment starts with at least 1 unit.", nameof(InitialUnits));
        }
        if (MaxUnits is int max && max < InitialUnits)
        {
            throw new ArgumentException($"MaxUnits {max} is below InitialUnits {InitialUnits}: raise MaxUnits, lower InitialUnits, or leave MaxUnits unset for no maximum.", nameof(MaxUnits));
        }
        if (MaxUnits is int m && (double)m * UnitStorageBytes > long.MaxValue)
        {
            throw new ArgumentException($"MaxUnits {m} units of {ByteSize.Format(UnitStorageBytes)} storage do not fit in 64 bits: lower MaxUnits.", nameof(MaxUnits));
        }
        if (Interval <= TimeSpan.Zero)
        {
            throw new ArgumentException($"Interval {Interval} is not allowed: check at a positive interval (the default is 1 minute).", nameof(Interval));
        }
        if (!(ScaleUpThreshold > 0 && ScaleUpThreshold <= 1))
        {
            throw new ArgumentException($"ScaleUpThreshold {ScaleUpThreshold} is out of range: use a fraction of provisioned RAM above 0 and at most 1 (the default is 0.80).", nameof(ScaleUpThreshold));
        }
        if (!(StorageThreshold > 0 && StorageThreshold <= 1))
        {
            throw new ArgumentException($"StorageThreshold {StorageThreshold} is out of range: use a fraction of the storage quota above 0 and at most 1 (the default is 0.80).", nameof(StorageThreshold));
        }
        if (!(TargetUtilization > 0 && TargetUtilization < Math.Min(ScaleUpThreshold, StorageThreshold)))
        {
            throw new ArgumentException($"TargetUtilization {TargetUtilization} must be above 0 and below both ScaleUpThreshold {ScaleUpThreshold} and StorageThreshold {StorageThreshold}, or a scale-up would land at the threshold and scale again at the next check: lower TargetUtilization (the default is 0.60).", nameof(TargetUtilization));
        }
        if (TrendWindow is < 4 or > 10_000)
        {
            throw new ArgumentException($"TrendWindow {TrendWindow} is out of range: fit the trend over 4 to 10000 samples (the default is 10); set TrendHorizon to zero to turn the trend rule off.", nameof(TrendWindow));
        }
        if (TrendHorizon < TimeSpan.Zero)
        {
            throw new ArgumentException($"TrendHorizon {TrendHorizon} is negative: project ahead by zero (trend rule off) or more (the default is 15 minutes).", nameof(TrendHorizon));
        }
        if (!(PageCacheFraction > 0 && GcHeapLimitFraction > 0 && PageCacheFraction + GcHeapLimitFraction <= 1))
        {
            throw new ArgumentException($"PageCacheFraction {PageCacheFraction} and GcHeapLimitFraction {GcHeapLimitFraction} must each be above 0 and add up to at most 1 of a deployment's RAM: lower one of them (the defaults are 0.25 and 0.75).", nameof(PageCacheFraction));
        }
        if (EventLogCapacity < 1)
        {
            throw new ArgumentException($"EventLogCapacity {EventLogCapacity} is not allowed: keep at least 1 event (the default is 256).", nameof(EventLogCapacity));
        }
        if (NoChangeLogInterval < TimeSpan.Zero)
        {
            throw new ArgumentException($"NoChangeLogInterval {NoChangeLogInterval} is negative: use zero to log every check, or more (the default is 1 hour).", nameof(NoChangeLogInterval));
        }
        if (StaleAfterIntervals < 1)
        {
            throw new ArgumentException($"StaleAfterIntervals {StaleAfterIntervals} is not allowed: wait at least 1 interval before leaving a silent member out (the default is 3).", nameof(StaleAfterIntervals));
        }
    }
}
