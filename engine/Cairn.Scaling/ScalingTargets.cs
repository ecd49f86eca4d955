namespace Cairn.Scaling;

/// <summary>
/// What a unit count provisions: RAM, the storage quota (enforced by Cairn.Kv's NOSPACE), the page-cache budget and the
/// GC heap hard limit. Applying a count means setting these.
/// </summary>
/// <param name="Units">The unit count.</param>
/// <param name="RamBytes">Provisioned RAM: units × <see cref="ScalingOptions.UnitRamBytes"/>.</param>
/// <param name="StorageQuotaBytes">Storage quota: <see cref="ScalingOptions.StorageRatio"/> × RAM.</param>
/// <param name="PageCacheBytes">Page-cache budget: <see cref="ScalingOptions.PageCacheFraction"/> of RAM.</param>
/// <param name="GcHeapLimitBytes">GC heap hard limit: <see cref="ScalingOptions.GcHeapLimitFraction"/> of RAM (set only where a limit was configured at start).</param>
public sealed record ScalingTargets(int Units, long RamBytes, long StorageQuotaBytes, long PageCacheBytes, long GcHeapLimitBytes)
{
    private static readonly string[] LimitSettings =
    [
        "GCHeapHardLimit", "GCHeapHardLimitPercent", "System.GC.HeapHardLimit", "System.GC.HeapHardLimitPercent",
    ];

    private static readonly string[] LimitVariables =
    [
        "DOTNET_GCHeapHardLimit", "DOTNET_GCHeapHardLimitPercent", "COMPlus_GCHeapHardLimit", "COMPlus_GCHeapHardLimitPercent",
    ];

    /// <summary>
    /// Whether the process was started with a GC heap hard limit (runtimeconfig <c>System.GC.HeapHardLimit[Percent]</c>
    /// or the <c>DOTNET_GCHeapHardLimit[Percent]</c> variables), read once, on first use of this type: the server
    /// should touch it at start, before anything calls <see cref="AppContext.SetData"/>.
    /// </summary>
    public static bool GcHeapLimitConfiguredAtStart { get; } = DetectConfiguredLimit();

    /// <summary>The targets of <paramref name="units"/> units.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Fewer than 1 unit, or more than 64 bits can count.</exception>
    public static ScalingTargets For(int units, ScalingOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(units, 1);
        if ((double)units * options.UnitStorageBytes > long.MaxValue)
        {
            throw new ArgumentOutOfRangeException(nameof(units), units, $"{units} units of {ByteSize.Format(options.UnitStorageBytes)} storage do not fit in 64 bits.");
        }
        var ram = units * options.UnitRamBytes;
        return new ScalingTargets(
            units,
            ram,
            ram * options.StorageRatio,
            (long)(ram * options.PageCacheFraction),
            (long)(ram * options.GcHeapLimitFraction));
    }

    /// <summary>
    /// Sets the GC heap hard limit to <see cref="GcHeapLimitBytes"/> (AppContext "GCHeapHardLimit", then
    /// <see cref="GC.RefreshMemoryLimit"/>) when the process was started with a limit; otherwise leaves the GC alone
    /// (a process without a limit has nothing to raise). Never throws: a limit the GC refuses (below what it has
    /// already committed) is put back and reported.
    /// </summary>
    public static GcLimitResult ApplyGcLimit(ScalingTargets targets) =>
        ApplyGcLimit(targets, GcHeapLimitConfiguredAtStart, AppContext.GetData, AppContext.SetData, GC.RefreshMemoryLimit);

    internal static GcLimitResult ApplyGcLimit(
        ScalingTargets targets, bool configuredAtStart, Func<string, object?> getData, Action<string, object?> setData, Action refresh)
    {
        ArgumentNullException.ThrowIfNull(targets);
        if (!configuredAtStart)
        {
            return new GcLimitResult(false, null, null, "GC heap hard limit left alone: the process was not started with one (set System.GC.HeapHardLimit to have scaling manage it)");
        }
        var previousData = getData("GCHeapHardLimit");
        long? previous = previousData switch { ulong u => (long)Math.Min(u, long.MaxValue), long l => l, _ => null };
        var limit = targets.GcHeapLimitBytes;
        if (previous == limit)
        {
            return new GcLimitResult(false, previous, limit, $"GC heap hard limit already {ByteSize.Format(limit)}");
        }
        setData("GCHeapHardLimit", (ulong)limit);
        try
        {
            refresh();
        }
        catch (InvalidOperationException e)
        {
            setData("GCHeapHardLimit", previousData);
            return new GcLimitResult(false, previous, null, $"GC heap hard limit of {ByteSize.Format(limit)} refused by the GC ({e.Message}); kept the previous limit");
        }
        var from = previous is long p ? $" from {ByteSize.Format(p)}" : "";
        return new GcLimitResult(true, previous, limit, $"GC heap hard limit set{from} to {ByteSize.Format(limit)} ({targets.Units} unit{(targets.Units == 1 ? "" : "s")})");
    }

    private static bool DetectConfiguredLimit()
    {
        foreach (var name in LimitSettings)
        {
            if (AppContext.GetData(name) is { } value && !IsZero(value)) return true;
        }
        foreach (var name in LimitVariables)
        {
            if (Environment.GetEnvironmentVariable(name) is { Length: > 0 } value && value.Trim() != "0") return true;
        }
        return false;
    }

    private static bool IsZero(object value) => value switch
    {
        ulong u => u == 0,
        long l => l == 0,
        int i => i == 0,
        string s => s.Trim() is "0" or "" or "0x0",
        _ => false,
    };
}

/// <summary>What <see cref="ScalingTargets.ApplyGcLimit(ScalingTargets)"/> did.</summary>
/// <param name="Applied">Whether the GC's limit changed.</param>
/// <param name="PreviousLimitBytes">The limit set through AppContext before, if any.</param>
/// <param name="LimitBytes">The limit in force after, when known.</param>
/// <param name="Description">What was done and why, for the event log.</param>
public sealed record GcLimitResult(bool Applied, long? PreviousLimitBytes, long? LimitBytes, string Description);
