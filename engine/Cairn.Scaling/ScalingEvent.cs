namespace Cairn.Scaling;

/// <summary>What kind of entry a <see cref="ScalingEvent"/> is.</summary>
public enum ScalingEventKind
{
    /// <summary>A check that changed nothing (logged when its outcome differs from the last, else at most hourly).</summary>
    NoChange,

    /// <summary>A check that asked for more units; the callback was invoked with the decision.</summary>
    ScaleUp,

    /// <summary>A check that wanted more units than the maximum allows and could add none.</summary>
    Capped,

    /// <summary>The callback that applies a scale-up failed; the next check decides again.</summary>
    ApplyFailed,

    /// <summary>A check failed before deciding (reading the unit count, or deciding, threw).</summary>
    CheckFailed,

    /// <summary>An operator's unit count was allowed.</summary>
    ManualAllowed,

    /// <summary>An operator's unit count was refused.</summary>
    ManualRefused,
}

/// <summary>One entry of the autoscaler's event log.</summary>
/// <param name="Time">When it happened.</param>
/// <param name="Kind">What it was.</param>
/// <param name="UnitsBefore">Units in force.</param>
/// <param name="UnitsAfter">Units asked for (equal to <paramref name="UnitsBefore"/> when nothing changes).</param>
/// <param name="Member">The member whose figures decided ("" for a manual request judged on all members).</param>
/// <param name="Reason">Why, with the figures.</param>
/// <param name="Samples">A one-line summary of the samples that led to it.</param>
public sealed record ScalingEvent(
    DateTimeOffset Time, ScalingEventKind Kind, int UnitsBefore, int UnitsAfter, string Member, string Reason, string Samples);
