using Cairn.Faults;

namespace Cairn.Faults.Tests;

/// <summary>
/// Generates histories of a real linearizable register store: clients invoke operations at random times, each takes
/// effect at a random point inside its interval, in that order, on one register per key. Some outcomes are unknown (the
/// effect may land after the client gave up, or never) and some failed (never applied). Values are unique.
/// </summary>
internal static class RegisterSimulation
{
    public sealed record Options(int Processes = 5, int Operations = 150, int Keys = 3, double Unknown = 0.1, double Failed = 0.05);

    public static History Generate(int seed, Options? options = null)
    {
        var o = options ?? new Options();
        var random = new Random(seed);
        var clock = new long[o.Processes];
        var written = Enumerable.Range(0, o.Keys).Select(_ => new List<string>()).ToArray();
        var drafts = new List<(Operation Op, double At, bool Applied)>();
        for (var i = 0; i < o.Operations; i++)
        {
            var p = random.Next(o.Processes);
            var k = random.Next(o.Keys);
            var key = $"k{k}";
            var invoke = clock[p] + random.Next(0, 6);
            var duration = random.Next(0, 30);
            var complete = invoke + duration;
            var draw = random.NextDouble();
            var outcome = draw < o.Unknown ? Outcome.Unknown : draw < o.Unknown + o.Failed ? Outcome.Failed : Outcome.Ok;
            // An unknown operation may take effect long after its client timed out, or never.
            var at = invoke + random.NextDouble() * (outcome == Outcome.Unknown ? duration * 4 : duration);
            var applied = outcome == Outcome.Ok || (outcome == Outcome.Unknown && random.Next(2) == 0);
            var value = $"v{i}";
            var op = random.Next(10) switch
            {
                < 4 => Make(OperationKind.Get, null, null),
                < 7 => Make(OperationKind.Put, value, null),
                < 9 => Make(OperationKind.CompareAndSwap, value, Expected()),
                _ => Make(OperationKind.Delete, null, null),
            };
            if (op.IsWrite && op.Kind != OperationKind.Delete) written[k].Add(value);
            drafts.Add((op, at, applied));
            clock[p] = complete;

            Operation Make(OperationKind kind, string? v, string? expected) => new()
            {
                Id = i, Process = p, Kind = kind, Key = key, Value = v, Expected = expected, Invoke = invoke,
                Complete = outcome == Outcome.Unknown ? Operation.Never : complete, Outcome = outcome,
            };

            string? Expected()
            {
                var w = written[k];
                var r = random.Next(10);
                return w.Count == 0 || r == 0 ? null : r < 7 ? w[^1] : w[random.Next(w.Count)];
            }
        }

        // Apply in the order the effects land, and fill in what each client saw.
        var registers = new Dictionary<string, string?>();
        var results = new Operation[drafts.Count];
        foreach (var (op, _, applied) in drafts.Select((d, i) => (d, i)).OrderBy(x => x.d.At).ThenBy(x => x.i).Select(x => x.d))
        {
            if (!applied)
            {
                results[op.Id] = op;
                continue;
            }
            var state = registers.GetValueOrDefault(op.Key);
            results[op.Id] = op.Outcome != Outcome.Ok ? op : op.Kind switch
            {
                OperationKind.Get => op with { Observed = state },
                OperationKind.Delete => op with { Deleted = state is null ? 0 : 1 },
                OperationKind.CompareAndSwap => op with { Succeeded = state == op.Expected },
                _ => op,
            };
            registers[op.Key] = op.Kind switch
            {
                OperationKind.Put => op.Value,
                OperationKind.Delete => null,
                OperationKind.CompareAndSwap => state == op.Expected ? op.Value : state,
                _ => state,
            };
        }
        var h = new HistoryBuilder();
        foreach (var op in results) h.Add(op);
        return h.Build();
    }

    /// <summary>
    /// Alters one ok read so that no linearization allows it: it returns the value of a write to its key invoked after
    /// the read completed (no linearization can put that write first, and values are unique), or a value nobody wrote.
    /// Returns the corrupted history and the read's id.
    /// </summary>
    public static (History History, int Read, bool FromTheFuture) Corrupt(History history, int seed)
    {
        var random = new Random(seed);
        var reads = history.Operations.Where(o => o is { Kind: OperationKind.Get, Outcome: Outcome.Ok }).ToList();
        if (reads.Count == 0) throw new InvalidOperationException("no ok read to corrupt");
        // Prefer reads with a later write on their key, so the interesting corruption is the common one.
        var withFuture = reads.Where(r => Future(history, r).Any()).ToList();
        var read = withFuture.Count > 0 && random.Next(4) != 0 ? withFuture[random.Next(withFuture.Count)] : reads[random.Next(reads.Count)];
        var future = Future(history, read).ToList();
        var value = future.Count > 0 ? future[random.Next(future.Count)].Value! : "never-written";
        var ops = history.Operations.Select(o => o.Id == read.Id ? o with { Observed = value } : o);
        return (new History(ops), read.Id, future.Count > 0);
    }

    private static IEnumerable<Operation> Future(History h, Operation read) =>
        h.Operations.Where(w => w.Key == read.Key && w.Value is not null && w.Invoke > read.Complete);
}
