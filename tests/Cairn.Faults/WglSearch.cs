using System.Diagnostics;

namespace Cairn.Faults;

/// <summary>One operation placed in a linearization, with the key's value after it (null: absent).</summary>
public sealed record LinearizedStep(Operation Operation, string? StateAfter);

/// <summary>What one search of a key's sub-history found.</summary>
internal sealed record SearchResult(
    Verdict Verdict,
    long Steps,
    IReadOnlyList<LinearizedStep> Linearization, // linearizable: a witness; otherwise the longest prefix reached
    Operation? Blocked,                          // not linearizable: the operation the longest prefix could not get past
    string? BlockedState,
    long Horizon);                               // the latest invocation of any operation the search tried

/// <summary>
/// Wing and Gong's search for a linearization with Lowe's just-in-time optimisation and memo (G. Lowe, "Testing for
/// linearizability", 2017, sections 3–4; the form Porcupine and Knossos use), over one key's sub-history.
///
/// The ok operations are a doubly linked list of call and return entries by time. At each configuration the search
/// may linearize any operation whose call comes before the first return in the list (every operation that completed
/// before it was invoked is already linearized) and whose result the model accepts in the current state. If the new
/// configuration (operations linearized, model state) has not been seen before, it lifts the operation out of the list
/// and starts again from the head; if no candidate works, some operation had to take effect before that first return
/// and none could: it backtracks, undoing the last linearization and trying the next candidate after it. The memo
/// prunes every configuration reached twice by different orders — what makes the search practical, since orders of
/// commuting operations all lead to the same one.
///
/// Unknown outcomes never return, so they may be linearized anywhere after their call; and since they may also never
/// take effect, the search succeeds as soon as every ok operation is linearized. Their calls are a second list, tried
/// after the ok candidates (a linearization that needs fewer of them is found first, and the memo's subsumption works
/// best that way round). Pending unknown writes pile up and would make the search exponential in their number, so
/// three dominance rules (docs/faults.md, "Unknown outcomes") cut them down without losing a linearization:
/// <list type="number">
/// <item>States are abstracted: values no operation observes (no get read them, no swap compares with them) are all
/// one state, since the model cannot tell them apart. An unknown operation that leaves the abstract state as it was
/// is never linearized: not linearizing it reaches the same state with one more operation still available.</item>
/// <item>Unknown operations with the same abstract effect (a class) are interchangeable once invoked: neither ever
/// completes, so from the moment both may take effect, both may take effect at every later point. When one of a
/// class can take effect now, so can every earlier-invoked one; only the earliest is tried.</item>
/// <item>The memo subsumes: see <see cref="Memo"/>.</item>
/// </list>
/// And one rule for ok operations: one that can take effect now without changing the state is linearized at once, with
/// no alternatives (see Eager below). High concurrency with many reads no longer branches on every read.
/// </summary>
internal static class WglSearch
{
    public static SearchResult Run(IReadOnlyList<Operation> ops, string? initial, long maxSteps, long deadline)
    {
        var n = ops.Count;
        var model = AbstractModel.Build(ops, initial);
        // Entry e is op e >> 1's call when e is even, its return when odd. Ok operations have both in the ok list;
        // unknown ones only their call, in the unknown list.
        var order = Enumerable.Range(0, 2 * n).Where(e => (e & 1) == 0 || ops[e >> 1].Outcome == Outcome.Ok).ToArray();
        Array.Sort(order, (a, b) =>
        {
            var ta = (a & 1) == 0 ? ops[a >> 1].Invoke : ops[a >> 1].Complete;
            var tb = (b & 1) == 0 ? ops[b >> 1].Invoke : ops[b >> 1].Complete;
            if (ta != tb) return ta.CompareTo(tb);
            // At equal times calls come first: touching intervals count as concurrent (the ticks cannot order them).
            return (a & 1) != (b & 1) ? (a & 1).CompareTo(b & 1) : (a >> 1).CompareTo(b >> 1);
        });
        var rank = new int[2 * n];
        for (var i = 0; i < order.Length; i++) rank[order[i]] = i;
        var okList = new EntryList(2 * n, order.Where(e => ops[e >> 1].Outcome == Outcome.Ok));
        var unknownList = new EntryList(2 * n, order.Where(e => ops[e >> 1].Outcome == Outcome.Unknown));
        var earlierOfClass = model.EarlierOfClass(rank);
        var pure = ops.Select(o => o.Outcome == Outcome.Ok && o.Kind switch
        {
            OperationKind.Get => true,
            OperationKind.Delete => o.Deleted == 0,
            OperationKind.CompareAndSwap => !o.Succeeded || o.Expected == o.Value,
            _ => false,
        }).ToArray();

        var okRemaining = ops.Count(o => o.Outcome == Outcome.Ok);
        var bits = new ulong[(n + 63) / 64];   // every linearized operation
        var okBits = new ulong[bits.Length];    // the ok ones among them
        var counts = new int[model.Classes];   // how many of each class of unknown operations are linearized
        var memo = new Memo();
        memo.Add(okBits, model.Initial, counts);
        var stack = new List<Frame>();
        var state = model.Initial;
        var real = initial;
        long steps = 0;
        var horizon = long.MinValue;
        var firstReturn = -2; // the first return entry in the ok list; -2: to be found again

        var bestDepth = -1;
        IReadOnlyList<LinearizedStep> best = [];
        Operation? blocked = null;
        string? blockedState = null;

        // The cursor: the next candidate, in the ok list until its first return, then in the unknown list.
        var inUnknown = false;
        var entry = okList.First;
        var fresh = true; // a configuration not yet looked at: try the eager rule first
        while (true)
        {
            if (okRemaining == 0) return new(Verdict.Linearizable, steps, Steps(ops, stack), null, null, horizon);
            if (++steps > maxSteps || ((steps & 4095) == 0 && Stopwatch.GetTimestamp() > deadline))
                return new(Verdict.Unknown, steps, best, blocked, blockedState, horizon);

            if (fresh)
            {
                fresh = false;
                var eager = Eager();
                if (eager >= 0)
                {
                    Mark(eager >> 1, true);
                    if (memo.Add(okBits, state, counts)) Push(eager, state, forced: true);
                    else if (!Backtrack(unmark: eager)) return new(Verdict.NotLinearizable, steps, best, blocked, blockedState, horizon);
                    continue;
                }
            }

            if (!inUnknown && (entry & 1) == 1)
            {
                // The first return: the ok candidates are done; now the unknown calls invoked before it.
                inUnknown = true;
                entry = unknownList.First;
            }
            if (inUnknown && (entry == EntryList.End || rank[entry] > rank[FirstReturn()]))
            {
                if (!Backtrack(unmark: -1)) return new(Verdict.NotLinearizable, steps, best, blocked, blockedState, horizon);
                continue;
            }

            var id = entry >> 1;
            horizon = Math.Max(horizon, ops[id].Invoke);
            if (model.Step(state, id, out var after) && !Dominated(id, after))
            {
                Mark(id, true);
                if (memo.Add(okBits, after, counts))
                {
                    Push(entry, after, forced: false);
                    continue;
                }
                Mark(id, false);
            }
            entry = (inUnknown ? unknownList : okList).Next(entry);
        }

        // The eager rule: an ok operation that never changes the state wherever it takes effect (a get, a swap that
        // failed, a delete that deleted nothing) and whose result fits the state now may as well take effect now —
        // moving it to the front of any way to finish still works — so it is linearized with no alternatives tried.
        // (A put of the value already there is not one: later, the same put would change the state.) Returns its call
        // entry, or -1.
        int Eager()
        {
            for (var e = okList.First; (e & 1) == 0; e = okList.Next(e))
                if (pure[e >> 1] && model.Step(state, e >> 1, out _))
                {
                    horizon = Math.Max(horizon, ops[e >> 1].Invoke);
                    return e;
                }
            return -1;
        }

        void Push(int call, int after, bool forced)
        {
            RegisterModel.Step(real, ops[call >> 1], out var realAfter);
            stack.Add(new Frame(call, state, real, realAfter, forced));
            state = after;
            real = realAfter;
            Lift(call);
            inUnknown = false;
            entry = okList.First;
            fresh = true;
        }

        // No candidate left in this configuration (or its eager operation, marked but not pushed, leads to a configuration
        // already explored): undo the last linearization and move the cursor past it. An eager one had no alternatives,
        // so undoing it fails that configuration too. False when there is nothing left to undo.
        bool Backtrack(int unmark)
        {
            if (unmark >= 0)
            {
                Mark(unmark >> 1, false);
            }
            else if (stack.Count > bestDepth)
            {
                bestDepth = stack.Count;
                best = Steps(ops, stack);
                blocked = ops[FirstReturn() >> 1];
                blockedState = real;
            }
            while (true)
            {
                if (stack.Count == 0) return false;
                var top = stack[^1];
                stack.RemoveAt(stack.Count - 1);
                var undone = top.Call >> 1;
                Mark(undone, false);
                state = top.Before;
                real = top.RealBefore;
                Unlift(top.Call);
                if (top.Forced) continue;
                inUnknown = ops[undone].Outcome == Outcome.Unknown;
                entry = (inUnknown ? unknownList : okList).Next(top.Call);
                return true;
            }
        }

        void Mark(int id, bool linearized)
        {
            var mask = 1UL << (id & 63);
            if (linearized) bits[id >> 6] |= mask; else bits[id >> 6] &= ~mask;
            var cls = model.ClassOf(id);
            if (cls < 0)
            {
                if (linearized) okBits[id >> 6] |= mask; else okBits[id >> 6] &= ~mask;
                okRemaining += linearized ? -1 : 1;
            }
            else
            {
                counts[cls] += linearized ? 1 : -1;
            }
        }

        // The first two dominance rules (see the summary). Under the second, the linearized members of a class are
        // always its earliest-invoked ones, so only the one just before needs looking at.
        bool Dominated(int id, int after)
        {
            if (ops[id].Outcome != Outcome.Unknown) return false;
            if (after == state) return true;
            var earlier = earlierOfClass[id];
            return earlier >= 0 && (bits[earlier >> 6] & (1UL << (earlier & 63))) == 0;
        }

        int FirstReturn()
        {
            if (firstReturn != -2) return firstReturn;
            var e = okList.First;
            while ((e & 1) == 0) e = okList.Next(e); // an ok operation remains, so its return does
            return firstReturn = e;
        }

        void Lift(int call)
        {
            if (ops[call >> 1].Outcome == Outcome.Ok)
            {
                okList.Remove(call);
                okList.Remove(call | 1);
            }
            else
            {
                unknownList.Remove(call);
            }
            firstReturn = -2;
        }

        void Unlift(int call)
        {
            if (ops[call >> 1].Outcome == Outcome.Ok)
            {
                okList.Restore(call | 1);
                okList.Restore(call);
            }
            else
            {
                unknownList.Restore(call);
            }
            firstReturn = -2;
        }
    }

