namespace Cairn.Kv.Tests;

/// <summary>Whether the key a compare looks at is live (a deleted key is missing: its tombstone is no key).</summary>
public enum KeyState { Missing, Live }

/// <summary>
/// Where a compare's operand lies. For a live key, against the key's own field: its number, or its value in byte
/// order. For a missing key, by itself: the number's sign, or whether the bytes are empty.
/// </summary>
public enum Operand { BelowKeys, AtKeys, AboveKeys, Negative, Zero, Positive, EmptyBytes, SomeBytes }

/// <summary>One cell group of the table: which results hold for a target on a key in that state, with the operand there.</summary>
public sealed record CompareCase(CompareTarget Target, KeyState Key, Operand Operand, CompareResult[] Holds, string Why);

/// <summary>What a compare over a range [key, end) that holds no live key gives.</summary>
public enum EmptyRange
{
    /// <summary>Every compare holds: "every key of the range holds", of no key.</summary>
    HoldsVacuously,

    /// <summary>The compare is that of a missing key (numbers 0; a value compare fails).</summary>
    AsMissingKey,
}

/// <summary>
/// etcd's compare rules as a table, written from etcd's documentation and its server's compare code
/// (api/etcdserverpb/rpc.proto, message Compare; server/etcdserver/txn/txn.go, applyCompare and compareKV), not from
/// Cairn's Mvcc.Holds: the reference model evaluates compares by looking them up here, and CompareTableTests runs
/// every row against the store. A result reads "the key's field R the operand": Less holds when the key's is smaller.
/// Where Cairn departs from etcd, both are written down (<see cref="EmptyRangeInCairn"/>, <see cref="NestedComparesSeeEarlierWritesInCairn"/>).
/// </summary>
public static class CompareTable
{
    private static readonly CompareResult[] None = [];
    private static readonly CompareResult[] Equal = [CompareResult.Equal];
    private static readonly CompareResult[] KeysGreater = [CompareResult.NotEqual, CompareResult.Greater];
    private static readonly CompareResult[] KeysLess = [CompareResult.NotEqual, CompareResult.Less];

    private const string Ordered = "a live key's field is compared with the operand";
    private const string Bytes = "a live key's value is compared with the operand in byte order (a prefix is smaller; an empty value is a value)";
    private const string Zero = "a missing key compares as an empty KeyValue: version, create and mod revision and lease are 0";
    private const string NoValue = "a value compare on a missing key fails whatever the result, = and ≠ too: the key has no value, which is not an empty one";

    public static readonly CompareCase[] Cases =
    [
        // Live keys: the field against the operand, for every target alike.
        new(CompareTarget.Value, KeyState.Live, Operand.BelowKeys, KeysGreater, Bytes),
        new(CompareTarget.Value, KeyState.Live, Operand.AtKeys, Equal, Bytes),
        new(CompareTarget.Value, KeyState.Live, Operand.AboveKeys, KeysLess, Bytes),
        new(CompareTarget.Version, KeyState.Live, Operand.BelowKeys, KeysGreater, Ordered),
        new(CompareTarget.Version, KeyState.Live, Operand.AtKeys, Equal, Ordered),
        new(CompareTarget.Version, KeyState.Live, Operand.AboveKeys, KeysLess, Ordered),
        new(CompareTarget.Create, KeyState.Live, Operand.BelowKeys, KeysGreater, Ordered),
        new(CompareTarget.Create, KeyState.Live, Operand.AtKeys, Equal, Ordered),
        new(CompareTarget.Create, KeyState.Live, Operand.AboveKeys, KeysLess, Ordered),
        new(CompareTarget.Mod, KeyState.Live, Operand.BelowKeys, KeysGreater, Ordered),
        new(CompareTarget.Mod, KeyState.Live, Operand.AtKeys, Equal, Ordered),
        new(CompareTarget.Mod, KeyState.Live, Operand.AboveKeys, KeysLess, Ordered),
        new(CompareTarget.Lease, KeyState.Live, Operand.BelowKeys, KeysGreater, Ordered + " (0 when it has no lease)"),
        new(CompareTarget.Lease, KeyState.Live, Operand.AtKeys, Equal, Ordered + " (0 when it has no lease)"),
        new(CompareTarget.Lease, KeyState.Live, Operand.AboveKeys, KeysLess, Ordered + " (0 when it has no lease)"),

        // Missing keys: numbers are 0, so the operand's sign decides.
        new(CompareTarget.Version, KeyState.Missing, Operand.Negative, KeysGreater, Zero),
        new(CompareTarget.Version, KeyState.Missing, Operand.Zero, Equal, Zero),
        new(CompareTarget.Version, KeyState.Missing, Operand.Positive, KeysLess, Zero),
        new(CompareTarget.Create, KeyState.Missing, Operand.Negative, KeysGreater, Zero),
        new(CompareTarget.Create, KeyState.Missing, Operand.Zero, Equal, Zero),
        new(CompareTarget.Create, KeyState.Missing, Operand.Positive, KeysLess, Zero),
        new(CompareTarget.Mod, KeyState.Missing, Operand.Negative, KeysGreater, Zero),
        new(CompareTarget.Mod, KeyState.Missing, Operand.Zero, Equal, Zero),
        new(CompareTarget.Mod, KeyState.Missing, Operand.Positive, KeysLess, Zero),
        new(CompareTarget.Lease, KeyState.Missing, Operand.Negative, KeysGreater, Zero),
        new(CompareTarget.Lease, KeyState.Missing, Operand.Zero, Equal, Zero),
        new(CompareTarget.Lease, KeyState.Missing, Operand.Positive, KeysLess, Zero),

        // Missing keys, value: nothing holds.
        new(CompareTarget.Value, KeyState.Missing, Operand.EmptyBytes, None, NoValue),
        new(CompareTarget.Value, KeyState.Missing, Operand.SomeBytes, None, NoValue),
    ];

