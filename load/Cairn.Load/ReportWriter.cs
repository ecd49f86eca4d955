using System.Globalization;
using System.Text;

namespace Cairn.Load;

/// <summary>Writes a <see cref="LoadReport"/> as a console table, a markdown file, a CSV file (one row per step) and a timeline CSV.</summary>
internal static class ReportWriter
{
    private static readonly string[] Headers = ["step", "ok", "errors", "ops/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "mean ms"];

    public const string CsvHeader =
        "target,scenario,step,simulation,clients,connections,seconds,ok,errors,ops_per_s,p50_ms,p90_ms,p99_ms,p99_9_ms,max_ms,mean_ms,loadgen_cpu_pct,errors_by_kind";

    public static void WriteConsole(LoadReport report, TextWriter writer)
    {
        ArgumentNullException.ThrowIfNull(report);
        ArgumentNullException.ThrowIfNull(writer);
        writer.WriteLine();
        writer.WriteLine(Title(report));
        writer.WriteLine(Subtitle(report));
        var rows = report.Steps.Select(Cells).ToList();
        var widths = Headers.Select((h, i) => Math.Max(h.Length, rows.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        var rule = "+" + string.Join("+", widths.Select(w => new string('-', w + 2))) + "+";
        writer.WriteLine(rule);
        writer.WriteLine("| " + string.Join(" | ", Headers.Select((h, i) => i == 0 ? h.PadRight(widths[i]) : h.PadLeft(widths[i]))) + " |");
        writer.WriteLine(rule);
        foreach (var r in rows) writer.WriteLine("| " + string.Join(" | ", r.Select((c, i) => i == 0 ? c.PadRight(widths[i]) : c.PadLeft(widths[i]))) + " |");
        writer.WriteLine(rule);
        foreach (var line in ErrorLines(report)) writer.WriteLine(line);
        foreach (var note in report.Notes) writer.WriteLine($"note: {note}");
    }

    public static string Markdown(LoadReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var sb = new StringBuilder();
        sb.AppendLine(CultureInfo.InvariantCulture, $"# {Title(report)}");
        sb.AppendLine();
        sb.AppendLine(Subtitle(report));
        sb.AppendLine();
        sb.AppendLine("| " + string.Join(" | ", Headers) + " |");
        sb.AppendLine("|" + string.Join("|", Headers.Select((_, i) => i == 0 ? "---" : "---:")) + "|");
        foreach (var cells in report.Steps.Select(Cells)) sb.AppendLine("| " + string.Join(" | ", cells) + " |");
        var errors = ErrorLines(report).ToList();
        if (errors.Count > 0)
        {
            sb.AppendLine();
            foreach (var line in errors) sb.AppendLine(CultureInfo.InvariantCulture, $"- {line.Trim()}");
        }
        if (report.Notes.Count > 0)
        {
            sb.AppendLine();
            foreach (var note in report.Notes) sb.AppendLine(CultureInfo.InvariantCulture, $"- {note}");
        }
        sb.AppendLine();
        sb.AppendLine("![latency over time](latency.png)");
        return sb.ToString();
    }

    public static string Csv(LoadReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var sb = new StringBuilder();
        sb.AppendLine(CsvHeader);
        foreach (var s in report.Steps)
        {
            sb.AppendLine(string.Join(",",
                Quote(report.Target), Quote(report.Scenario), Quote(s.Name), Quote(report.Simulation),
                N(report.Clients), N(report.Connections), F(report.Seconds, "0.###"), N(s.Ok), N(s.Errors), F(s.OpsPerSecond, "0.#"),
                F(s.P50Ms, "0.###"), F(s.P90Ms, "0.###"), F(s.P99Ms, "0.###"), F(s.P999Ms, "0.###"), F(s.MaxMs, "0.###"), F(s.MeanMs, "0.###"),
                F(report.LoadGeneratorCpuPercent, "0"), Quote(string.Join("; ", s.ErrorsByKind.Select(e => $"{e.Kind}={e.Count}")))));
        }
        return sb.ToString();
    }

    public static string TimelineCsv(LoadReport report)
    {
        ArgumentNullException.ThrowIfNull(report);
        var sb = new StringBuilder();
        sb.AppendLine("step,seconds,ok,errors,p50_ms,p99_ms,max_ms");
        foreach (var s in report.Steps)
        {
            foreach (var p in s.Timeline)
            {
                sb.AppendLine(string.Join(",", Quote(s.Name), F(p.Seconds, "0.###"), N(p.Ok), N(p.Errors), F(p.P50Ms, "0.###"), F(p.P99Ms, "0.###"), F(p.MaxMs, "0.###")));
            }
        }
        return sb.ToString();
    }

    private static string Title(LoadReport r) => $"{r.Scenario} against {r.Target}";

    private static string Subtitle(LoadReport r)
    {
        var who = r.Clients > 0 ? $"{r.Clients} clients over {r.Connections} connection(s)" : $"open loop over {r.Connections} connection(s)";
        return string.Create(CultureInfo.InvariantCulture,
            $"{string.Join(",", r.Endpoints)}; {r.Simulation}; {who}; measured {r.Seconds:0.0} s from {r.Started.UtcDateTime:yyyy-MM-dd HH:mm:ss}Z; load generator CPU {r.LoadGeneratorCpuPercent:0}% of one core ({Environment.ProcessorCount} cores)");
    }

    private static string[] Cells(StepReport s) =>
    [
        s.Name, N(s.Ok), N(s.Errors), F(s.OpsPerSecond, "N0"),
        F(s.P50Ms, "0.00"), F(s.P90Ms, "0.00"), F(s.P99Ms, "0.00"), F(s.P999Ms, "0.00"), F(s.MaxMs, "0.00"), F(s.MeanMs, "0.00"),
    ];

    private static IEnumerable<string> ErrorLines(LoadReport report)
    {
        foreach (var s in report.Steps.Where(s => s.Errors > 0))
        {
            yield return string.Create(CultureInfo.InvariantCulture, $"errors in {s.Name} ({s.ErrorRate * 100:0.###}% of its requests):");
            foreach (var (kind, count) in s.ErrorsByKind) yield return string.Create(CultureInfo.InvariantCulture, $"  {count,10:N0} × {kind}");
        }
    }

    private static string N(long n) => n.ToString(CultureInfo.InvariantCulture);

    private static string F(double v, string format) => v.ToString(format, CultureInfo.InvariantCulture);

    private static string Quote(string s) => s.Contains(',', StringComparison.Ordinal) || s.Contains('"', StringComparison.Ordinal) || s.Contains(';', StringComparison.Ordinal)
        ? "\"" + s.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""
        : s;
}
