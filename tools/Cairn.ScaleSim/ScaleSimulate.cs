using System.Globalization;
using Cairn.Cli;
using Cairn.Scaling;
using ScottPlot;

namespace Cairn.ScaleSim;

/// <summary>
/// `cairn-scale-sim`: replays a memory/storage trace through <see cref="ScalingSimulation.Run"/> with the
/// policy's options, prints one line per scale-up and the final units, and draws the units (provisioned RAM and the
/// storage quota, as step lines) against RAM and storage in use as a PNG chart, so an operator can see what the
/// policy would do to a workload before turning it on.
/// <para>
/// The trace is CSV with a header naming <c>minute</c> (minutes since the start) or <c>time</c> (ISO 8601 timestamps),
/// <c>ram_bytes</c> and <c>storage_bytes</c>; sizes are whole bytes or carry B, KiB, MiB, GiB or TiB. Rows go oldest
/// first. The policy checks once per <c>--interval-seconds</c> (60) from the first row to the last, and a check reads
/// the trace linearly interpolated between the rows around it, so a trace with one row per interval is replayed as is.
/// </para>
/// </summary>
internal static class ScaleSimulate
{
    public const string Usage = """
        usage: cairn-scale-sim --trace FILE [--out chart.png] [--unit-ram-bytes N] [--initial-units N]
                               [--max-units N] [--interval-seconds S] [--width PX] [--height PX]
          Replays a trace (CSV header minute|time,ram_bytes,storage_bytes; sizes may carry KiB/MiB/GiB) through the
          autoscaling policy, prints each scale-up and the final units, and draws units against RAM and storage in
          use as a PNG (--out, by default the trace's name with .png; 1200x700 pixels unless --width/--height).
        """;

    /// <summary>At most this many checks are replayed (a week of checks every second is about 600,000).</summary>
    internal const int MaxChecks = 1_000_000;

    private static readonly string[] Known =
        ["--trace", "--out", "--unit-ram-bytes", "--initial-units", "--max-units", "--interval-seconds", "--width", "--height"];

    private const string SansFont = "DejaVu Sans";  // where installed; ScottPlot's default otherwise

    private static readonly DateTimeOffset MinuteOrigin = new(2000, 1, 1, 0, 0, 0, TimeSpan.Zero);

    /// <summary>A trace as read: its samples (oldest first) and whether its rows gave timestamps.</summary>
    internal sealed record Trace(IReadOnlyList<MemorySample> Samples, bool Timestamps);

