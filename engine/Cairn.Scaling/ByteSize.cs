using System.Globalization;

namespace Cairn.Scaling;

/// <summary>Byte counts as people read them in reasons and status: "1.3 GiB", "256 MiB", "512 B".</summary>
public static class ByteSize
{
    private static readonly string[] Units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

    /// <summary>Formats with binary units and at most one decimal ("1.3 GiB", "1 GiB").</summary>
    public static string Format(long bytes)
    {
        if (bytes < 0) return "-" + Format(bytes == long.MinValue ? long.MaxValue : -bytes);
        var unit = 0;
        double value = bytes;
        while (value >= 1024 && unit < Units.Length - 1)
        {
            value /= 1024;
            unit++;
        }
        // Round first so 1023.96 MiB reads "1 GiB", not "1024 MiB".
        var rounded = Math.Round(value, 1, MidpointRounding.AwayFromZero);
        if (rounded >= 1024 && unit < Units.Length - 1)
        {
            rounded = Math.Round(rounded / 1024, 1, MidpointRounding.AwayFromZero);
            unit++;
        }
        return rounded.ToString("0.#", CultureInfo.InvariantCulture) + " " + Units[unit];
    }
}
