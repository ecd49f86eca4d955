namespace Cairn.Faults;

/// <summary>
/// <see cref="RegisterModel"/> over small integers, for the search: absent is 0, each value some operation observes
/// (a get read it, a compare-and-swap compares with it) is 1, 2, ..., and every other value is <see cref="Unobserved"/>.
/// The model cannot tell two unobserved values apart — no get returns them, no swap matches them — so they are one
/// state, and the memo treats histories that differ only in which unobserved value was written as the same.
/// </summary>
internal sealed class AbstractModel
{
    public const int Absent = 0;
    public const int Unobserved = -1;

    private readonly IReadOnlyList<Operation> _ops;
    private readonly int[] _value;    // put: the value; compare-and-swap: the new value
    private readonly int[] _expected; // compare-and-swap: the expected value
    private readonly int[] _observed; // ok get: the value read
    private readonly int[] _class;    // unknown operations: same class, same abstract effect; -1 for the others

    private AbstractModel(IReadOnlyList<Operation> ops, int initial, int[] value, int[] expected, int[] observed, int[] cls)
    {
        _ops = ops;
        Initial = initial;
        _value = value;
        _expected = expected;
        _observed = observed;
        _class = cls;
    }

    public int Initial { get; }

    /// <summary>How many classes of unknown operations there are.</summary>
    public int Classes { get; private init; }

    /// <summary>The class of an unknown operation; -1 for an ok one.</summary>
    public int ClassOf(int op) => _class[op];

    public static AbstractModel Build(IReadOnlyList<Operation> ops, string? initial)
    {
        var ids = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var op in ops)
        {
            if (op is { Kind: OperationKind.Get, Outcome: Outcome.Ok, Observed: { } read }) ids.TryAdd(read, ids.Count + 1);
            if (op is { Kind: OperationKind.CompareAndSwap, Expected: { } compared }) ids.TryAdd(compared, ids.Count + 1);
        }
        int Id(string? v) => v is null ? Absent : ids.GetValueOrDefault(v, Unobserved);

        var n = ops.Count;
        int[] value = new int[n], expected = new int[n], observed = new int[n], cls = new int[n];
        var classes = new Dictionary<(OperationKind, int, int), int>();
        for (var i = 0; i < n; i++)
        {
            var op = ops[i];
            value[i] = Id(op.Value);
            expected[i] = Id(op.Expected);
            observed[i] = Id(op.Observed);
            cls[i] = op.Outcome == Outcome.Unknown ? classes.TryAdd((op.Kind, value[i], expected[i]), classes.Count)
                ? classes.Count - 1 : classes[(op.Kind, value[i], expected[i])] : -1;
        }
        return new AbstractModel(ops, Id(initial), value, expected, observed, cls) { Classes = classes.Count };
    }

    /// <summary>The same step as <see cref="RegisterModel.Step"/>, on abstract states.</summary>
    public bool Step(int state, int op, out int next)
    {
        var o = _ops[op];
        var known = o.Outcome == Outcome.Ok;
        switch (o.Kind)
        {
            case OperationKind.Put:
                next = _value[op];
                return true;
            case OperationKind.Get:
                next = state;
                return !known || state == _observed[op];
            case OperationKind.Delete:
                next = Absent;
                return !known || o.Deleted == (state == Absent ? 0 : 1);
            default:
                var matches = state == _expected[op];
                next = matches ? _value[op] : state;
                return !known || o.Succeeded == matches;
        }
    }

    /// <summary>For each unknown operation, the one of its class invoked just before it (by call rank); -1 for none.</summary>
    public int[] EarlierOfClass(int[] rank)
    {
        var earlier = new int[_ops.Count];
        Array.Fill(earlier, -1);
        var last = new Dictionary<int, int>();
        foreach (var op in Enumerable.Range(0, _ops.Count).Where(i => _class[i] >= 0).OrderBy(i => rank[2 * i]))
        {
            if (last.TryGetValue(_class[op], out var before)) earlier[op] = before;
            last[_class[op]] = op;
        }
        return earlier;
    }
}