    private static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the verb: 0 when done, 2 on a bad flag or a bad trace (the message names the line).</summary>
    public static int Run(string[] args, TextWriter stdout, TextWriter stderr)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.WriteLine(Usage);
            return 0;
        }
        try
        {
            return Simulate(args, stdout);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            var message = e is ArgumentException { ParamName: { } name } ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;
            stderr.WriteLine($"cairn-scale-sim: {message}");
            if (e is ArgumentException) stderr.WriteLine(Usage);
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"cairn-scale-sim: cannot write the chart: {e.Message}");
            return 1;
        }
    }

    private static int Simulate(string[] args, TextWriter stdout)
    {
        var values = new Dictionary<string, string>();
        for (var k = 0; k < args.Length; k++)
        {
            var a = args[k];
            if (!a.StartsWith("--", StringComparison.Ordinal)) throw new ArgumentException($"unexpected argument '{a}'.");
            var parts = a.Split('=', 2);
            var name = parts[0];
            if (!Known.Contains(name)) throw new ArgumentException($"unknown flag {name}{(Suggest.Closest(name, Known) is { } close ? $"; did you mean {close}?" : ".")}");
            if (parts.Length == 2) values[name] = parts[1];
            else if (k + 1 < args.Length) values[name] = args[++k];
            else throw new ArgumentException($"{name} needs a value.");
        }
        var flags = new SimulateFlags(values);
        var tracePath = flags.Get("--trace") ?? throw new ArgumentException("--trace FILE is required.");
        var outPath = flags.Get("--out") ?? Path.ChangeExtension(tracePath, ".png");
        if (Path.GetFullPath(outPath) == Path.GetFullPath(tracePath)) throw new ArgumentException($"the chart would overwrite the trace {tracePath}: give --out another file.");
        var defaults = new ScalingOptions();
        var interval = flags.Get("--interval-seconds") is { } s ? TimeSpan.FromSeconds(Seconds("--interval-seconds", s)) : defaults.Interval;
        var options = defaults with
        {
            UnitRamBytes = flags.Get("--unit-ram-bytes") is { } u ? Size("--unit-ram-bytes", u) : defaults.UnitRamBytes,
            InitialUnits = flags.Get("--initial-units") is { } i ? Whole("--initial-units", i) : defaults.InitialUnits,
            MaxUnits = flags.Get("--max-units") is { } m ? Whole("--max-units", m) : null,
            Interval = interval,
        };
        options.Validate();
        var width = flags.Get("--width") is { } w ? Whole("--width", w) : 1200;
        var height = flags.Get("--height") is { } h ? Whole("--height", h) : 700;
        if (width is < 200 or > 10_000 || height is < 200 or > 10_000)
        {
            throw new ArgumentException($"a chart of {width}x{height} pixels is out of range: give --width and --height from 200 to 10000.");
        }

        Trace trace;
        try
        {
            using var reader = File.OpenText(tracePath);
            trace = ReadTrace(reader, tracePath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new FormatException($"cannot read the trace: {e.Message}", e);
        }
        var checks = Resample(trace.Samples, interval);
        var policy = new ScalingPolicy(options);
        var steps = ScalingSimulation.Run(policy, checks, options.InitialUnits);

        var origin = steps[0].Sample.Time;
        var span = steps[^1].Sample.Time - origin;
        stdout.WriteLine($"trace {tracePath}: {trace.Samples.Count} rows over {Elapsed(trace.Samples[^1].Time - trace.Samples[0].Time)}; {steps.Count} checks, one every {interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s");
        stdout.WriteLine($"policy: a unit is {ByteSize.Format(options.UnitRamBytes)} RAM + {ByteSize.Format(options.UnitStorageBytes)} storage; from {Units(options.InitialUnits)}, " +
            (options.MaxUnits is int max ? $"at most {Units(max)}" : "no maximum"));
        var ups = steps.Where(x => x.Decision.ScalesUp).ToList();
        stdout.WriteLine(ups.Count == 0 ? "no scale-ups" : $"scale-ups ({ups.Count}):");
        foreach (var up in ups)
        {
            stdout.WriteLine($"  {When(up.Sample.Time, origin, trace.Timestamps)}  {up.Units} → {Units(up.Decision.NewUnits!.Value)}  {up.Decision.Reason}");
        }
        var capped = steps.Where(x => x.Decision.Capped && !x.Decision.ScalesUp).ToList();
        if (capped.Count > 0)
        {
            stdout.WriteLine($"capped at the maximum at {capped.Count} check{(capped.Count == 1 ? "" : "s")}, first at {When(capped[0].Sample.Time, origin, trace.Timestamps)}: {capped[0].Decision.Reason}");
        }
        var final = FinalUnits(steps);
        var targets = policy.Targets(final);
        stdout.WriteLine($"final: {Units(final)} ({ByteSize.Format(targets.RamBytes)} RAM, {ByteSize.Format(targets.StorageQuotaBytes)} storage quota); " +
            $"peak RAM in use {ByteSize.Format(steps.Max(x => x.Sample.RamBytes))}, peak storage in use {ByteSize.Format(steps.Max(x => x.Sample.StorageBytes))}");

        var title = $"{Path.GetFileName(tracePath)}: {Units(options.InitialUnits)} → {Units(final)} over {Elapsed(span)}";
        DrawChart(outPath, width, height, title, steps, options, trace.Timestamps);
        stdout.WriteLine($"chart: {outPath} ({width}x{height})");
        return 0;
    }

    /// <summary>Units in force after the last check.</summary>
    internal static int FinalUnits(IReadOnlyList<SimulationStep> steps) => steps[^1].Decision.NewUnits ?? steps[^1].Units;

    /// <summary>Reads a trace; a bad header or row is a <see cref="FormatException"/> naming <paramref name="name"/> and the line.</summary>
    internal static Trace ReadTrace(TextReader reader, string name)
    {
        ArgumentNullException.ThrowIfNull(reader);
        int timeColumn = -1, ramColumn = -1, storageColumn = -1, columns = 0;
        var timestamps = false;
        var samples = new List<MemorySample>();
        var lineNumber = 0;
        string? line;
        while ((line = reader.ReadLine()) is not null)
        {
            lineNumber++;
            var trimmed = line.Trim();
            if (trimmed.Length == 0 || trimmed[0] == '#') continue;
            var fields = trimmed.Split(',').Select(f => f.Trim().Trim('"').Trim()).ToArray();
            FormatException Bad(string problem) => new($"{name} line {lineNumber}: {problem}");
            if (columns == 0)
            {
                for (var c = 0; c < fields.Length; c++)
                {
                    var column = fields[c].ToLowerInvariant();
                    switch (column)
                    {
                        case "minute" or "time":
                            if (timeColumn >= 0) throw Bad("the header names both minute and time, or one twice: give one of them");
                            timeColumn = c;
                            timestamps = column == "time";
                            break;
                        case "ram_bytes":
                            if (ramColumn >= 0) throw Bad("the header names ram_bytes twice");
                            ramColumn = c;
                            break;
                        case "storage_bytes":
                            if (storageColumn >= 0) throw Bad("the header names storage_bytes twice");
                            storageColumn = c;
                            break;
                        default:
                            break;  // other columns are ignored
                    }
                }
                if (timeColumn < 0 || ramColumn < 0 || storageColumn < 0)
                {
                    throw Bad($"expected a header naming minute (or time), ram_bytes and storage_bytes, found '{trimmed}'");
                }
                columns = fields.Length;
                continue;
            }
            if (fields.Length < columns) throw Bad($"{fields.Length} field{(fields.Length == 1 ? "" : "s")} where the header has {columns}: '{trimmed}'");
            DateTimeOffset time;
            var timeText = fields[timeColumn];
            if (timestamps)
            {
                if (!DateTimeOffset.TryParse(timeText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out time))
                {
                    throw Bad($"time '{timeText}' is not an ISO 8601 timestamp (like 2026-03-01T10:00:00Z)");
                }
            }
            else
            {
                if (!double.TryParse(timeText, NumberStyles.Float, CultureInfo.InvariantCulture, out var minute) || !double.IsFinite(minute) || Math.Abs(minute) > 1e9)
                {
                    throw Bad($"minute '{timeText}' is not a number of minutes");
                }
                time = MinuteOrigin + TimeSpan.FromMinutes(minute);
            }
            if (samples.Count > 0 && time <= samples[^1].Time)
            {
                throw Bad($"{(timestamps ? "time" : "minute")} {timeText} is not after the previous row's: rows go oldest first, one per moment");
            }
            long ram = -1, storage;
            try
            {
                ram = ParseSize(fields[ramColumn]);
                storage = ParseSize(fields[storageColumn]);
            }
            catch (FormatException e)
            {
                throw Bad($"{(ram < 0 ? "ram_bytes" : "storage_bytes")} {e.Message}");
            }
            samples.Add(new MemorySample(time, ram, storage));
        }
        if (columns == 0) throw new FormatException($"{name}: empty; expected a header naming minute (or time), ram_bytes and storage_bytes, then one row per sample");
        if (samples.Count == 0) throw new FormatException($"{name}: no rows after the header");
        return new Trace(samples, timestamps);
    }

    /// <summary>
    /// Bytes from "123", "512 MiB", "1.5GiB" (binary units B, KiB, MiB, GiB, TiB; any case); a
    /// <see cref="FormatException"/> saying what is wrong otherwise.
    /// </summary>
    internal static long ParseSize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        var end = 0;
        while (end < t.Length && (char.IsAsciiDigit(t[end]) || t[end] == '.')) end++;
        var number = t[..end];
        var suffix = t[end..].Trim().ToUpperInvariant();
        long multiplier = suffix switch
        {
            "" or "B" => 1,
            "KIB" => 1L << 10,
            "MIB" => 1L << 20,
            "GIB" => 1L << 30,
            "TIB" => 1L << 40,
            _ => 0,
        };
        if (number.Length == 0 || !decimal.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var value))
        {
            throw new FormatException($"'{text}' is not a size: give whole bytes, or a number with KiB, MiB, GiB or TiB");
        }
        if (multiplier == 0) throw new FormatException($"'{text}' has an unknown unit '{t[end..].Trim()}': use B, KiB, MiB, GiB or TiB");
        if (multiplier == 1 && decimal.Truncate(value) != value) throw new FormatException($"'{text}' is not a whole number of bytes");
        var bytes = value * multiplier;
        if (bytes > long.MaxValue) throw new FormatException($"'{text}' is too large");
        return (long)decimal.Round(bytes);
    }

    /// <summary>
    /// One sample per check: every <paramref name="interval"/> from the first sample's time to the last's, each the
    /// trace linearly interpolated at that moment (a sample that falls on a check is taken as it is).
    /// </summary>
    internal static List<MemorySample> Resample(IReadOnlyList<MemorySample> trace, TimeSpan interval)
    {
        ArgumentNullException.ThrowIfNull(trace);
        var start = trace[0].Time;
        var span = trace[^1].Time - start;
        var count = (long)(span.Ticks / interval.Ticks) + 1;
        if (count > MaxChecks)
        {
            throw new ArgumentException($"the trace spans {Elapsed(span)}: {count:N0} checks {interval.TotalSeconds.ToString(CultureInfo.InvariantCulture)} s apart is more than {MaxChecks:N0}; raise --interval-seconds.");
        }
        var checks = new List<MemorySample>((int)count);
        var j = 0;  // trace[j].Time <= t < trace[j + 1].Time
        for (long k = 0; k < count; k++)
        {
            var t = start + interval * k;
            while (j + 1 < trace.Count && trace[j + 1].Time <= t) j++;
            var a = trace[j];
            if (a.Time == t || j + 1 == trace.Count)
            {
                checks.Add(new MemorySample(t, a.RamBytes, a.StorageBytes));
                continue;
            }
            var b = trace[j + 1];
            var f = (double)(t - a.Time).Ticks / (b.Time - a.Time).Ticks;
            checks.Add(new MemorySample(t, Lerp(a.RamBytes, b.RamBytes, f), Lerp(a.StorageBytes, b.StorageBytes, f)));
        }
        return checks;
    }

    private static long Lerp(long a, long b, double f) => (long)Math.Round(a + (b - (double)a) * f);

    /// <summary>
    /// Two panels sharing the time axis: RAM (provisioned RAM as a step line, the scale-up threshold dashed, RAM in
    /// use) over storage (the quota as a step line, its threshold dashed, storage in use); scale-ups as dotted
    /// vertical lines labelled with the new count.
    /// </summary>
    internal static void DrawChart(string path, int width, int height, string title, IReadOnlyList<SimulationStep> steps, ScalingOptions options, bool timestamps)
    {
        ArgumentNullException.ThrowIfNull(steps);
        ArgumentNullException.ThrowIfNull(options);
        var origin = steps[0].Sample.Time;
        var span = steps[^1].Sample.Time - origin;
        var hours = span >= TimeSpan.FromHours(3);
        double X(DateTimeOffset t) => hours ? (t - origin).TotalHours : (t - origin).TotalMinutes;

        var xs = steps.Select(s => X(s.Sample.Time)).ToArray();
        // The units after each check's decision, so a step rises at the check that decided it.
        var units = steps.Select(s => (double)(s.Decision.NewUnits ?? s.Units)).ToArray();
        // The last step line needs a point at its end to be drawn to the end of the chart.
        var xEnd = xs.Length > 1 ? xs[^1] : xs[0] + 1;

        bool sans;
        using (var typeface = SkiaSharp.SKFontManager.Default.MatchFamily(SansFont)) sans = typeface is not null;
        var ram = new Plot();
        var storage = new Plot();
        Panel(ram, "RAM", "provisioned RAM", "scale-up threshold", "RAM in use", options.UnitRamBytes, options.ScaleUpThreshold,
            s => s.RamBytes, Color.FromHex("#1f6fb4"), Color.FromHex("#e8590c"));
        Panel(storage, "storage", "storage quota", "storage threshold", "storage in use", options.UnitStorageBytes, options.StorageThreshold,
            s => s.StorageBytes, Color.FromHex("#2b8a3e"), Color.FromHex("#862e9c"));
        ram.Title(title);
        var since = timestamps ? origin.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + "Z" : "start";
        storage.XLabel($"{(hours ? "hours" : "minutes")} since {since}");

        // Fixed margins, so the two panels' time axes line up whatever their tick labels' widths.
        ram.Layout.Fixed(new PixelPadding(left: 70, right: 20, bottom: 28, top: 50));
        storage.Layout.Fixed(new PixelPadding(left: 70, right: 20, bottom: 50, top: 12));
        var multiplot = new Multiplot(ram);
        multiplot.AddPlot(storage);
        multiplot.SavePng(path, width, height);

        void Panel(Plot plot, string what, string provisionedLabel, string thresholdLabel, string inUseLabel, long perUnit, double threshold,
            Func<MemorySample, long> used, Color provisionedColor, Color usedColor)
        {
            var provisioned = units.Select(u => u * perUnit).Append(units[^1] * perUnit).ToArray();
            var inUse = steps.Select(s => (double)used(s.Sample)).ToArray();
            var top = Math.Max(provisioned.Max(), inUse.Max());
            var (divisor, unitName) = top >= 1L << 30 ? (1L << 30, "GiB") : top >= 1L << 20 ? (1L << 20, "MiB") : (1L << 10, "KiB");
            var stepXs = xs.Append(xEnd).ToArray();

            var p = plot.Add.Scatter(stepXs, provisioned.Select(v => v / divisor).ToArray(), provisionedColor);
            p.ConnectStyle = ConnectStyle.StepHorizontal;
            p.LineWidth = 2.5f;
            p.MarkerSize = 0;
            p.LegendText = $"{provisionedLabel} (units × {ByteSize.Format(perUnit)})";

            var th = plot.Add.Scatter(stepXs, provisioned.Select(v => v * threshold / divisor).ToArray(), provisionedColor.WithAlpha(0.6));
            th.ConnectStyle = ConnectStyle.StepHorizontal;
            th.LineWidth = 1;
            th.LinePattern = LinePattern.Dashed;
            th.MarkerSize = 0;
            th.LegendText = string.Create(CultureInfo.InvariantCulture, $"{thresholdLabel} ({threshold * 100:0.#}%)");

            var u = plot.Add.Scatter(xs, inUse.Select(v => v / divisor).ToArray(), usedColor);
            u.LineWidth = 1.5f;
            u.MarkerSize = 0;
            u.LegendText = inUseLabel;

            foreach (var step in steps.Where(s => s.Decision.ScalesUp))
            {
                var line = plot.Add.VerticalLine(X(step.Sample.Time), 1, Colors.Gray.WithAlpha(0.8), LinePattern.Dotted);
                if (what == "RAM")
                {
                    line.LabelText = $"→ {step.Decision.NewUnits}";
                    line.LabelOppositeAxis = true;
                    line.LabelFontSize = 11;
                    if (sans) line.LabelFontName = SansFont;
                }
            }
            plot.Axes.SetLimitsX(xs[0], xEnd);
            plot.Axes.SetLimitsY(0, top * 1.12 / divisor);
            plot.YLabel($"{what} ({unitName})");
            plot.ShowLegend(Alignment.UpperLeft);
            if (sans) plot.Font.Set(SansFont);
        }
    }

    private static string Units(int n) => n == 1 ? "1 unit" : $"{n} units";

    private static string When(DateTimeOffset t, DateTimeOffset origin, bool timestamps) =>
        timestamps ? $"{t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss", CultureInfo.InvariantCulture)}Z (+{Elapsed(t - origin)})" : Elapsed(t - origin);

    /// <summary>"h:mm", or "h:mm:ss" when there are seconds.</summary>
    private static string Elapsed(TimeSpan span)
    {
        var hours = (long)span.TotalHours;
        return span.Seconds == 0 && span.Milliseconds == 0
            ? string.Create(CultureInfo.InvariantCulture, $"{hours}:{span.Minutes:00}")
            : string.Create(CultureInfo.InvariantCulture, $"{hours}:{span.Minutes:00}:{span.Seconds:00}");
    }

    private static int Whole(string flag, string text) =>
        int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new ArgumentException($"{flag} '{text}' is not a whole number.");

    private static double Seconds(string flag, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= 1 && v <= 86_400 * 7
            ? v
            : throw new ArgumentException($"{flag} '{text}' is not a number of seconds from 1 to a week (604800).");

    private static long Size(string flag, string text)
    {
        try
        {
            return ParseSize(text);
        }
        catch (FormatException e)
        {
            throw new ArgumentException($"{flag}: {e.Message}.", e);
        }
    }

    private sealed class SimulateFlags(Dictionary<string, string> values)
    {
        public string? Get(string name) => values.TryGetValue(name, out var v) ? v : null;
    }
}
