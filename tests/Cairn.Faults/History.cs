namespace Cairn.Faults;

/// <summary>
/// Operations recorded by concurrent clients, in invocation order. Built by a <see cref="HistoryRecorder"/> (live
/// clients) or a <see cref="HistoryBuilder"/> (hand-written and generated histories); checked by
/// <see cref="LinearizabilityChecker"/>.
/// </summary>
public sealed class History
{
    private readonly Operation[] _operations;

    /// <summary>A history of these operations; throws <see cref="ArgumentException"/> naming the first malformed one.</summary>
    public History(IEnumerable<Operation> operations)
    {
        ArgumentNullException.ThrowIfNull(operations);
        _operations = [.. operations.OrderBy(o => o.Invoke).ThenBy(o => o.Id)];
        var ids = new HashSet<int>();
        foreach (var op in _operations)
        {
            if (!ids.Add(op.Id)) throw new ArgumentException($"operation id {op.Id} appears twice", nameof(operations));
            Validate(op);
        }
    }

    /// <summary>The operations, by invocation time.</summary>
    public IReadOnlyList<Operation> Operations => _operations;

    /// <summary>How many operations.</summary>
    public int Count => _operations.Length;

    /// <summary>The keys touched, in ordinal order.</summary>
    public IReadOnlyList<string> Keys =>
        [.. _operations.Select(o => o.Key).Distinct().Order(StringComparer.Ordinal)];

    /// <summary>The sub-history of one key (the checker's unit: keys are independent registers).</summary>
    public History ForKey(string key) => new(_operations.Where(o => o.Key == key));

    private static void Validate(Operation op)
    {
        var what = $"operation {op}";
        if (op.Key is null) throw new ArgumentException($"{what}: no key");
        if (op.Outcome == Outcome.Unknown ? op.Complete != Operation.Never : op.Complete < op.Invoke || op.Complete == Operation.Never)
            throw new ArgumentException($"{what}: completion {OperationFormat.Ticks(op.Complete)} does not fit invocation {op.Invoke} and outcome {op.Outcome} (unknown outcomes complete at Operation.Never, others at or after their invocation)");
        if (op.Kind == OperationKind.Put && op.Value is null) throw new ArgumentException($"{what}: a put needs a value");
        if (op.Kind == OperationKind.CompareAndSwap && op.Value is null) throw new ArgumentException($"{what}: a compare-and-swap needs a new value");
        if (op.Kind == OperationKind.Delete && op.Outcome == Outcome.Ok && op.Deleted is not (0 or 1))
            throw new ArgumentException($"{what}: a delete of one key deletes 0 or 1");
    }
}
