namespace Cairn.Scaling;

/// <summary>Which rules asked for more units.</summary>
[Flags]
public enum ScalingTriggers
{
    /// <summary>No rule fired.</summary>
    None = 0,

    /// <summary>RAM in use is above the threshold of provisioned RAM.</summary>
    RamThreshold = 1,

    /// <summary>The RAM trend projects crossing the threshold within the horizon.</summary>
    RamTrend = 2,

    /// <summary>Storage in use is above the threshold of the storage quota.</summary>
    Storage = 4,
}

/// <summary>
/// What the policy decided at one check: a new unit count (only ever more than <see cref="CurrentUnits"/>) or none,
/// why, and the samples that led to it.
/// </summary>
public sealed record ScalingDecision
{
    /// <summary>Units in force when the decision was made.</summary>
    public required int CurrentUnits { get; init; }

    /// <summary>The unit count to apply, or null for no change.</summary>
    public int? NewUnits { get; init; }

    /// <summary>Why, with the figures, for people and the event log.</summary>
    public required string Reason { get; init; }

    /// <summary>The rules that fired (a capped decision may have fired some and still change nothing).</summary>
    public ScalingTriggers Triggers { get; init; }

    /// <summary>Whether <see cref="ScalingOptions.MaxUnits"/> held the count below what the rules wanted.</summary>
    public bool Capped { get; init; }

    /// <summary>The samples the rules looked at, oldest first (the trend window, or fewer).</summary>
    public IReadOnlyList<MemorySample> Samples { get; init; } = [];

    /// <summary>RAM in use the trend projects at the horizon, when there were enough samples to fit one.</summary>
    public long? ProjectedRamBytes { get; init; }

    /// <summary>The larger of RAM and storage in use as fractions of what <see cref="CurrentUnits"/> provide, at the latest sample.</summary>
    public double Utilization { get; init; }

    /// <summary>The member whose figures decided (set by <see cref="Autoscaler"/>; null from the policy alone).</summary>
    public string? Member { get; init; }

    /// <summary>Whether this decision adds units.</summary>
    public bool ScalesUp => NewUnits is int n && n > CurrentUnits;
}

/// <summary>The answer to an operator's request for a unit count.</summary>
/// <param name="Allowed">Whether the count may be applied.</param>
/// <param name="CurrentUnits">Units in force.</param>
/// <param name="RequestedUnits">Units asked for.</param>
/// <param name="Reason">Why, with the figures; for a refusal, what to do first.</param>
public sealed record ManualScalingCheck(bool Allowed, int CurrentUnits, int RequestedUnits, string Reason);
