using Cairn.Faults;

namespace Cairn.Faults.Tests;

/// <summary>
/// The checker against generated histories of a real linearizable register (<see cref="RegisterSimulation"/>) and
/// against a brute-force checker on tiny random histories. Seeds are fixed; a failure names its seed.
/// </summary>
public class PropertyTests
{
    public static TheoryData<int> Seeds => [.. Enumerable.Range(1, 24)];

    private static readonly CheckerOptions Bounded = new() { KeyTimeBudget = TimeSpan.FromSeconds(10), ShrinkTimeBudget = TimeSpan.FromSeconds(2) };

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Histories_of_a_linearizable_register_are_accepted(int seed)
    {
        var h = RegisterSimulation.Generate(seed);
        var report = new LinearizabilityChecker(Bounded).Check(h);
        Assert.True(report.Verdict == Verdict.Linearizable, $"seed {seed}\n{report}");
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void Busy_histories_with_many_unknown_outcomes_are_accepted(int seed)
    {
        var h = RegisterSimulation.Generate(seed, new RegisterSimulation.Options(Processes: 10, Operations: 200, Keys: 2, Unknown: 0.3));
        var report = new LinearizabilityChecker(Bounded).Check(h);
        Assert.True(report.Verdict == Verdict.Linearizable, $"seed {seed}\n{report}");
    }

    [Theory]
    [MemberData(nameof(Seeds))]
    public void The_same_histories_with_one_impossible_read_are_rejected(int seed)
    {
        var h = RegisterSimulation.Generate(seed);
        var (bad, read, _) = RegisterSimulation.Corrupt(h, seed);
        var report = new LinearizabilityChecker(Bounded).Check(bad);
        var key = bad.Operations.Single(o => o.Id == read).Key;
        Assert.True(report.Verdict == Verdict.NotLinearizable, $"seed {seed}, read #{read}\n{report}");
        Assert.Equal([key], report.Violations.Select(v => v.Key));
        var violation = report[key].Violation!;
        Assert.True(violation.Operations.Count <= violation.OriginalCount);
        // Faithful shrinking keeps the one result that makes the history fail.
        Assert.True(violation.Operations.Any(o => o.Id == read), $"seed {seed}: read #{read} left out\n{report}");
        Assert.Equal(Verdict.NotLinearizable, new LinearizabilityChecker(Bounded with { ShrinkTimeBudget = TimeSpan.Zero })
            .Check(new History(violation.Operations)).Verdict);
    }

    [Fact]
    public void Corruptions_mostly_read_from_the_future()
    {
        // The corruption the brief asks for (a read of a write invoked after it completed) is the common case.
        var future = Enumerable.Range(1, 24).Count(s => RegisterSimulation.Corrupt(RegisterSimulation.Generate(s), s).FromTheFuture);
        Assert.True(future >= 12, $"{future} of 24");
    }

    [Theory]
    [InlineData(5)]
    [InlineData(2)]
    public void Agrees_with_brute_force_on_tiny_random_histories(int oneInUnknown)
    {
        var verdicts = new int[2];
        for (var seed = 0; seed < 400; seed++)
        {
            var h = TinyRandom(seed, oneInUnknown);
            var expected = BruteForce(h);
            var report = new LinearizabilityChecker(new CheckerOptions { ShrinkTimeBudget = TimeSpan.Zero }).Check(h);
            Assert.True((report.Verdict == Verdict.Linearizable) == expected, $"seed {seed}: brute force says {expected}\n{report}");
            verdicts[expected ? 1 : 0]++;
        }
        Assert.True(verdicts[0] > 50 && verdicts[1] > 50, $"{verdicts[1]} linearizable, {verdicts[0]} not: the generator should give both");
    }

    /// <summary>Up to 7 operations on one key with random intervals, outcomes and results over the values 1, 2 and absent.</summary>
    internal static History TinyRandom(int seed, int oneInUnknown)
    {
        var random = new Random(seed);
        string? V() => random.Next(3) switch { 0 => null, 1 => "1", _ => "2" };
        var h = new HistoryBuilder();
        var count = random.Next(1, 8);
        for (var i = 0; i < count; i++)
        {
            var invoke = random.Next(0, 20);
            var complete = invoke + random.Next(0, 8);
            var unknown = random.Next(oneInUnknown) == 0;
            switch (random.Next(4))
            {
                case 0:
                    var v = V() ?? "1";
                    if (unknown) h.PutUnknown(i, "x", v, invoke); else h.Put(i, "x", v, invoke, complete);
                    break;
                case 1:
                    h.Get(i, "x", V(), invoke, complete);
                    break;
                case 2:
                    if (unknown) h.DeleteUnknown(i, "x", invoke); else h.Delete(i, "x", random.Next(2), invoke, complete);
                    break;
                default:
                    var nv = V() ?? "2";
                    if (unknown) h.CasUnknown(i, "x", V(), nv, invoke); else h.Cas(i, "x", V(), nv, random.Next(2) == 0, invoke, complete);
                    break;
            }
        }
        return h.Build();
    }

    /// <summary>Every subset of the unknown operations, every order consistent with real time, through the model.</summary>
    internal static bool BruteForce(History h)
    {
        var ok = h.Operations.Where(o => o.Outcome == Outcome.Ok).ToList();
        var unknown = h.Operations.Where(o => o.Outcome == Outcome.Unknown).ToList();
        for (var mask = 0; mask < 1 << unknown.Count; mask++)
        {
            var chosen = ok.Concat(unknown.Where((_, i) => (mask & (1 << i)) != 0)).ToList();
            if (Permute(chosen, new bool[chosen.Count], [], null)) return true;
        }
        return false;

        static bool Permute(List<Operation> ops, bool[] used, List<Operation> sequence, string? state)
        {
            if (sequence.Count == ops.Count) return true;
            for (var i = 0; i < ops.Count; i++)
            {
                if (used[i]) continue;
                // Real time: every unused operation that completed before this one was invoked must come first.
                if (ops.Where((o, j) => !used[j] && j != i).Any(o => o.Complete < ops[i].Invoke)) continue;
                if (!RegisterModel.Step(state, ops[i], out var next)) continue;
                used[i] = true;
                sequence.Add(ops[i]);
                if (Permute(ops, used, sequence, next)) return true;
                sequence.RemoveAt(sequence.Count - 1);
                used[i] = false;
            }
            return false;
        }
    }
}
