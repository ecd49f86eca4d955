using System.Diagnostics;

namespace Cairn.Faults;

/// <summary>
/// Shrinks a non-linearizable sub-history to a smaller one that still fails, the way delta debugging does: remove a
/// run of operations, keep the removal if the rest still fails, and halve the run length when no run can go, down to
/// single operations (then the result is 1-minimal).
///
/// A removal must also keep the evidence <em>faithful</em>: no removed operation may be one that could have explained
/// a kept operation's result (see <see cref="Faithful"/>). Without that rule a sub-history can fail for a reason the
/// full history does not have — drop the delete between a put and a read of "absent" and the read looks stale. With
/// it, the kept operations contradict each other whatever the removed ones did; in particular, when a single result
/// makes a history fail, the evidence contains it.
/// </summary>
internal static class Shrinker
{
    public static (IReadOnlyList<Operation> Smallest, bool Minimal) Shrink(
        IReadOnlyList<Operation> failing, string? initial, SearchResult failure, long deadline)
    {
        var originalSteps = failure.Steps;
        // First cut everything invoked after the search's horizon: it never tried those operations, and they are not
        // what stopped it (an operation whose completion bounded a configuration was tried in it), so the same search
        // fails the same way without them. An operation left whose result a cut one could explain goes too, until none
        // is left, so that the prefix stays faithful; the prefix is kept only if it still fails.
        var prefix = failing.Where(o => o.Invoke <= failure.Horizon).ToList();
        if (prefix.Count < failing.Count)
        {
            while (prefix.Count > 0 && Helped(prefix, failing) is { Count: > 0 } helped) prefix.RemoveAll(helped.Contains);
            var cut = prefix.ToArray();
            if (cut.Length > 0 && Faithful(cut, failing, initial) && Fails(cut, initial, long.MaxValue, deadline)) failing = cut;
        }
        var current = failing;
        var stepBudget = Math.Max(100_000, originalSteps * 4);
        var chunk = Math.Max(1, current.Count / 2);
        while (true)
        {
            var removedAny = false;
            // Later operations first: what follows a violation rarely explains it.
            for (var end = current.Count; end > 0 && current.Count > 1;)
            {
                if (Stopwatch.GetTimestamp() > deadline) return (current, false);
                var start = Math.Max(0, end - chunk);
                var candidate = current.Take(start).Concat(current.Skip(end)).ToArray();
                if (Faithful(candidate, failing, initial) && Fails(candidate, initial, stepBudget, deadline))
                {
                    current = candidate;
                    removedAny = true;
                }
                end = start;
            }
            if (chunk == 1 && !removedAny) return (current, true);
            chunk = Math.Max(1, removedAny ? Math.Min(chunk, current.Count / 2) : chunk / 2);
        }
    }

    private static bool Fails(Operation[] ops, string? initial, long steps, long deadline) =>
        WglSearch.Run(ops, initial, steps, deadline).Verdict == Verdict.NotLinearizable;

    /// <summary>
    /// Whether <paramref name="kept"/> is faithful evidence from <paramref name="original"/>:
    /// <list type="bullet">
    /// <item>no removed operation could have been the last change before a kept operation that depends on the state
    /// (a get, an ok delete, a compare-and-swap) with an effect that operation's result needed — it could not if it
    /// was invoked after the kept one completed, or if a kept put or delete with a known outcome lies wholly between
    /// them in real time; and</item>
    /// <item>a value a kept operation read keeps a possible writer if it had one (for the reader: a stale read shows
    /// the old write, rather than shrinking to "a value nobody wrote").</item>
    /// </list>
    /// </summary>
    internal static bool Faithful(IReadOnlyList<Operation> kept, IReadOnlyList<Operation> original, string? initial)
    {
        if (Helped(kept, original).Count > 0) return false;
        foreach (var x in kept)
        {
            var read = x switch
            {
                { Outcome: Outcome.Ok, Kind: OperationKind.Get, Observed: { } v } => v,
                { Outcome: Outcome.Ok, Kind: OperationKind.CompareAndSwap, Succeeded: true, Expected: { } v } => v,
                _ => null,
            };
            if (read is not null && read != initial && !kept.Any(w => MayHaveWritten(w, read)) && original.Any(w => MayHaveWritten(w, read)))
                return false;
        }
        return true;
    }

