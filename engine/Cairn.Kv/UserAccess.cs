namespace Cairn.Kv;

/// <summary>
/// What one user may do, with its permissions merged into sorted, disjoint key intervals per kind, so a check is a
/// binary search and two byte comparisons: no allocation.
/// </summary>
public sealed class UserAccess
{
    private readonly Interval[] _read;
    private readonly Interval[] _write;

    internal UserAccess(AuthUser user, bool root, Interval[] read, Interval[] write)
    {
        User = user;
        IsRoot = root;
        _read = read;
        _write = write;
    }

    /// <summary>The user.</summary>
    public AuthUser User { get; }

    /// <summary>Holds the root role: every key and every administrative operation.</summary>
    public bool IsRoot { get; }

    /// <summary>
    /// Whether every key of the request range is covered: <paramref name="rangeEnd"/> empty for one key, [0] for every
    /// key from <paramref name="key"/> on, else [key, rangeEnd). Read and write are checked separately (ReadWrite: both).
    /// </summary>
    public bool Permits(PermissionType need, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd)
    {
        if (IsRoot) return true;
        if ((need & PermissionType.Read) != 0 && !Covers(_read, key, rangeEnd)) return false;
        if ((need & PermissionType.Write) != 0 && !Covers(_write, key, rangeEnd)) return false;
        return true;
    }

    private static bool Covers(Interval[] intervals, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd)
    {
        // The last interval starting at or before the key is the only one that can cover it (they are disjoint).
        int lo = 0, hi = intervals.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (intervals[mid].Start.AsSpan().SequenceCompareTo(key) <= 0)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        if (found < 0) return false;
        var end = intervals[found].End;
        if (end is null) return true;                                     // open to the end of the key space
        if (rangeEnd.IsEmpty) return end.AsSpan().SequenceCompareTo(key) > 0;  // one key: [key, key\0) is covered when end > key
        if (rangeEnd is [0]) return false;                                // to the end of the key space: only an open interval covers it
        if (rangeEnd.SequenceCompareTo(key) <= 0) return end.AsSpan().SequenceCompareTo(key) > 0; // an empty range: treat as the key alone
        return end.AsSpan().SequenceCompareTo(rangeEnd) >= 0;
    }

    /// <summary>A half-open key interval; <see cref="End"/> null is the end of the key space.</summary>
    internal readonly record struct Interval(byte[] Start, byte[]? End);

    internal static Interval[] Merge(IEnumerable<Permission> permissions, PermissionType kind)
    {
        var list = new List<Interval>();
        foreach (var p in permissions)
        {
            if ((p.Type & kind) == 0) continue;
            if (p.RangeEnd.Length == 0) list.Add(new Interval(p.Key, [.. p.Key, 0]));
            else if (p.RangeEnd is [0]) list.Add(new Interval(p.Key, null));
            else if (p.RangeEnd.AsSpan().SequenceCompareTo(p.Key) > 0) list.Add(new Interval(p.Key, p.RangeEnd));
        }
        list.Sort((a, b) => a.Start.AsSpan().SequenceCompareTo(b.Start));
        var merged = new List<Interval>();
        foreach (var i in list)
        {
            if (merged.Count > 0)
            {
                var last = merged[^1];
                if (last.End is null) continue;                                                // already open to the end
                if (i.Start.AsSpan().SequenceCompareTo(last.End) <= 0)                        // overlaps or touches
                {
                    var end = i.End is null || i.End.AsSpan().SequenceCompareTo(last.End) > 0 ? i.End : last.End;
                    merged[^1] = last with { End = end };
                    continue;
                }
            }
            merged.Add(i);
        }
        return [.. merged];
    }
}
