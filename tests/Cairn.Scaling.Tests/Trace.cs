namespace Cairn.Scaling.Tests;

/// <summary>
/// Usage traces one sample a minute, and a replay of a trace through the policy with every decision applied at once
/// (what the cluster does when the Raft proposal commits before the next check).
/// </summary>
internal static class Trace
{
    public const long MiB = 1L << 20;
    public const long GiB = 1L << 30;
    public static readonly DateTimeOffset Start = new(2025, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static MemorySample At(int minute, long ram, long storage = 0) => new(Start.AddMinutes(minute), ram, storage);

    /// <summary>Minutes 0..count-1 with RAM <paramref name="ram"/>(minute) and storage <paramref name="storage"/>(minute).</summary>
    public static List<MemorySample> Make(int count, Func<int, long> ram, Func<int, long>? storage = null) =>
        [.. Enumerable.Range(0, count).Select(m => At(m, ram(m), storage?.Invoke(m) ?? 0))];

    /// <summary>The library's replay, checked at every step: a decision only ever adds units.</summary>
    public static IReadOnlyList<SimulationStep> Replay(ScalingPolicy policy, IReadOnlyList<MemorySample> trace, int units = 1)
    {
        var steps = ScalingSimulation.Run(policy, trace, units);
        foreach (var s in steps)
        {
            Assert.True(s.Decision.NewUnits is null || s.Decision.NewUnits > s.Units,
                $"sample {s.Index}: decision {s.Decision.NewUnits} with {s.Units} in force: {s.Decision.Reason}");
        }
        return steps;
    }
}
