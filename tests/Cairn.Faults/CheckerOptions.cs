namespace Cairn.Faults;

/// <summary>Budgets and starting state for <see cref="LinearizabilityChecker"/>. Checked by <see cref="Validate"/>.</summary>
public sealed record CheckerOptions
{
    /// <summary>Search steps allowed per key before its verdict is "unknown (budget exhausted)".</summary>
    public long KeyStepBudget { get; init; } = 20_000_000;

    /// <summary>Time allowed per key before its verdict is "unknown (budget exhausted)".</summary>
    public TimeSpan KeyTimeBudget { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time allowed per violating key for shrinking it to a smaller failing sub-history; zero turns shrinking off.</summary>
    public TimeSpan ShrinkTimeBudget { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Values keys held before the history began; a key not named here starts absent.</summary>
    public IReadOnlyDictionary<string, string> InitialValues { get; init; } = new Dictionary<string, string>();

    /// <summary>Throws <see cref="ArgumentException"/> naming a budget that cannot work.</summary>
    public void Validate()
    {
        if (KeyStepBudget <= 0) throw new ArgumentException($"KeyStepBudget is {KeyStepBudget}; it must be positive (20,000,000 is the default)");
        if (KeyTimeBudget <= TimeSpan.Zero) throw new ArgumentException($"KeyTimeBudget is {KeyTimeBudget}; it must be positive (30 s is the default)");
        if (ShrinkTimeBudget < TimeSpan.Zero) throw new ArgumentException($"ShrinkTimeBudget is {ShrinkTimeBudget}; use zero to turn shrinking off");
        ArgumentNullException.ThrowIfNull(InitialValues);
    }
}
