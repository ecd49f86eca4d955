namespace Cairn.Scaling;

/// <summary>
/// The least-squares line through RAM in use over the trend window, and whether the rise is sustained.
/// With tᵢ in seconds and yᵢ in bytes: slope b = Σ(tᵢ − t̄)(yᵢ − ȳ) / Σ(tᵢ − t̄)², fitted ŷ(t) = ȳ + b(t − t̄).
/// A rise is sustained when the slopes fitted separately over the older and the newer half of the window are both
/// positive: a rectangular spike (up, stay, maybe down) has one rising edge, so one half is flat or falling, and
/// never counts as a trend however it sits in the window.
/// </summary>
internal readonly record struct Trend(double SlopeBytesPerSecond, double FittedLastBytes, bool Sustained)
{
    /// <summary>Fitted RAM in use <paramref name="ahead"/> after the latest sample.</summary>
    public double ProjectAhead(TimeSpan ahead) => FittedLastBytes + SlopeBytesPerSecond * ahead.TotalSeconds;

    /// <summary>The trend of <paramref name="window"/> (at least 4 samples), or null when its times do not spread.</summary>
    public static Trend? Fit(ReadOnlySpan<MemorySample> window)
    {
        if (window.Length < 4) return null;
        var origin = window[0].Time;
        if (Slope(window, origin) is not { } line) return null;
        var half = window.Length / 2;
        var older = Slope(window[..half], origin);
        var newer = Slope(window[^half..], origin);
        var sustained = line.Slope > 0 && older is { Slope: > 0 } && newer is { Slope: > 0 };
        var tLast = (window[^1].Time - origin).TotalSeconds;
        return new Trend(line.Slope, line.MeanY + line.Slope * (tLast - line.MeanT), sustained);
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
