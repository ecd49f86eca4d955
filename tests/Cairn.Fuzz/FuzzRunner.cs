using System.Diagnostics;
using System.Text;

namespace Cairn.Fuzz;

/// <summary>What one run did.</summary>
/// <param name="Target">The target's name.</param>
/// <param name="Seed">The run's seed.</param>
/// <param name="Iterations">Mutated inputs run.</param>
/// <param name="Accepted">Inputs the decoder accepted.</param>
/// <param name="Refused">Inputs refused with a clean exception, by exception type.</param>
/// <param name="Elapsed">Wall time.</param>
public sealed record FuzzReport(string Target, ulong Seed, long Iterations, long Accepted, IReadOnlyDictionary<string, long> Refused, TimeSpan Elapsed)
{
    /// <summary>One line for people.</summary>
    public override string ToString() =>
        FormattableString.Invariant($"{Target}: seed {Seed}, {Iterations} inputs in {Elapsed.TotalSeconds:F1} s, {Accepted} accepted, refused: ") +
        string.Join(", ", Refused.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => FormattableString.Invariant($"{kv.Key} {kv.Value}")));
}

/// <summary>
/// Runs a target on its seeds, then on mutated inputs derived from a run seed. Each input runs on a pool thread under a
/// time budget (<see cref="InputTimeout"/>: a hang fails with the input), with the bytes allocated on that thread
/// measured against the target's <see cref="FuzzTarget.AllocationBound"/>. A failure throws
/// <see cref="FuzzFailureException"/> whose message holds the target, seed, iteration and input in hex; the input is
/// also written under the temp directory for <c>Cairn.Fuzz repro</c>.
/// </summary>
public static class FuzzRunner
{
    /// <summary>Time one input may take (generous: CI machines are shared).</summary>
    public static TimeSpan InputTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>Runs every seed, then <paramref name="iterations"/> mutated inputs or until <paramref name="duration"/> has passed, whichever is first.</summary>
    public static FuzzReport Run(FuzzTarget target, ulong seed, long iterations, TimeSpan? duration = null, Action<FuzzReport>? progress = null, long from = 0)
    {
        ArgumentNullException.ThrowIfNull(target);
        var clock = Stopwatch.StartNew();
        var seeds = target.Seeds;
        for (var i = 0; i < seeds.Count; i++)
        {
            var error = Execute(target, seeds[i], () => $"target {target.Name}, seed input #{i} (a valid input from the real encoder)", seed: true);
            if (error is not null) throw Fail(target, seeds[i], $"seed input #{i} (valid, from the real encoder) was refused", error, seed, -1);
        }
        var refused = new Dictionary<string, long>(StringComparer.Ordinal);
        long accepted = 0, done = 0;
        var lastProgress = clock.Elapsed;
        for (var it = from; it - from < iterations && (duration is null || clock.Elapsed < duration); it++)
        {
            var input = Generate(target, seed, it);
            var error = Execute(target, input, () => $"target {target.Name}, seed {seed}, iteration {it}");
            if (error is null) accepted++;
            else if (target.IsClean(error)) refused[error.GetType().Name] = refused.GetValueOrDefault(error.GetType().Name) + 1;
            else throw Fail(target, input, $"unclean exception {error.GetType().FullName} (clean: {target.CleanExceptions})", error, seed, it);
            done++;
            if (progress is not null && clock.Elapsed - lastProgress > TimeSpan.FromSeconds(10))
            {
                lastProgress = clock.Elapsed;
                progress(new FuzzReport(target.Name, seed, done, accepted, refused, clock.Elapsed));
            }
        }
        return new FuzzReport(target.Name, seed, done, accepted, refused, clock.Elapsed);
    }

    /// <summary>The mutated input of iteration <paramref name="iteration"/> of run <paramref name="seed"/> (replayable alone).</summary>
    public static byte[] Generate(FuzzTarget target, ulong seed, long iteration)
    {
        ArgumentNullException.ThrowIfNull(target);
        var m = Mutator.For(seed, iteration);
        var seeds = target.Seeds;
        var a = seeds[m.Next(seeds.Count)];
        var b = seeds[m.Next(seeds.Count)];
        return target.Mutate(m, a, b);
    }

    /// <summary>
    /// Runs one input; returns null when accepted, the exception when refused. Throws <see cref="FuzzFailureException"/>
    /// on a hang, an allocation past the bound, or a property violation.
    /// </summary>
    public static Exception? Execute(FuzzTarget target, byte[] input, Func<string> where, bool seed = false)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(where);
        var task = Task.Run(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            Exception? error = null;
            try
            {
                if (seed) target.RunSeed(input);
                else target.Run(input);
            }
            catch (Exception e)
            {
                error = e;
            }
            return (Error: error, Allocated: GC.GetAllocatedBytesForCurrentThread() - before);
        });
        if (!task.Wait(InputTimeout))
        {
            throw Fail(target, input, $"{where()}: no answer within {InputTimeout.TotalSeconds} s (a hang)", null, null, null);
        }
        var (error, allocated) = task.Result;
        if (error is FuzzPropertyException)
        {
            throw Fail(target, input, $"{where()}: property violated", error, null, null);
        }
        var bound = target.AllocationBound(input.Length);
        if (allocated > bound)
        {
            throw Fail(target, input, $"{where()}: allocated {allocated} bytes for a {input.Length}-byte input, over the bound of {bound}", error, null, null);
        }
        return error;
    }

    private static FuzzFailureException Fail(FuzzTarget target, byte[] input, string what, Exception? error, ulong? seed, long? iteration)
    {
        var sb = new StringBuilder();
        sb.Append("FUZZ FAILURE in ").Append(target.Name).Append(": ").AppendLine(what);
        if (seed is not null) sb.Append(FormattableString.Invariant($"seed {seed}, iteration {iteration} (replay: Cairn.Fuzz mutate {target.Name} --seed {seed} --from {iteration} --iterations 1)")).AppendLine();
        if (error is not null) sb.AppendLine(error.ToString());
        try
        {
            var dir = Path.Combine(Path.GetTempPath(), "cairn-fuzz-failures");
            Directory.CreateDirectory(dir);
            var file = Path.Combine(dir, FormattableString.Invariant($"{target.Name}-{DateTime.UtcNow:yyyyMMddHHmmssfff}.bin"));
            File.WriteAllBytes(file, input);
            sb.Append("input written to ").Append(file).AppendLine(FormattableString.Invariant($" (replay: Cairn.Fuzz repro {target.Name} {file})"));
        }
        catch (IOException)
        {
        }
        sb.Append(FormattableString.Invariant($"input ({input.Length} bytes, hex): ")).AppendLine(Convert.ToHexString(input));
        return new FuzzFailureException(sb.ToString(), error);
    }
}
