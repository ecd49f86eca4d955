namespace Cairn.Fuzz.Tests;

/// <summary>The runner catches what it promises to catch: an unclean exception, a hang, an allocation sized by the input's claims — each reported with the seed and the input.</summary>
public sealed class HarnessTests
{
    private sealed class Broken(Action<byte[]> run, long bound = 1 << 20) : FuzzTarget
    {
        public override string Name => "broken";
        public override IReadOnlyList<byte[]> Seeds { get; } = [[1, 2, 3, 4, 5, 6, 7, 8]];
        public override string CleanExceptions => nameof(InvalidDataException);
        public override bool IsClean(Exception e) => e is InvalidDataException;
        public override long AllocationBound(int inputLength) => bound;
        public override void Run(byte[] input) => run(input);
    }

    [Fact]
    public void An_unclean_exception_fails_with_the_seed_and_the_input_in_hex()
    {
        using var t = new Broken(input => _ = input[input[0]]); // IndexOutOfRange once a mutation puts a large value in byte 0
        var e = Assert.Throws<FuzzFailureException>(() => FuzzRunner.Run(t, 5, 10_000));
        Assert.Contains("IndexOutOfRangeException", e.Message, StringComparison.Ordinal);
        Assert.Contains("seed 5, iteration", e.Message, StringComparison.Ordinal);
        Assert.Contains("hex): ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Clean_exceptions_are_counted_not_failed()
    {
        using var t = new Broken(input => { if (input.Length != 8) throw new InvalidDataException("length"); });
        var report = FuzzRunner.Run(t, 5, 500);
        Assert.True(report.Refused["InvalidDataException"] > 0);
    }

    [Fact]
    public void A_hang_fails_with_the_input()
    {
        var old = FuzzRunner.InputTimeout;
        FuzzRunner.InputTimeout = TimeSpan.FromMilliseconds(300);
        try
        {
            using var gate = new ManualResetEventSlim();
            using var t = new Broken(input => { if (input.Length != 8) gate.Wait(TimeSpan.FromSeconds(5)); });
            var e = Assert.Throws<FuzzFailureException>(() => FuzzRunner.Run(t, 5, 100));
            Assert.Contains("a hang", e.Message, StringComparison.Ordinal);
            gate.Set();
        }
        finally
        {
            FuzzRunner.InputTimeout = old;
        }
    }

    [Fact]
    public void An_allocation_sized_by_a_length_field_fails()
    {
        using var t = new Broken(input => GC.KeepAlive(new byte[BitConverter.ToInt32(input, 0) & 0x3FFFFFF]), bound: 1 << 16);
        var e = Assert.Throws<FuzzFailureException>(() => FuzzRunner.Run(t, 5, 10_000));
        Assert.Contains("over the bound", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_valid_frame_refused_by_its_decoder_fails_the_seed_check()
    {
        using var t = new ProtocolTarget();
        var frame = ProtocolSeeds.Requests()[5].ToArray(); // a delete request, whose last field is a bool
        frame[^1] = 2;
        Assert.Throws<FuzzFailureException>(() => FuzzRunner.Execute(t, frame, () => "test", seed: true));
        Assert.Null(FuzzRunner.Execute(t, frame, () => "test")); // as a mutated input it is a clean refusal
    }
}
