using Xunit.Abstractions;

namespace Cairn.Fuzz.Tests;

/// <summary>
/// The CI run: each target on its seeds (which must all be accepted), then a fixed number of mutated inputs from
/// fixed run seeds. Any unclean exception, property violation, hang or allocation past the bound fails with the run
/// seed, the iteration and the input in hex. Longer runs: scripts/fuzz.sh.
/// </summary>
public sealed class FixedSeedTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("protocol", 1UL, 20_000)]
    [InlineData("protocol", 2UL, 20_000)]
    [InlineData("protocol", 3UL, 20_000)]
    [InlineData("peer", 1UL, 4_000)]
    [InlineData("peer-frames", 1UL, 20_000)]
    [InlineData("peer-frames", 2UL, 20_000)]
    [InlineData("storage", 1UL, 1_500)]
    [InlineData("storage", 2UL, 1_500)]
    [InlineData("storage-encrypted", 1UL, 1_500)]
    [InlineData("storage-encrypted", 2UL, 1_500)]
    [InlineData("wal", 1UL, 400)]
    [InlineData("wal", 2UL, 400)]
    public void Mutated_inputs_get_only_clean_typed_errors(string target, ulong seed, int iterations)
    {
        using var t = Program.Create(target);
        var report = FuzzRunner.Run(t, seed, iterations);
        output.WriteLine(report.ToString());
        Assert.Equal(iterations, report.Iterations);
        // The mutations reach both outcomes: a fuzzer whose inputs were all refused (or all accepted) would test little.
        Assert.True(report.Accepted > 0, $"no mutated input was accepted: {report}");
        Assert.True(report.Refused.Values.Sum() > 0, $"no mutated input was refused: {report}");
    }
}