    /// <summary>The kept operations whose result a removed operation could explain (see <see cref="Faithful"/>).</summary>
    private static HashSet<Operation> Helped(IReadOnlyList<Operation> kept, IReadOnlyList<Operation> original)
    {
        var helped = new HashSet<Operation>();
        var keptIds = kept.Select(o => o.Id).ToHashSet();
        var removed = original.Where(o => !keptIds.Contains(o.Id) && Effect(o, out _)).ToList();
        if (removed.Count == 0) return helped;

        // Kept operations that set the state whatever it was, by completion, with the latest invocation so far.
        var overwriters = kept.Where(z => z.Outcome == Outcome.Ok && (z.Kind is OperationKind.Put or OperationKind.Delete || z is { Kind: OperationKind.CompareAndSwap, Succeeded: true }))
            .OrderBy(z => z.Complete).ToArray();
        var latestInvoke = new long[overwriters.Length];
        for (var i = 0; i < overwriters.Length; i++) latestInvoke[i] = Math.Max(i == 0 ? long.MinValue : latestInvoke[i - 1], overwriters[i].Invoke);

        foreach (var x in kept)
        {
            if (!DependsOnState(x)) continue;
            // The latest invocation of a kept overwriter that completed before x was invoked: a removed write that
            // completed before it is overwritten before x can see it.
            var before = UpperBound(overwriters, x.Invoke) - 1;
            var shadow = before < 0 ? long.MinValue : latestInvoke[before];
            foreach (var w in removed)
            {
                if (x.Complete < w.Invoke || w.Complete < shadow) continue;
                Effect(w, out var e);
                if (!Helps(e, x)) continue;
                helped.Add(x);
                break;
            }
        }
        return helped;
    }

    /// <summary>Whether the operation may have written <paramref name="value"/> (failed operations are not checked at all).</summary>
    internal static bool MayHaveWritten(Operation w, string value) =>
        w.Value == value && w.Outcome != Outcome.Failed
        && (w.Kind == OperationKind.Put || w is { Kind: OperationKind.CompareAndSwap, Outcome: Outcome.Unknown } or { Kind: OperationKind.CompareAndSwap, Succeeded: true });

    /// <summary>Whether the operation may change the state, and to what (null: absent).</summary>
    private static bool Effect(Operation w, out string? value)
    {
        value = w.Kind == OperationKind.Delete ? null : w.Value;
        return w.Kind switch
        {
            OperationKind.Put => true,
            OperationKind.Delete => w.Outcome == Outcome.Unknown || w.Deleted == 1,
            OperationKind.CompareAndSwap => w.Outcome == Outcome.Unknown || w.Succeeded,
            _ => false,
        };
    }

    private static bool DependsOnState(Operation x) =>
        x.Kind == OperationKind.CompareAndSwap || (x.Outcome == Outcome.Ok && x.Kind is OperationKind.Get or OperationKind.Delete);

    /// <summary>Whether state <paramref name="e"/> just before <paramref name="x"/> is what x's result needed.</summary>
    private static bool Helps(string? e, Operation x) => x switch
    {
        { Kind: OperationKind.Get } => e == x.Observed,
        { Kind: OperationKind.Delete } => (e is not null) == (x.Deleted == 1),
        { Outcome: Outcome.Unknown } => e == x.Expected, // an unknown swap that swaps changes what later operations see
        _ => (e == x.Expected) == x.Succeeded,
    };

    private static int UpperBound(Operation[] byComplete, long invoke)
    {
        // First index whose completion is not strictly before invoke.
        int lo = 0, hi = byComplete.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) >> 1;
            if (byComplete[mid].Complete < invoke) lo = mid + 1; else hi = mid;
        }
        return lo;
    }
}
