namespace Cairn.Faults;

/// <summary>What a client asked for. Each kind touches one key (see docs/faults.md, "The model").</summary>
public enum OperationKind
{
    /// <summary>put(key, value): sets the key.</summary>
    Put,

    /// <summary>get(key): returns the value, or absent.</summary>
    Get,

    /// <summary>delete(key): removes the key; returns how many keys it deleted (0 or 1).</summary>
    Delete,

    /// <summary>
    /// A transaction comparing the key's value with an expected one (absent: create revision 0) and putting the new
    /// value if it matches; returns whether it swapped.
    /// </summary>
    CompareAndSwap,
}

/// <summary>How an operation ended, as the client saw it.</summary>
public enum Outcome
{
    /// <summary>The member answered with a result: the operation took effect exactly once, inside its interval.</summary>
    Ok,

    /// <summary>
    /// The member said it was not applied (<c>NoLeader</c>, <c>Busy</c>, <c>Stopping</c>; docs/protocol.md): it never
    /// took effect. The checker drops it.
    /// </summary>
    Failed,

    /// <summary>
    /// No answer (a timeout, a connection lost after sending): it may have taken effect at any point after its
    /// invocation, or never. Its completion time is <see cref="Operation.Never"/>.
    /// </summary>
    Unknown,
}

/// <summary>
/// One client operation in a <see cref="History"/>: what was asked, when (monotonic ticks; the unit is the recorder's,
/// microseconds for <see cref="HistoryRecorder"/>), by which client process, and how it ended.
/// </summary>
public sealed record Operation
{
    /// <summary>The completion time of an operation whose outcome is unknown: it may take effect at any later time.</summary>
    public const long Never = long.MaxValue;

    /// <summary>The operation's number in its history (0, 1, ...), used in reports.</summary>
    public required int Id { get; init; }

    /// <summary>The client process that ran it.</summary>
    public required int Process { get; init; }

    /// <summary>What was asked.</summary>
    public required OperationKind Kind { get; init; }

    /// <summary>The key it touches.</summary>
    public required string Key { get; init; }

    /// <summary>The value a put writes, or the new value of a compare-and-swap; null for gets and deletes.</summary>
    public string? Value { get; init; }

    /// <summary>The value a compare-and-swap expects; null means it expects the key to be absent.</summary>
    public string? Expected { get; init; }

    /// <summary>When the client invoked it (before sending).</summary>
    public required long Invoke { get; init; }

    /// <summary>When the client saw the answer (after receiving); <see cref="Never"/> for an unknown outcome.</summary>
    public required long Complete { get; init; }

    /// <summary>How it ended.</summary>
    public required Outcome Outcome { get; init; }

    /// <summary>For an ok get: the value read, null for absent.</summary>
    public string? Observed { get; init; }

    /// <summary>For an ok delete: how many keys it deleted.</summary>
    public long Deleted { get; init; }

    /// <summary>For an ok compare-and-swap: whether it swapped.</summary>
    public bool Succeeded { get; init; }

    /// <summary>Whether the operation can change the key (puts, deletes and compare-and-swaps).</summary>
    public bool IsWrite => Kind != OperationKind.Get;

    /// <summary>The operation and its result, e.g. <c>cas(x, "1" -> "2") = swapped</c>.</summary>
    public override string ToString() => OperationFormat.Describe(this);
}
