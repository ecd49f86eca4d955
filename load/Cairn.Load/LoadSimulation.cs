using System.Globalization;

namespace Cairn.Load;

/// <summary>
/// One phase of a run, in NBomber's terms. Closed loops keep a number of copies (virtual clients) each sending its
/// next request when the last one answered; open loops inject requests on a timeline at a rate, whatever the target
/// does, and measure each request from the time it was scheduled (so a stall is charged to every request it delays
/// and coordinated omission cannot hide it). A ramping phase moves linearly from the previous phase's level (0 when
/// the previous phase was of the other kind, or there was none) to its own over its duration.
/// </summary>
internal abstract record LoadSimulation(TimeSpan During)
{
    /// <summary>Closed loop: ramps the number of copies to <see cref="Copies"/> over the phase.</summary>
    internal sealed record RampingConstant(int Copies, TimeSpan During) : LoadSimulation(During);

    /// <summary>Closed loop: <see cref="Copies"/> copies for the whole phase.</summary>
    internal sealed record KeepConstant(int Copies, TimeSpan During) : LoadSimulation(During);

    /// <summary>Open loop: ramps the injection rate (requests per second) to <see cref="Rate"/> over the phase.</summary>
    internal sealed record RampingInject(double Rate, TimeSpan During) : LoadSimulation(During);

    /// <summary>Open loop: <see cref="Rate"/> requests per second, evenly spaced, for the whole phase.</summary>
    internal sealed record Inject(double Rate, TimeSpan During) : LoadSimulation(During);

    public bool IsOpen => this is RampingInject or Inject;

    /// <summary>The level this phase ends at: copies for closed loops, requests per second for open ones.</summary>
    public double Level => this switch
    {
        RampingConstant r => r.Copies,
        KeepConstant k => k.Copies,
        RampingInject r => r.Rate,
        Inject i => i.Rate,
        _ => 0,
    };

    /// <summary>How the phase reads on the command line (<see cref="Parse"/> reads it back).</summary>
    public sealed override string ToString() => this switch
    {
        RampingConstant r => $"ramping-constant:{r.Copies}:{Duration.Format(r.During)}",
        KeepConstant k => $"keep-constant:{k.Copies}:{Duration.Format(k.During)}",
        RampingInject r => string.Create(CultureInfo.InvariantCulture, $"ramping-inject:{r.Rate:0.###}:{Duration.Format(r.During)}"),
        Inject i => string.Create(CultureInfo.InvariantCulture, $"inject:{i.Rate:0.###}:{Duration.Format(i.During)}"),
        _ => "?",
    };

    /// <summary>
    /// Parses a comma-separated list of phases, each KIND:LEVEL:DURATION with KIND one of ramping-constant,
    /// keep-constant (LEVEL: copies), ramping-inject, inject (LEVEL: requests per second).
    /// </summary>
    /// <exception cref="LoadConfigurationException">A phase does not parse; the message names it.</exception>
    public static IReadOnlyList<LoadSimulation> Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var phases = new List<LoadSimulation>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var f = part.Split(':');
            if (f.Length != 3) throw new LoadConfigurationException($"--load phase '{part}' is not KIND:LEVEL:DURATION (e.g. keep-constant:16:10s or inject:1000:10s)");
            var during = Duration.Parse("--load", f[2]);
            if (during <= TimeSpan.Zero) throw new LoadConfigurationException($"--load phase '{part}' has no duration");
            phases.Add(f[0] switch
            {
                "ramping-constant" => new RampingConstant(Copies(part, f[1]), during),
                "keep-constant" => new KeepConstant(Copies(part, f[1]), during),
                "ramping-inject" => new RampingInject(Rate(part, f[1]), during),
                "inject" => new Inject(Rate(part, f[1]), during),
                _ => throw new LoadConfigurationException($"--load phase '{part}': unknown kind '{f[0]}'; use ramping-constant, keep-constant, ramping-inject or inject"),
            });
        }
        if (phases.Count == 0) throw new LoadConfigurationException("--load names no phase (e.g. keep-constant:16:10s)");
        return phases;

        static int Copies(string part, string text) =>
            int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n is > 0 and <= 100_000
                ? n
                : throw new LoadConfigurationException($"--load phase '{part}': copies '{text}' is not a whole number from 1 to 100000");

        static double Rate(string part, string text) =>
            double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var r) && r > 0 && r <= 10_000_000
                ? r
                : throw new LoadConfigurationException($"--load phase '{part}': rate '{text}' is not a number of requests per second above 0");
    }

    /// <summary>The whole run's length.</summary>
    public static TimeSpan Total(IEnumerable<LoadSimulation> phases) => phases.Aggregate(TimeSpan.Zero, (t, p) => t + p.During);

    /// <summary>The largest number of copies any closed phase asks for (0 for an open-loop run).</summary>
    public static int MaxCopies(IEnumerable<LoadSimulation> phases) => phases.Where(p => !p.IsOpen).Select(p => (int)p.Level).DefaultIfEmpty(0).Max();
}

/// <summary>Durations on the command line: 250ms, 10s, 2m, or a bare number of seconds.</summary>
internal static class Duration
{
    public static TimeSpan Parse(string flag, string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : (text, 1.0);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0 || double.IsInfinity(v) || v * scale > 86_400)
        {
            throw new LoadConfigurationException($"{flag} '{text}' is not a duration (e.g. 500ms, 10s, 2m; at most a day)");
        }
        return TimeSpan.FromSeconds(v * scale);
    }

    public static string Format(TimeSpan t) =>
        t.TotalSeconds >= 1 && t.TotalSeconds == Math.Floor(t.TotalSeconds)
            ? string.Create(CultureInfo.InvariantCulture, $"{t.TotalSeconds:0}s")
            : string.Create(CultureInfo.InvariantCulture, $"{t.TotalMilliseconds:0.###}ms");
}
