namespace Cairn.Faults;

/// <summary>A linearizability verdict.</summary>
public enum Verdict
{
    /// <summary>Some order of the operations, each at a point inside its interval, explains every result.</summary>
    Linearizable,

    /// <summary>No such order exists: the history shows a consistency bug.</summary>
    NotLinearizable,

    /// <summary>The search ran out of its step or time budget before deciding.</summary>
    Unknown,
}

/// <summary>What <see cref="LinearizabilityChecker.Check"/> found, per key. <see cref="ToString"/> prints it readably.</summary>
public sealed record CheckReport
{
    /// <summary>Not linearizable if any key is; else unknown if any key is; else linearizable.</summary>
    public required Verdict Verdict { get; init; }

    /// <summary>One report per key, in ordinal key order.</summary>
    public required IReadOnlyList<KeyReport> Keys { get; init; }

    /// <summary>The keys that are not linearizable.</summary>
    public IEnumerable<KeyReport> Violations => Keys.Where(k => k.Verdict == Verdict.NotLinearizable);

    /// <summary>The report for <paramref name="key"/>.</summary>
    public KeyReport this[string key] => Keys.FirstOrDefault(k => k.Key == key)
        ?? throw new KeyNotFoundException($"the history has no operation on key {OperationFormat.Quote(key)}");

    /// <summary>A summary line, then each key; violations with their smallest failing sub-history and longest prefix.</summary>
    public override string ToString() => ReportFormat.Format(this);
}

/// <summary>The verdict for one key's sub-history.</summary>
public sealed record KeyReport
{
    /// <summary>The key.</summary>
    public required string Key { get; init; }

    /// <summary>The verdict.</summary>
    public required Verdict Verdict { get; init; }

    /// <summary>Operations checked: the key's operations less failed ones and gets with unknown outcome.</summary>
    public required int Operations { get; init; }

    /// <summary>Failed operations dropped (they never took effect).</summary>
    public required int Failed { get; init; }

    /// <summary>Search steps taken (not counting shrinking).</summary>
    public required long Steps { get; init; }

    /// <summary>Time taken, shrinking included.</summary>
    public required TimeSpan Elapsed { get; init; }

    /// <summary>For <see cref="Verdict.Unknown"/>: which budget ran out.</summary>
    public string? Reason { get; init; }

    /// <summary>For <see cref="Verdict.Linearizable"/>: one linearization (unknown operations left out never took effect).</summary>
    public IReadOnlyList<LinearizedStep> Linearization { get; init; } = [];

    /// <summary>For <see cref="Verdict.NotLinearizable"/>: the evidence.</summary>
    public Violation? Violation { get; init; }
}

/// <summary>Evidence of a violation on one key, shrunk as far as the shrink budget allowed.</summary>
public sealed record Violation
{
    /// <summary>
    /// The smallest failing sub-history found, by invocation. It is faithful: no operation left out could have explained
    /// a result kept in, so these operations contradict each other whatever the others did. When <see cref="Minimal"/>,
    /// leaving out any one more makes it pass or unfaithful.
    /// </summary>
    public required IReadOnlyList<Operation> Operations { get; init; }

    /// <summary>How many operations were checked before shrinking.</summary>
    public required int OriginalCount { get; init; }

    /// <summary>Whether shrinking finished (1-minimal) rather than stopping at its time budget.</summary>
    public required bool Minimal { get; init; }

    /// <summary>The longest linearizable prefix of <see cref="Operations"/> the search reached.</summary>
    public required IReadOnlyList<LinearizedStep> LongestPrefix { get; init; }

    /// <summary>After that prefix, the ok operation whose completion the search could not get past.</summary>
    public required Operation? Blocked { get; init; }

    /// <summary>The key's value after the prefix (null: absent).</summary>
    public string? BlockedState { get; init; }

    /// <summary>Observations that explain themselves: values read that nothing applied wrote, and who did write them.</summary>
    public IReadOnlyList<string> Notes { get; init; } = [];
}
