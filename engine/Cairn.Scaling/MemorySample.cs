using System.Globalization;
using System.Text;

namespace Cairn.Scaling;

/// <summary>One source's figure in a <see cref="MemorySample"/>.</summary>
/// <param name="Name">The source's name.</param>
/// <param name="Kind">Where the bytes live.</param>
/// <param name="Bytes">The bytes it reported (0 when it failed).</param>
/// <param name="Detail">Its breakdown, if it gives one.</param>
/// <param name="Error">Why reading it failed, or null.</param>
public sealed record SourceFigure(string Name, SourceKind Kind, long Bytes, IReadOnlyList<SourceDetail> Detail, string? Error = null);

/// <summary>
/// What one member used at one moment: RAM in use (see <see cref="MemoryAccountant"/> for how it is added up), storage
/// in use, and the figures it was added up from. Members send these to the leader; the policy decides on them.
/// </summary>
/// <param name="Time">When it was taken.</param>
/// <param name="RamBytes">RAM in use.</param>
/// <param name="StorageBytes">Storage in use.</param>
public sealed record MemorySample(DateTimeOffset Time, long RamBytes, long StorageBytes)
{
    /// <summary>Every source's figure, in registration order (empty for a sample made by hand or received bare).</summary>
    public IReadOnlyList<SourceFigure> Figures { get; init; } = [];

    /// <summary>The figure named <paramref name="name"/>, or null.</summary>
    public SourceFigure? Figure(string name)
    {
        foreach (var f in Figures) if (f.Name == name) return f;
        return null;
    }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{Time:HH:mm:ss} RAM {ByteSize.Format(RamBytes)}, storage {ByteSize.Format(StorageBytes)}";

    /// <summary>One line for an event log: span, RAM first → last (peak), storage first → last.</summary>
    internal static string Summarize(IReadOnlyList<MemorySample> samples)
    {
        if (samples.Count == 0) return "no samples";
        var first = samples[0];
        var last = samples[^1];
        long peak = 0;
        foreach (var s in samples) peak = Math.Max(peak, s.RamBytes);
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{samples.Count} sample{(samples.Count == 1 ? "" : "s")} ");
        text.Append(CultureInfo.InvariantCulture, $"{first.Time:HH:mm:ss}");
        if (samples.Count > 1) text.Append(CultureInfo.InvariantCulture, $"–{last.Time:HH:mm:ss}");
        text.Append(CultureInfo.InvariantCulture, $": RAM {ByteSize.Format(first.RamBytes)}");
        if (samples.Count > 1) text.Append(CultureInfo.InvariantCulture, $" → {ByteSize.Format(last.RamBytes)} (peak {ByteSize.Format(peak)})");
        text.Append(CultureInfo.InvariantCulture, $", storage {ByteSize.Format(first.StorageBytes)}");
        if (samples.Count > 1) text.Append(CultureInfo.InvariantCulture, $" → {ByteSize.Format(last.StorageBytes)}");
        return text.ToString();
    }
}
