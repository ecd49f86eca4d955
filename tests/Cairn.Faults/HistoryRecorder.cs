namespace Cairn.Faults;

/// <summary>
/// Records a history from live clients. Thread-safe: any number of clients call it concurrently. A client takes a
/// <see cref="PendingOperation"/> just before sending a request (the invocation time) and completes it as soon as the
/// answer arrives (the completion time):
/// <code>
/// var op = recorder.Put(process, "k1", "v7");
/// try { await client.PutAsync("k1", "v7"); op.Ok(); }
/// catch (CairnException e) when (e.Code is { } c &amp;&amp; CairnException.IsNotApplied(c)) { op.Failed(); }
/// catch { op.Unknown(); }   // timeout, connection lost: may or may not have happened
/// </code>
/// Times are microseconds since the recorder was made, from <see cref="TimeProvider.GetTimestamp"/> (monotonic, shared
/// by all threads), so an operation that completes before another is invoked has a smaller completion time.
/// </summary>
public sealed class HistoryRecorder
{
    private readonly TimeProvider _time;
    private readonly long _start;
    private readonly object _gate = new();
    private readonly List<Operation> _operations = []; // guarded by _gate; index = id; pending ones still Unknown

    /// <summary>A recorder on the system clock, or on <paramref name="time"/> (tests).</summary>
    public HistoryRecorder(TimeProvider? time = null)
    {
        _time = time ?? TimeProvider.System;
        _start = _time.GetTimestamp();
    }

    /// <summary>How many operations have been invoked.</summary>
    public int Count
    {
        get { lock (_gate) return _operations.Count; }
    }

    /// <summary>Invokes put(key, value).</summary>
    public PendingOperation Put(int process, string key, string value) =>
        Invoke(process, OperationKind.Put, key, value ?? throw new ArgumentNullException(nameof(value)), null);

    /// <summary>Invokes get(key).</summary>
    public PendingOperation Get(int process, string key) => Invoke(process, OperationKind.Get, key, null, null);

    /// <summary>Invokes delete(key).</summary>
    public PendingOperation Delete(int process, string key) => Invoke(process, OperationKind.Delete, key, null, null);

    /// <summary>Invokes a compare-and-swap from <paramref name="expected"/> (null: absent) to <paramref name="value"/>.</summary>
    public PendingOperation CompareAndSwap(int process, string key, string? expected, string value) =>
        Invoke(process, OperationKind.CompareAndSwap, key, value ?? throw new ArgumentNullException(nameof(value)), expected);

    /// <summary>
    /// The history so far. Operations still pending have an unknown outcome (a client that never saw an answer could
    /// not say either); recording may go on.
    /// </summary>
    public History ToHistory()
    {
        lock (_gate) return new History(_operations);
    }

    internal long Now() => _time.GetElapsedTime(_start).Ticks / TimeSpan.TicksPerMicrosecond;

    internal void Complete(int id, Func<Operation, Operation> complete)
    {
        var now = Now();
        lock (_gate)
        {
            var op = _operations[id];
            _operations[id] = complete(op) with { Complete = now };
        }
    }

    internal void CompleteUnknown(int id)
    {
        lock (_gate) _operations[id] = _operations[id] with { Outcome = Outcome.Unknown, Complete = Operation.Never };
    }

    private PendingOperation Invoke(int process, OperationKind kind, string key, string? value, string? expected)
    {
        ArgumentNullException.ThrowIfNull(key);
        lock (_gate)
        {
            // Taken under the lock so ids follow invocation times; taken before the request is sent, as it must be.
            var id = _operations.Count;
            _operations.Add(new Operation
            {
                Id = id, Process = process, Kind = kind, Key = key, Value = value, Expected = expected,
                Invoke = Now(), Complete = Operation.Never, Outcome = Outcome.Unknown,
            });
            return new PendingOperation(this, id, kind);
        }
    }
}
