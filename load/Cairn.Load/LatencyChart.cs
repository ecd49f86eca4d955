using ScottPlot;

namespace Cairn.Load;

/// <summary>
/// Latency over time as a PNG: the top panel draws each step's p50, p99 and maximum per sampling interval (ms), the
/// bottom one its successes and failures per second, on a shared time axis.
/// </summary>
internal static class LatencyChart
{
    private const string SansFont = "DejaVu Sans";   // where installed; ScottPlot's default otherwise

    private static readonly Color[] Palette = [Color.FromHex("#1f6fb4"), Color.FromHex("#e8590c"), Color.FromHex("#2b8a3e"), Color.FromHex("#862e9c")];

    public static void Save(LoadReport report, string path, int width = 1200, int height = 750)
    {
        ArgumentNullException.ThrowIfNull(report);
        bool sans;
        using (var typeface = SkiaSharp.SKFontManager.Default.MatchFamily(SansFont)) sans = typeface is not null;
        var latency = new Plot();
        var rate = new Plot();
        for (var i = 0; i < report.Steps.Count; i++)
        {
            var step = report.Steps[i];
            if (step.Timeline.Count == 0) continue;
            var color = Palette[i % Palette.Length];
            var xs = step.Timeline.Select(p => p.Seconds).ToArray();
            Line(latency, xs, step.Timeline.Select(p => p.P50Ms).ToArray(), color, 1.5f, LinePattern.Solid, $"{step.Name} p50");
            Line(latency, xs, step.Timeline.Select(p => p.P99Ms).ToArray(), color, 2.5f, LinePattern.Dashed, $"{step.Name} p99");
            Line(latency, xs, step.Timeline.Select(p => p.MaxMs).ToArray(), color.WithAlpha(0.45), 1f, LinePattern.Dotted, $"{step.Name} max");
            var seconds = step.Timeline.Select((p, k) => k == 0 ? p.Seconds : p.Seconds - step.Timeline[k - 1].Seconds).ToArray();
            Line(rate, xs, step.Timeline.Select((p, k) => seconds[k] > 0 ? p.Ok / seconds[k] : 0).ToArray(), color, 2f, LinePattern.Solid, $"{step.Name} ok/s");
            if (step.Errors > 0)
            {
                Line(rate, xs, step.Timeline.Select((p, k) => seconds[k] > 0 ? p.Errors / seconds[k] : 0).ToArray(), Colors.Red, 1.5f, LinePattern.Dashed, $"{step.Name} errors/s");
            }
        }
        latency.Title($"{report.Scenario} against {report.Target} — {report.Simulation}");
        latency.YLabel("latency (ms)");
        rate.YLabel("per second");
        rate.XLabel("seconds since measuring began");
        // Both panels start at zero, so a dip reads as its true size.
        latency.Axes.AutoScale();
        rate.Axes.AutoScale();
        latency.Axes.SetLimitsY(0, Math.Max(1, latency.Axes.GetLimits().Top));
        rate.Axes.SetLimitsY(0, Math.Max(1, rate.Axes.GetLimits().Top));
        latency.ShowLegend(Alignment.UpperLeft);
        rate.ShowLegend(Alignment.LowerLeft);
        if (sans)
        {
            latency.Font.Set(SansFont);
            rate.Font.Set(SansFont);
        }
        latency.Layout.Fixed(new PixelPadding(left: 80, right: 20, bottom: 30, top: 50));
        rate.Layout.Fixed(new PixelPadding(left: 80, right: 20, bottom: 50, top: 12));
        var multiplot = new Multiplot(latency);
        multiplot.AddPlot(rate);
        multiplot.SavePng(path, width, height);
    }

    private static void Line(Plot plot, double[] xs, double[] ys, Color color, float width, LinePattern pattern, string label)
    {
        var s = plot.Add.Scatter(xs, ys, color);
        s.LineWidth = width;
        s.LinePattern = pattern;
        s.MarkerSize = 0;
        s.LegendText = label;
    }
}
