namespace Cairn.Faults;

/// <summary>
/// An operation a client has invoked and not yet completed. Complete it exactly once, with the call that matches its
/// kind, as soon as the answer (or the lack of one) is known.
/// </summary>
public sealed class PendingOperation
{
    private readonly HistoryRecorder _recorder;
    private int _done; // 0 pending, 1 completed; flipped once with Interlocked

    internal PendingOperation(HistoryRecorder recorder, int id, OperationKind kind)
    {
        _recorder = recorder;
        Id = id;
        Kind = kind;
    }

    /// <summary>The operation's id in the history.</summary>
    public int Id { get; }

    /// <summary>What was asked.</summary>
    public OperationKind Kind { get; }

    /// <summary>A put succeeded.</summary>
    public void Ok() => Finish(OperationKind.Put, o => o with { Outcome = Outcome.Ok });

    /// <summary>A get read <paramref name="value"/> (null: the key was absent).</summary>
    public void Observed(string? value) => Finish(OperationKind.Get, o => o with { Outcome = Outcome.Ok, Observed = value });

    /// <summary>A delete deleted <paramref name="count"/> keys (0 or 1).</summary>
    public void DeletedCount(long count)
    {
        if (count is not (0 or 1)) throw new ArgumentOutOfRangeException(nameof(count), count, "a delete of one key deletes 0 or 1");
        Finish(OperationKind.Delete, o => o with { Outcome = Outcome.Ok, Deleted = count });
    }

    /// <summary>A compare-and-swap answered: it swapped, or the comparison failed.</summary>
    public void Swapped(bool succeeded) =>
        Finish(OperationKind.CompareAndSwap, o => o with { Outcome = Outcome.Ok, Succeeded = succeeded });

    /// <summary>The member said the request was not applied (NoLeader, Busy, Stopping): it never took effect.</summary>
    public void Failed()
    {
        Claim();
        _recorder.Complete(Id, o => o with { Outcome = Outcome.Failed });
    }

    /// <summary>No answer (timeout, connection lost after sending): it may or may not have taken effect.</summary>
    public void Unknown()
    {
        Claim();
        _recorder.CompleteUnknown(Id);
    }

    private void Finish(OperationKind kind, Func<Operation, Operation> complete)
    {
        if (kind != Kind) throw new InvalidOperationException($"operation {Id} is a {Kind}, not a {kind}");
        Claim();
        _recorder.Complete(Id, complete);
    }

    private void Claim()
    {
        if (Interlocked.Exchange(ref _done, 1) != 0) throw new InvalidOperationException($"operation {Id} was already completed");
    }
}