    private static LinearizedStep[] Steps(IReadOnlyList<Operation> ops, List<Frame> stack) =>
        [.. stack.Select(f => new LinearizedStep(ops[f.Call >> 1], f.RealAfter))];

    /// <summary>
    /// One linearized operation: its call entry, the state before (abstract and real) and after (real), and whether it
    /// was linearized by the eager rule (then its configuration has no other candidates to try).
    /// </summary>
    private readonly record struct Frame(int Call, int Before, string? RealBefore, string? RealAfter, bool Forced);

    /// <summary>
    /// A doubly linked list of entries in time order. Dancing links: a removed entry keeps its own links, so entries
    /// restored in the reverse order of their removal put the list back as it was.
    /// </summary>
    private sealed class EntryList
    {
        public const int End = -1;
        private const int Head = -2;

        private readonly int[] _next;
        private readonly int[] _prev;
        private int _first = End;

        public EntryList(int capacity, IEnumerable<int> entries)
        {
            _next = new int[capacity];
            _prev = new int[capacity];
            var last = Head;
            foreach (var e in entries)
            {
                _prev[e] = last;
                if (last == Head) _first = e; else _next[last] = e;
                last = e;
            }
            if (last != Head) _next[last] = End;
        }

        public int First => _first;

        public int Next(int e) => _next[e];

        public void Remove(int e)
        {
            if (_prev[e] == Head) _first = _next[e]; else _next[_prev[e]] = _next[e];
            if (_next[e] != End) _prev[_next[e]] = _prev[e];
        }

        public void Restore(int e)
        {
            if (_prev[e] == Head) _first = e; else _next[_prev[e]] = e;
            if (_next[e] != End) _prev[_next[e]] = e;
        }
    }
}
