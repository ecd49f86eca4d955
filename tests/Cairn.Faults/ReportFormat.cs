using System.Globalization;
using System.Text;

namespace Cairn.Faults;

/// <summary>Prints a <see cref="CheckReport"/>: the format is shown in docs/faults.md, "Reports".</summary>
internal static class ReportFormat
{
    public static string Format(CheckReport report)
    {
        var b = new StringBuilder();
        var ops = report.Keys.Sum(k => k.Operations);
        b.Append(CultureInfo.InvariantCulture, $"{Name(report.Verdict)}: {report.Keys.Count} keys, {ops:N0} operations checked");
        foreach (var (verdict, label) in new[] { (Verdict.NotLinearizable, "not linearizable"), (Verdict.Unknown, "undecided") })
        {
            var keys = report.Keys.Where(k => k.Verdict == verdict).Select(k => k.Key).ToList();
            if (keys.Count > 0) b.Append(CultureInfo.InvariantCulture, $"; {label}: {string.Join(", ", keys)}");
        }
        b.AppendLine();
        foreach (var key in report.Keys) Key(b, key);
        return b.ToString();
    }

    public static string Name(Verdict verdict) => verdict switch
    {
        Verdict.Linearizable => "linearizable",
        Verdict.NotLinearizable => "NOT linearizable",
        _ => "unknown",
    };

    private static void Key(StringBuilder b, KeyReport k)
    {
        var verdict = k.Verdict == Verdict.Unknown ? $"unknown ({k.Reason})" : Name(k.Verdict);
        b.Append(CultureInfo.InvariantCulture,
            $"key {OperationFormat.Quote(k.Key)}: {verdict} - {k.Operations:N0} operations ({k.Failed:N0} failed dropped), {k.Steps:N0} steps, {k.Elapsed.TotalMilliseconds:N0} ms");
        b.AppendLine();
        if (k.Violation is not { } v) return;

        b.Append(CultureInfo.InvariantCulture,
            $"  smallest failing sub-history: {v.Operations.Count} of {v.OriginalCount} operations{(v.Minimal ? " (1-minimal: no single operation can be left out)" : v.Operations.Count == v.OriginalCount ? " (not shrunk)" : " (shrinking ran out of time: a smaller one may exist)")}");
        b.AppendLine();
        Table(b, v.Operations, "    ");
        b.AppendLine("  longest linearizable prefix:");
        if (v.LongestPrefix.Count == 0) b.AppendLine("    (empty: no operation can take effect first)");
        var width = v.LongestPrefix.Count == 0 ? 0 : v.LongestPrefix.Max(s => OperationFormat.Describe(s.Operation).Length);
        foreach (var step in v.LongestPrefix)
            b.Append("    ").Append(OperationFormat.Describe(step.Operation).PadRight(width))
                .Append("   -> ").Append(step.Operation.Key).Append(" = ").Append(OperationFormat.Value(step.StateAfter)).AppendLine();
        if (v.Blocked is { } blocked)
            b.Append(CultureInfo.InvariantCulture,
                $"  then no pending operation can take effect before #{blocked.Id} {OperationFormat.Call(blocked)} = {OperationFormat.Result(blocked)} completes at {OperationFormat.Ticks(blocked.Complete)}; the key is {OperationFormat.Value(v.BlockedState)}").AppendLine();
        foreach (var note in v.Notes) b.Append("  note: ").AppendLine(note);
    }

    /// <summary>A table of operations with their intervals and results.</summary>
    public static void Table(StringBuilder b, IEnumerable<Operation> operations, string indent)
    {
        string[] header = ["op", "process", "invoke", "complete", "outcome", "operation", "result"];
        var rows = operations.Select(o => new[]
        {
            $"#{o.Id}", o.Process.ToString(CultureInfo.InvariantCulture), OperationFormat.Ticks(o.Invoke),
            OperationFormat.Ticks(o.Complete), o.Outcome.ToString().ToLowerInvariant(), OperationFormat.Call(o), OperationFormat.Result(o),
        }).Prepend(header).ToList();
        var widths = Enumerable.Range(0, header.Length).Select(c => rows.Max(r => r[c].Length)).ToArray();
        foreach (var row in rows)
        {
            b.Append(indent);
            for (var c = 0; c < row.Length; c++)
            {
                // Numbers right-aligned, text left-aligned; no trailing spaces.
                var cell = c is 2 or 3 ? row[c].PadLeft(widths[c]) : c == row.Length - 1 ? row[c] : row[c].PadRight(widths[c]);
                b.Append(cell);
                if (c < row.Length - 1) b.Append("  ");
            }
            b.AppendLine();
        }
    }
}
