using System.Diagnostics;

namespace Cairn.Faults;

/// <summary>
/// Checks a <see cref="History"/> for linearizability against the per-key register model (<see cref="RegisterModel"/>),
/// one key at a time, with <see cref="WglSearch"/>. Failed operations are dropped (they never took effect); gets with
/// an unknown outcome are dropped (they change nothing and their result was never seen); other unknown operations may
/// take effect at any point after their invocation, or never. A violating key is shrunk (<see cref="Shrinker"/>) to a
/// small failing sub-history. Every key is bounded by <see cref="CheckerOptions"/>: a search that runs out reports
/// <see cref="Verdict.Unknown"/> instead of hanging.
/// </summary>
public sealed class LinearizabilityChecker
{
    private readonly CheckerOptions _options;

    /// <summary>A checker with <paramref name="options"/> (default budgets when null).</summary>
    public LinearizabilityChecker(CheckerOptions? options = null)
    {
        _options = options ?? new CheckerOptions();
        _options.Validate();
    }

    /// <summary>Checks every key of <paramref name="history"/>.</summary>
    public CheckReport Check(History history)
    {
        ArgumentNullException.ThrowIfNull(history);
        var keys = history.Operations.GroupBy(o => o.Key).OrderBy(g => g.Key, StringComparer.Ordinal)
            .Select(g => CheckKey(g.Key, [.. g])).ToList();
        var verdict = keys.Any(k => k.Verdict == Verdict.NotLinearizable) ? Verdict.NotLinearizable
            : keys.Any(k => k.Verdict == Verdict.Unknown) ? Verdict.Unknown
            : Verdict.Linearizable;
        return new CheckReport { Verdict = verdict, Keys = keys };
    }

    private KeyReport CheckKey(string key, IReadOnlyList<Operation> all)
    {
        var started = Stopwatch.GetTimestamp();
        var initial = _options.InitialValues.GetValueOrDefault(key);
        var ops = Checked(all);
        var failed = all.Count(o => o.Outcome == Outcome.Failed);
        var result = WglSearch.Run(ops, initial, _options.KeyStepBudget, Deadline(_options.KeyTimeBudget));
        var report = new KeyReport
        {
            Key = key, Verdict = result.Verdict, Operations = ops.Length, Failed = failed, Steps = result.Steps,
            Elapsed = Stopwatch.GetElapsedTime(started),
        };
        switch (result.Verdict)
        {
            case Verdict.Linearizable:
                return report with { Linearization = result.Linearization };
            case Verdict.Unknown:
                var reason = result.Steps > _options.KeyStepBudget
                    ? $"budget exhausted: {_options.KeyStepBudget:N0} steps"
                    : $"budget exhausted: {_options.KeyTimeBudget.TotalSeconds:0.###} s";
                return report with { Reason = reason };
        }

        var (smallest, minimal) = _options.ShrinkTimeBudget == TimeSpan.Zero
            ? (ops, false)
            : Shrinker.Shrink(ops, initial, result, Deadline(_options.ShrinkTimeBudget));
        // The shrunk history fails within the budget it was checked with; searching it again gives its own prefix.
        var evidence = ReferenceEquals(smallest, ops) ? result : WglSearch.Run(smallest, initial, long.MaxValue, long.MaxValue);
        return report with
        {
            Elapsed = Stopwatch.GetElapsedTime(started),
            Violation = new Violation
            {
                Operations = smallest, OriginalCount = ops.Length, Minimal = minimal,
                LongestPrefix = evidence.Linearization, Blocked = evidence.Blocked, BlockedState = evidence.BlockedState,
                Notes = Notes(smallest, all, initial),
            },
        };
    }

    /// <summary>The operations the search needs: no failed ones, no gets whose answer was never seen.</summary>
    internal static Operation[] Checked(IEnumerable<Operation> ops) =>
        [.. ops.Where(o => o.Outcome != Outcome.Failed && !(o.Outcome == Outcome.Unknown && o.Kind == OperationKind.Get))];

    private static long Deadline(TimeSpan budget)
    {
        var ticks = budget.TotalSeconds * Stopwatch.Frequency;
        var now = Stopwatch.GetTimestamp();
        return ticks >= long.MaxValue - now ? long.MaxValue : now + (long)ticks;
    }

    /// <summary>Reads of values no checked operation may have written, and whether a failed operation wrote them.</summary>
    private static List<string> Notes(IReadOnlyList<Operation> evidence, IReadOnlyList<Operation> all, string? initial)
    {
        var notes = new List<string>();
        foreach (var op in evidence)
        {
            var (value, how) = op switch
            {
                { Outcome: Outcome.Ok, Kind: OperationKind.Get, Observed: { } v } => (v, "read"),
                { Outcome: Outcome.Ok, Kind: OperationKind.CompareAndSwap, Succeeded: true, Expected: { } v } => (v, "swapped from"),
                _ => (null, ""),
            };
            if (value is null || value == initial || evidence.Any(w => Shrinker.MayHaveWritten(w, value))) continue;
            var failedWriters = all.Where(w => w.Outcome == Outcome.Failed && w.IsWrite && w.Value == value).Select(w => $"#{w.Id}").ToList();
            notes.Add(failedWriters.Count > 0
                ? $"#{op.Id} {how} {OperationFormat.Quote(value)}, written only by {string.Join(", ", failedWriters)}, which the member said was not applied"
                : $"#{op.Id} {how} {OperationFormat.Quote(value)}, which no operation in the history wrote");
        }
        return notes;
    }
}
