namespace Cairn.Scaling;

/// <summary>Lock-free byte counters shared by the counting pools.</summary>
internal static class Counters
{
    /// <summary>Subtracts <paramref name="amount"/>, stopping at 0 (the estimate never goes negative).</summary>
    public static void SubtractFloor(ref long counter, long amount)
    {
        var current = Volatile.Read(ref counter);
        while (true)
        {
            var next = Math.Max(0, current - amount);
            var seen = Interlocked.CompareExchange(ref counter, next, current);
            if (seen == current) return;
            current = seen;
        }
    }

    /// <summary>Adds <paramref name="amount"/>, stopping at <paramref name="ceiling"/>.</summary>
    public static void AddCeiling(ref long counter, long amount, long ceiling)
    {
        var current = Volatile.Read(ref counter);
        while (true)
        {
            var next = Math.Min(ceiling, current + amount);
            var seen = Interlocked.CompareExchange(ref counter, next, current);
            if (seen == current) return;
            current = seen;
        }
    }
}
