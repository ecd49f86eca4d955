namespace Cairn.Fuzz.Tests;

/// <summary>The mutator is deterministic from its seed and produces every kind of change it claims to.</summary>
public sealed class MutatorTests
{
    private static readonly byte[] Huge = [0xFF, 0xFF, 0xFF, 0x7F];
    private static readonly byte[] Negative = [0x00, 0x00, 0x00, 0x80];
    private static readonly byte[] Zeros = [0x00, 0x00, 0x00, 0x00];
    private static readonly byte[] Other = [0xEE, 0xEE, 0xEE, 0xEE];

    private static readonly byte[] Input = [.. Enumerable.Range(0, 200).Select(i => (byte)i)];

    [Fact]
    public void The_same_seed_gives_the_same_inputs_and_another_seed_other_ones()
    {
        for (var it = 0; it < 200; it++)
        {
            var a = Mutator.For(7, it).Mutate(Input, [1, 2, 3], 4096);
            var b = Mutator.For(7, it).Mutate(Input, [1, 2, 3], 4096);
            Assert.Equal(a, b);
        }
        var differ = Enumerable.Range(0, 50).Count(it => !Mutator.For(7, it).Mutate(Input, [], 4096).AsSpan().SequenceEqual(Mutator.For(8, it).Mutate(Input, [], 4096)));
        Assert.True(differ > 40, $"only {differ} of 50 inputs differ between seeds 7 and 8");
    }

    [Fact]
    public void Mutations_shrink_grow_change_and_stay_within_the_limit()
    {
        int shorter = 0, longer = 0, same = 0, huge = 0, zeroed = 0, spliced = 0;
        var other = Enumerable.Repeat((byte)0xEE, 64).ToArray();
        for (var it = 0; it < 3000; it++)
        {
            var m = Mutator.For(11, it).Mutate(Input, other, 300);
            Assert.True(m.Length <= 300);
            if (m.Length < Input.Length) shorter++;
            else if (m.Length > Input.Length) longer++;
            else if (!m.AsSpan().SequenceEqual(Input)) same++;
            if (m.AsSpan().IndexOf(Huge) >= 0 || m.AsSpan().IndexOf(Negative) >= 0) huge++;
            if (m.AsSpan().IndexOf(Zeros) >= 0) zeroed++;
            if (m.AsSpan().IndexOf(Other) >= 0) spliced++;
        }
        Assert.True(shorter > 100 && longer > 100 && same > 100, $"shorter {shorter}, longer {longer}, same length but changed {same}");
        Assert.True(huge > 20, $"length fields set to huge or negative values: {huge}");
        Assert.True(zeroed > 20, $"zeroed fields: {zeroed}");
        Assert.True(spliced > 20, $"splices of the other input: {spliced}");
    }
}