    /// <summary>
    /// etcd: a compare with a range end holds when it holds for every key in [key, end) (end [0]: every key from key
    /// on; an end at or below key: no key), and a range with no key is compared as a missing key (applyCompare:
    /// "if len(rr.KVs) == 0 ... compareKV(c, mvccpb.KeyValue{})", a value compare failing).
    /// </summary>
    public const EmptyRange EmptyRangeInEtcd = EmptyRange.AsMissingKey;

    /// <summary>
    /// Cairn: a range with no live key holds for every compare. It differs from etcd wherever a missing key fails
    /// the compare: every value compare, and every number compare that 0 fails (version &gt; 0, create = 5, mod ≠ 0...).
    /// Reported, not changed: changing it changes which branch transactions already in logs take.
    /// </summary>
    public const EmptyRange EmptyRangeInCairn = EmptyRange.HoldsVacuously;

    /// <summary>
    /// etcd evaluates the compares of a transaction and of every nested transaction on the path taken before any
    /// operation runs, against the state before the transaction (txn.go, compareToPath).
    /// </summary>
    public const bool NestedComparesSeeEarlierWritesInEtcd = false;

    /// <summary>
    /// Cairn evaluates a nested transaction's compares when it comes to it, so they see the writes of the operations
    /// before it in the outer transaction. Reported, not changed (as <see cref="EmptyRangeInCairn"/>).
    /// </summary>
    public const bool NestedComparesSeeEarlierWritesInCairn = true;

    private static readonly Dictionary<(CompareTarget, KeyState, Operand), CompareCase> ByCell = Cases.ToDictionary(c => (c.Target, c.Key, c.Operand));

    /// <summary>Where <paramref name="c"/>'s operand lies for the key-value <paramref name="kv"/> (null: missing).</summary>
    public static Operand Classify(Compare c, KeyValue? kv)
    {
        if (kv is null)
        {
            if (c.Target == CompareTarget.Value) return c.Value.Length == 0 ? Operand.EmptyBytes : Operand.SomeBytes;
            return c.Number < 0 ? Operand.Negative : c.Number == 0 ? Operand.Zero : Operand.Positive;
        }
        var order = c.Target switch
        {
            CompareTarget.Value => c.Value.AsSpan().SequenceCompareTo(kv.Value),
            CompareTarget.Version => c.Number.CompareTo(kv.Version),
            CompareTarget.Create => c.Number.CompareTo(kv.CreateRevision),
            CompareTarget.Mod => c.Number.CompareTo(kv.ModRevision),
            CompareTarget.Lease => c.Number.CompareTo(kv.Lease),
            _ => throw new ArgumentOutOfRangeException(nameof(c), c.Target, "no such compare target"),
        };
        return order < 0 ? Operand.BelowKeys : order == 0 ? Operand.AtKeys : Operand.AboveKeys;
    }

    /// <summary>The table's row for <paramref name="c"/> on <paramref name="kv"/> (null: a missing key).</summary>
    public static CompareCase Row(Compare c, KeyValue? kv) =>
        ByCell.TryGetValue((c.Target, kv is null ? KeyState.Missing : KeyState.Live, Classify(c, kv)), out var row)
            ? row
            : throw new InvalidOperationException($"the compare table has no row for {c.Target} on a {(kv is null ? "missing" : "live")} key with the operand {Classify(c, kv)}");

    /// <summary>Whether <paramref name="c"/> holds for one key (null: missing), by the table.</summary>
    public static bool Holds(Compare c, KeyValue? kv) => Array.IndexOf(Row(c, kv).Holds, c.Result) >= 0;

    /// <summary>Whether <paramref name="c"/> holds for the live keys of its range (or its one key), by the table.</summary>
    public static bool Holds(Compare c, IReadOnlyList<KeyValue> inRange, EmptyRange empty)
    {
        if (inRange.Count == 0) return empty == EmptyRange.HoldsVacuously || Holds(c, null);
        foreach (var kv in inRange)
        {
            if (!Holds(c, kv)) return false;
        }
        return true;
    }
}
