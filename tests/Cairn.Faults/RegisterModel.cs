namespace Cairn.Faults;

/// <summary>
/// The sequential specification of one key: a register that is absent or holds a value, with etcd's semantics for
/// put, get, delete and a compare-and-swap transaction. Each operation touches one key, which is why a history can
/// be checked key by key (docs/faults.md, "Why per key").
/// </summary>
internal static class RegisterModel
{
    /// <summary>
    /// Applies <paramref name="op"/> to <paramref name="state"/> (null: absent). Returns false when the operation's ok
    /// result could not have come from this state. An unknown outcome has no result to contradict, but its effect is
    /// still fixed by the state: a compare-and-swap swaps exactly when the key holds the expected value.
    /// </summary>
    public static bool Step(string? state, Operation op, out string? next)
    {
        var known = op.Outcome == Outcome.Ok;
        switch (op.Kind)
        {
            case OperationKind.Put:
                next = op.Value;
                return true;
            case OperationKind.Get:
                next = state;
                return !known || string.Equals(state, op.Observed, StringComparison.Ordinal);
            case OperationKind.Delete:
                next = null;
                return !known || op.Deleted == (state is null ? 0 : 1);
            default:
                var matches = string.Equals(state, op.Expected, StringComparison.Ordinal);
                next = matches ? op.Value : state;
                return !known || op.Succeeded == matches;
        }
    }
}
