using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using Cairn.ScaleSim;
using Cairn.Scaling;

namespace Cairn.Scaling.Tests;

/// <summary>`cairn-scale-sim`: the summary agrees with <see cref="ScalingSimulation.Run"/>, the chart is a PNG of the asked size, bad traces name their line.</summary>
public sealed class ScaleSimulateTests : IDisposable
{
    private const long MiB = 1L << 20;
    private static readonly DateTimeOffset Start = new(2026, 3, 1, 10, 0, 0, TimeSpan.Zero);
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-simulate-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Two hours of RAM climbing 5 MiB a minute from 100 MiB, storage 1 MiB a minute from 200 MiB, one sample a minute.</summary>
    private static List<MemorySample> Climb() =>
        [.. Enumerable.Range(0, 120).Select(m => new MemorySample(Start.AddMinutes(m), (100 + 5 * m) * MiB, (200 + m) * MiB))];

    private string Write(string name, string text)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        return path;
    }

    private static (int Code, string Out, string Err) Simulate(params string[] args)
    {
        var stdout = new StringWriter { NewLine = "\n" };
        var stderr = new StringWriter { NewLine = "\n" };
        var code = ScaleSimulate.Run(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    /// <summary>(elapsed "h:mm", units before, units after) of each scale-up line the command printed.</summary>
    private static List<(string When, int From, int To)> ScaleUps(string output) =>
        [.. Regex.Matches(output, @"^  (\S+)(?: \(\+(\S+)\))?  (\d+) → (\d+) units? ", RegexOptions.Multiline)
            .Select(m => (m.Groups[2].Success ? m.Groups[2].Value : m.Groups[1].Value, int.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), int.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture)))];

    private static List<(string When, int From, int To)> Expected(IReadOnlyList<SimulationStep> steps) =>
        [.. steps.Where(s => s.Decision.ScalesUp).Select(s =>
        {
            var t = s.Sample.Time - steps[0].Sample.Time;
            return (string.Create(CultureInfo.InvariantCulture, $"{(int)t.TotalHours}:{t.Minutes:00}"), s.Units, s.Decision.NewUnits!.Value);
        })];

    private static (int Width, int Height) PngSize(string path)
    {
        var bytes = File.ReadAllBytes(path);
        Assert.True(bytes.Length > 24, $"{path} has {bytes.Length} bytes");
        Assert.Equal(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }, bytes[..8]);
        Assert.Equal("IHDR", Encoding.ASCII.GetString(bytes, 12, 4));
        return (BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(16)), BinaryPrimitives.ReadInt32BigEndian(bytes.AsSpan(20)));
    }

    [Fact]
    public void A_steady_climb_scales_up_as_ScalingSimulation_Run_does_and_draws_a_png_of_the_asked_size()
    {
        var climb = Climb();
        var csv = new StringBuilder("minute,ram_bytes,storage_bytes\n");
        for (var m = 0; m < climb.Count; m++)
        {
            // Bytes, and MiB with a suffix, on alternate rows: both mean the same.
            var ram = m % 2 == 0 ? climb[m].RamBytes.ToString(CultureInfo.InvariantCulture) : $"{climb[m].RamBytes / MiB} MiB";
            csv.Append(CultureInfo.InvariantCulture, $"{m},{ram},{climb[m].StorageBytes / MiB}MiB\n");
        }
        var trace = Write("climb.csv", csv.ToString());
        var png = Path.Combine(_dir, "climb.png");

        var (code, output, err) = Simulate("--trace", trace, "--out", png, "--max-units", "6", "--width", "640", "--height", "480");

        Assert.True(code == 0, err);
        var steps = ScalingSimulation.Run(new ScalingPolicy(new ScalingOptions { MaxUnits = 6 }), climb, initialUnits: 1);
        var expected = Expected(steps);
        Assert.True(expected.Count >= 3, $"the climb should scale up several times: {expected.Count}");
        Assert.Equal(expected, ScaleUps(output));
        Assert.Contains($"scale-ups ({expected.Count}):", output, StringComparison.Ordinal);
        var final = steps[^1].Decision.NewUnits ?? steps[^1].Units;
        Assert.Contains($"final: {final} units (", output, StringComparison.Ordinal);
        Assert.Equal((640, 480), PngSize(png));
    }

    [Fact]
    public void Options_from_the_flags_reach_the_policy()
    {
        var climb = Climb();
        var csv = "minute,ram_bytes,storage_bytes\n" + string.Concat(climb.Select((s, m) => $"{m},{s.RamBytes},{s.StorageBytes}\n"));
        var trace = Write("climb.csv", csv);

        var (code, output, err) = Simulate("--trace", trace, "--out", Path.Combine(_dir, "c.png"), "--unit-ram-bytes", "128MiB", "--initial-units", "2", "--width", "400", "--height", "300");

        Assert.True(code == 0, err);
        var options = new ScalingOptions { UnitRamBytes = 128 * MiB, InitialUnits = 2 };
        var steps = ScalingSimulation.Run(new ScalingPolicy(options), climb, initialUnits: 2);
        Assert.NotEmpty(Expected(steps));
        Assert.Equal(Expected(steps), ScaleUps(output));
        Assert.Contains("a unit is 128 MiB RAM + 512 MiB storage; from 2 units, no maximum", output, StringComparison.Ordinal);
    }

    [Fact]
    public void A_timestamped_trace_every_30_seconds_is_checked_once_a_minute()
    {
        // The same climb as Climb(), given every 30 seconds as ISO timestamps: the checks read it once a minute, at
        // the minute rows, so the scale-ups are the same as the minute trace's.
        var csv = new StringBuilder("time,storage_bytes,ram_bytes\n");  // columns in any order
        for (var half = 0; half < 2 * 119 + 1; half++)
        {
            var t = Start.AddSeconds(30 * half);
            csv.Append(CultureInfo.InvariantCulture, $"{t:yyyy-MM-ddTHH:mm:ssZ},{200 * MiB + half * MiB / 2},{100 * MiB + half * 5 * MiB / 2}\n");
        }
        var trace = Write("timed.csv", csv.ToString());

        var (code, output, err) = Simulate("--trace", trace, "--out", Path.Combine(_dir, "timed.png"), "--max-units", "6", "--width", "400", "--height", "300");

        Assert.True(code == 0, err);
        var steps = ScalingSimulation.Run(new ScalingPolicy(new ScalingOptions { MaxUnits = 6 }), Climb(), initialUnits: 1);
        Assert.Contains("239 rows over 1:59; 120 checks, one every 60 s", output, StringComparison.Ordinal);
        Assert.Equal(Expected(steps), ScaleUps(output));
        Assert.Contains("  2026-03-01T10:", output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("minute,ram_bytes,storage_bytes\n0,1 MiB,1 MiB\n1,2 MiB,1 MiB\n2,lots,1 MiB\n", "line 4: ram_bytes 'lots' is not a size")]
    [InlineData("# a comment\n\nminute,ram_bytes,storage_bytes\n0,1 MiB,1 MiB\n1,2 MiB\n", "line 5: 2 fields where the header has 3")]
    [InlineData("minute,ram_bytes,storage_bytes\n0,1 MiB,1 MiB\n0,2 MiB,1 MiB\n", "line 3: minute 0 is not after the previous row's")]
    [InlineData("minute,ram_bytes,storage_bytes\n0,1 MiB,3 MB\n", "line 2: storage_bytes '3 MB' has an unknown unit 'MB'")]
    [InlineData("time,ram_bytes,storage_bytes\n2026-03-01T10:00:00Z,1,1\nyesterday,1,1\n", "line 3: time 'yesterday' is not an ISO 8601 timestamp")]
    [InlineData("min,ram,storage\n0,1,1\n", "line 1: expected a header naming minute (or time), ram_bytes and storage_bytes")]
    public void A_malformed_trace_is_exit_code_2_naming_the_line(string text, string message)
    {
        var trace = Write("bad.csv", text);
        var png = Path.Combine(_dir, "bad.png");

        var (code, output, err) = Simulate("--trace", trace, "--out", png);

        Assert.Equal(2, code);
        Assert.Equal("", output);
        Assert.Contains($"{trace} {message}", err, StringComparison.Ordinal);
        Assert.False(File.Exists(png));
    }

    [Fact]
    public void Bad_flags_are_exit_code_2()
    {
        var trace = Write("ok.csv", "minute,ram_bytes,storage_bytes\n0,1,1\n");
        Assert.Equal(2, Simulate("--trace", trace, "--unit-ram", "1").Code);
        Assert.Equal(2, Simulate().Code);
        Assert.Equal(2, Simulate("--trace", Path.Combine(_dir, "missing.csv")).Code);
        var (code, _, err) = Simulate("--trace", trace, "--max-units", "0");
        Assert.Equal(2, code);
        Assert.Contains("MaxUnits 0 is below InitialUnits 1", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("12", 12L)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData(" 1.5 GiB ", 3L << 29)]
    [InlineData("2kib", 2048L)]
    [InlineData("1 TiB", 1L << 40)]
    public void Sizes_take_binary_suffixes(string text, long bytes) => Assert.Equal(bytes, ScaleSimulate.ParseSize(text));

    [Theory]
    [InlineData("")]
    [InlineData("1.5")]
    [InlineData("-3")]
    [InlineData("3 GB")]
    [InlineData("GiB")]
    public void Bad_sizes_are_refused(string text) => Assert.Throws<FormatException>(() => ScaleSimulate.ParseSize(text));
}
