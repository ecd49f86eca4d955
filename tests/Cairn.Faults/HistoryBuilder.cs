namespace Cairn.Faults;

/// <summary>
/// Writes a history by hand (tests, generators): each method adds one operation with the next id and returns that id.
/// Times are whatever ticks the caller uses; unknown outcomes take only an invocation time.
/// </summary>
public sealed class HistoryBuilder
{
    private readonly List<Operation> _operations = [];

    /// <summary>How many operations so far.</summary>
    public int Count => _operations.Count;

    /// <summary>An ok put.</summary>
    public int Put(int process, string key, string value, long invoke, long complete) =>
        Add(Make(process, OperationKind.Put, key, invoke, complete, Outcome.Ok, value: value));

    /// <summary>A put the member refused (not applied).</summary>
    public int PutFailed(int process, string key, string value, long invoke, long complete) =>
        Add(Make(process, OperationKind.Put, key, invoke, complete, Outcome.Failed, value: value));

    /// <summary>A put with no answer: applied at some time after <paramref name="invoke"/>, or never.</summary>
    public int PutUnknown(int process, string key, string value, long invoke) =>
        Add(Make(process, OperationKind.Put, key, invoke, Operation.Never, Outcome.Unknown, value: value));

    /// <summary>An ok get that read <paramref name="observed"/> (null: absent).</summary>
    public int Get(int process, string key, string? observed, long invoke, long complete) =>
        Add(Make(process, OperationKind.Get, key, invoke, complete, Outcome.Ok) with { Observed = observed });

    /// <summary>An ok delete that deleted <paramref name="deleted"/> keys.</summary>
    public int Delete(int process, string key, long deleted, long invoke, long complete) =>
        Add(Make(process, OperationKind.Delete, key, invoke, complete, Outcome.Ok) with { Deleted = deleted });

    /// <summary>A delete with no answer.</summary>
    public int DeleteUnknown(int process, string key, long invoke) =>
        Add(Make(process, OperationKind.Delete, key, invoke, Operation.Never, Outcome.Unknown));

    /// <summary>An ok compare-and-swap from <paramref name="expected"/> (null: absent) to <paramref name="value"/>.</summary>
    public int Cas(int process, string key, string? expected, string value, bool succeeded, long invoke, long complete) =>
        Add(Make(process, OperationKind.CompareAndSwap, key, invoke, complete, Outcome.Ok, value, expected) with { Succeeded = succeeded });

    /// <summary>A compare-and-swap with no answer.</summary>
    public int CasUnknown(int process, string key, string? expected, string value, long invoke) =>
        Add(Make(process, OperationKind.CompareAndSwap, key, invoke, Operation.Never, Outcome.Unknown, value, expected));

    /// <summary>Any operation; its id is replaced by the next one.</summary>
    public int Add(Operation operation)
    {
        ArgumentNullException.ThrowIfNull(operation);
        var id = _operations.Count;
        _operations.Add(operation with { Id = id });
        return id;
    }

    /// <summary>The history so far.</summary>
    public History Build() => new(_operations);

    private static Operation Make(int process, OperationKind kind, string key, long invoke, long complete, Outcome outcome,
        string? value = null, string? expected = null)
    {
        return new Operation
        {
            Id = -1, Process = process, Kind = kind, Key = key, Value = value, Expected = expected,
            Invoke = invoke, Complete = complete, Outcome = outcome,
        };
    }
}
