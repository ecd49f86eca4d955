namespace Cairn.Scaling;

/// <summary>One step of a <see cref="ScalingSimulation"/>: the units in force, the sample, and what the policy decided.</summary>
/// <param name="Index">The sample's position in the trace.</param>
/// <param name="Units">Units in force when the sample was taken.</param>
/// <param name="Sample">The sample.</param>
/// <param name="Decision">The policy's decision on the history up to and including it.</param>
public sealed record SimulationStep(int Index, int Units, MemorySample Sample, ScalingDecision Decision);

/// <summary>
/// Replays a trace of samples (oldest first, one per check) through a policy, applying every scale-up before the
/// next sample, as a cluster does when the proposal commits within the interval. For <c>cairn-scale-sim</c> and
/// for seeing what the policy would do to a workload before turning it on.
/// </summary>
public static class ScalingSimulation
{
    /// <summary>The steps of replaying <paramref name="trace"/> from <paramref name="initialUnits"/>.</summary>
    public static IReadOnlyList<SimulationStep> Run(ScalingPolicy policy, IEnumerable<MemorySample> trace, int initialUnits)
    {
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(trace);
        ArgumentOutOfRangeException.ThrowIfLessThan(initialUnits, 1);
        var steps = new List<SimulationStep>();
        var window = new Queue<MemorySample>();
        var units = initialUnits;
        var index = 0;
        foreach (var sample in trace)
        {
            window.Enqueue(sample);
            while (window.Count > policy.Options.TrendWindow) window.Dequeue();
            var decision = policy.Decide([.. window], units);
            steps.Add(new SimulationStep(index++, units, sample, decision));
            if (decision.NewUnits is int n) units = n;
        }
        return steps;
    }
}
