namespace Cairn.Faults;

/// <summary>
/// The search's memo of configurations already explored (Lowe's cache), with subsumption for unknown operations. A
/// configuration is the set of ok operations linearized, the abstract state, and how many of each class of unknown
/// operations are linearized (always a class's earliest-invoked ones, so the count says which). A configuration is
/// not worth exploring if one with the same ok operations and state, and no more of any unknown class, was: every way
/// to finish from the new one finishes from the old one too, the extra unknown operations simply never taking effect.
/// With no unknown operations this is exactly Lowe's (set, state) cache.
/// </summary>
internal sealed class Memo
{
    // Per (ok set, state), the minimal unknown-class count vectors explored: an antichain.
    private readonly Dictionary<Key, List<int[]>> _seen = new(Key.Comparer);

    /// <summary>Records the configuration; false when it (or one subsuming it) was already recorded.</summary>
    public bool Add(ulong[] okBits, int state, int[] counts)
    {
        var probe = new Key(okBits, state);
        if (!_seen.TryGetValue(probe, out var explored))
        {
            _seen.Add(new Key((ulong[])okBits.Clone(), state), [(int[])counts.Clone()]);
            return true;
        }
        foreach (var c in explored)
            if (AtMost(c, counts)) return false;
        explored.RemoveAll(c => AtMost(counts, c));
        explored.Add((int[])counts.Clone());
        return true;
    }

    private static bool AtMost(int[] a, int[] b)
    {
        for (var i = 0; i < a.Length; i++)
            if (a[i] > b[i]) return false;
        return true;
    }

    private readonly struct Key(ulong[] bits, int state)
    {
        public static readonly IEqualityComparer<Key> Comparer = new KeyComparer();

        private readonly ulong[] _bits = bits;
        private readonly int _state = state;
        private readonly int _hash = Hash(bits, state);

        private static int Hash(ulong[] bits, int state)
        {
            var h = new HashCode();
            foreach (var b in bits) h.Add(b);
            h.Add(state);
            return h.ToHashCode();
        }

        private sealed class KeyComparer : IEqualityComparer<Key>
        {
            public bool Equals(Key x, Key y) => x._hash == y._hash && x._state == y._state && x._bits.AsSpan().SequenceEqual(y._bits);

            public int GetHashCode(Key key) => key._hash;
        }
    }
}
