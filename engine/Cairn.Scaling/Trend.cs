namespace Cairn.Scaling;

/// <summary>
/// The least-squares line through RAM in use over the trend window, and whether the rise is sustained.
/// With tᵢ in seconds and yᵢ in bytes: slope b = Σ(tᵢ − t̄)(yᵢ − ȳ) / Σ(tᵢ − t̄)², fitted ŷ(t) = ȳ + b(t − t̄).
/// A rise is sustained when the window's thirds step up (each step at least a quarter of the whole rise) and the slopes
/// fitted over its older and newer halves each reach a quarter of the window's slope: a rectangular spike (up, stay,
/// maybe down) has one rising edge, so one of those is flat or falling, and it never counts as a trend however it sits
/// in the window — also over a noisy baseline, which a plain "both halves positive" let through.
/// </summary>
internal readonly record struct Trend(double SlopeBytesPerSecond, double FittedLastBytes, bool Sustained)
{
    /// <summary>Fitted RAM in use <paramref name="ahead"/> after the latest sample.</summary>
    public double ProjectAhead(TimeSpan ahead) => FittedLastBytes + SlopeBytesPerSecond * ahead.TotalSeconds;

    /// <summary>The share of the whole rise each step between the window's thirds must make for the rise to count as sustained.</summary>
    public const double SustainedShare = 0.25;

    /// <summary>The trend of <paramref name="window"/> (at least 4 samples), or null when its times do not spread.</summary>
    public static Trend? Fit(ReadOnlySpan<MemorySample> window)
    {
        if (window.Length < 4) return null;
        var origin = window[0].Time;
        if (Slope(window, origin) is not { } line) return null;
        // Sustained: the window's thirds step up, each step at least a quarter of the whole rise. A spike has one
        // rising edge, so one step is flat (or falls) whatever the noise; a steady climb steps up twice, and so do two
        // steps up within the window. (Halves with positive slopes were tried first: noise on the flat half tilted it
        // upwards often enough for a spike to pass.)
        var third = window.Length / 3;
        var first = Mean(window[..third]);
        var middle = Mean(window[third..^third]);
        var last = Mean(window[^third..]);
        var rise = last - first;
        var thirdsStepUp = rise > 0 && middle - first >= SustainedShare * rise && last - middle >= SustainedShare * rise;
        // And each half of the window rises at a real share of the whole window's rate (a spike that straddles two
        // thirds can pass the first test; its halves cannot both rise).
        var half = window.Length / 2;
        var halvesRise = Slope(window[..half], origin) is { } older && Slope(window[^half..], origin) is { } newer &&
            older.Slope >= SustainedShare * line.Slope && newer.Slope >= SustainedShare * line.Slope;
        var sustained = line.Slope > 0 && thirdsStepUp && halvesRise;
        var tLast = (window[^1].Time - origin).TotalSeconds;
        return new Trend(line.Slope, line.MeanY + line.Slope * (tLast - line.MeanT), sustained);
    }

    private static double Mean(ReadOnlySpan<MemorySample> samples)
    {
        double sum = 0;
        foreach (var x in samples) sum += x.RamBytes;
        return sum / samples.Length;
    }

    private static (double Slope, double MeanT, double MeanY)? Slope(ReadOnlySpan<MemorySample> samples, DateTimeOffset origin)
    {
        if (samples.Length < 2) return null;
        double meanT = 0, meanY = 0;
        foreach (var s in samples)
        {
            meanT += (s.Time - origin).TotalSeconds;
            meanY += s.RamBytes;
        }
        meanT /= samples.Length;
        meanY /= samples.Length;
        double sty = 0, stt = 0;
        foreach (var s in samples)
        {
            var dt = (s.Time - origin).TotalSeconds - meanT;
            sty += dt * (s.RamBytes - meanY);
            stt += dt * dt;
        }
        return stt > 0 ? (sty / stt, meanT, meanY) : null;
    }
}
