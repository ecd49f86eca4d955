using System.Buffers.Binary;
using System.Text;

namespace Cairn.Storage.CrashChild;

/// <summary>What one step of a workload transaction does.</summary>
public enum WorkloadOpKind
{
    Put,
    Delete,
    DropTree,
}

/// <summary>One step of a workload transaction. <see cref="Value"/> is set for puts only.</summary>
public sealed record WorkloadOp(WorkloadOpKind Kind, string Tree, byte[] Key, byte[]? Value);

/// <summary>
/// The crash workload: transaction <c>i</c> is a pure function of (seed, i), so the parent test can replay
/// transactions 1..m into a <see cref="WorkloadModel"/> and compare it with whatever the child left on disk.
/// Each transaction does a few puts and deletes over a few trees (most values small, some large enough for overflow
/// runs, up to 20 KiB), now and then drops a whole tree, and always sets the marker
/// <see cref="MarkerKey"/> in <see cref="MetaTree"/> to its own number.
/// </summary>
public static class Workload
{
    /// <summary>The variable holding a hex master key; when set, the database is encrypted with it.</summary>
    public const string KeyVariable = "CAIRN_CRASH_KEY";

    /// <summary>Options for this run: encrypted when <see cref="KeyVariable"/> is set.</summary>
    public static StorageOptions OptionsFromEnvironment() => new()
    {
        MasterKey = Environment.GetEnvironmentVariable(KeyVariable) is { Length: 64 } hex ? new Cairn.Crypto.StaticKeyProvider(Convert.FromHexString(hex), "crash-test key") : null,
        Failpoint = Failpoint(),
    };

    /// <summary>CAIRN_FAILPOINT=name: the process exits with 137 (as if SIGKILLed) when the engine reaches that point.</summary>
    private static Action<string>? Failpoint() => Environment.GetEnvironmentVariable("CAIRN_FAILPOINT") is { Length: > 0 } armed
        ? name =>
        {
            if (name == armed) Environment.Exit(137);
        }
        : null;

    public const string MetaTree = "meta";

    public static readonly string[] Trees = ["alpha", "beta", "gamma"];

    public static ReadOnlySpan<byte> MarkerKey => "__txn"u8;

    public const int MaxValueBytes = 20 << 10;

    private const int KeySpace = 48; // per tree: small enough that deletes and overwrites hit existing keys

    /// <summary>The steps of transaction <paramref name="txn"/> (1-based) of workload <paramref name="seed"/>.</summary>
    public static IReadOnlyList<WorkloadOp> Transaction(ulong seed, ulong txn)
    {
        var rng = new Random(MixSeed(seed, txn));
        var ops = new List<WorkloadOp>();
        if (rng.Next(60) == 0)
        {
            ops.Add(new WorkloadOp(WorkloadOpKind.DropTree, Trees[rng.Next(Trees.Length)], [], null));
        }
        var count = rng.Next(1, 7);
        for (var i = 0; i < count; i++)
        {
            var tree = Trees[rng.Next(Trees.Length)];
            var key = Encoding.ASCII.GetBytes($"k{rng.Next(KeySpace):D3}");
            if (rng.Next(10) < 3)
            {
                ops.Add(new WorkloadOp(WorkloadOpKind.Delete, tree, key, null));
                continue;
            }
            var roll = rng.Next(100);
            var length = roll switch
            {
                < 85 => rng.Next(0, 200),
                < 95 => rng.Next(200, 4000),      // crosses the inline limit (about 2 KiB at 4 KiB pages)
                _ => rng.Next(4000, MaxValueBytes + 1),
            };
            var value = new byte[length];
            rng.NextBytes(value);
            ops.Add(new WorkloadOp(WorkloadOpKind.Put, tree, key, value));
        }
        return ops;
    }

    /// <summary>Applies transaction <paramref name="txn"/> to an open write transaction (the caller commits).</summary>
    public static void Apply(WriteTransaction tx, ulong seed, ulong txn)
    {
        ArgumentNullException.ThrowIfNull(tx);
        foreach (var op in Transaction(seed, txn))
        {
            switch (op.Kind)
            {
                case WorkloadOpKind.DropTree:
                    tx.DeleteTree(op.Tree);
                    break;
                case WorkloadOpKind.Delete:
                    tx.CreateTree(op.Tree).Delete(op.Key);
                    break;
                default:
                    tx.CreateTree(op.Tree).Put(op.Key, op.Value);
                    break;
            }
        }
        Span<byte> marker = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(marker, txn);
        tx.CreateTree(MetaTree).Put(MarkerKey, marker);
    }

    /// <summary>The marker of the last workload transaction committed in <paramref name="tx"/>'s view; 0 when none.</summary>
    public static ulong ReadMarker(Transaction tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        if (!tx.TryOpenTree(MetaTree, out var meta) || !meta.TryGet(MarkerKey, out var value)) return 0;
        if (value.Length != 8) throw new InvalidDataException($"marker holds {value.Length} bytes, expected 8");
        return BinaryPrimitives.ReadUInt64LittleEndian(value);
    }

    /// <summary>SplitMix64 of (seed, txn), folded to a positive <see cref="Random"/> seed.</summary>
    private static int MixSeed(ulong seed, ulong txn)
    {
        var z = seed + (txn * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        z ^= z >> 31;
        return (int)(z & 0x7FFFFFFF);
    }
}

/// <summary>
/// What the database should hold after workload transactions 1..<see cref="Applied"/>: trees by name, each a sorted
/// map of key to value in Cairn's bytewise order. Advanced one transaction at a time.
/// </summary>
public sealed class WorkloadModel(ulong seed)
{
    private readonly Dictionary<string, SortedDictionary<byte[], byte[]>> _trees = new(StringComparer.Ordinal);

    public ulong Seed { get; } = seed;

    /// <summary>Transactions applied so far.</summary>
    public ulong Applied { get; private set; }

    public IReadOnlyDictionary<string, SortedDictionary<byte[], byte[]>> Trees => _trees;

    /// <summary>Applies transactions up to and including <paramref name="txn"/>; the model never goes back.</summary>
    public void AdvanceTo(ulong txn)
    {
        if (txn < Applied) throw new InvalidOperationException($"model is at transaction {Applied}, cannot go back to {txn}");
        while (Applied < txn) Apply(Applied + 1);
    }

    private void Apply(ulong txn)
    {
        foreach (var op in Workload.Transaction(Seed, txn))
        {
            switch (op.Kind)
            {
                case WorkloadOpKind.DropTree:
                    _trees.Remove(op.Tree);
                    break;
                case WorkloadOpKind.Delete:
                    Tree(op.Tree).Remove(op.Key);
                    break;
                default:
                    Tree(op.Tree)[op.Key] = op.Value!;
                    break;
            }
        }
        var marker = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(marker, txn);
        Tree(Workload.MetaTree)[Workload.MarkerKey.ToArray()] = marker;
        Applied = txn;
    }

    private SortedDictionary<byte[], byte[]> Tree(string name)
    {
        if (!_trees.TryGetValue(name, out var tree))
        {
            tree = new SortedDictionary<byte[], byte[]>(BytewiseComparer.Instance);
            _trees.Add(name, tree);
        }
        return tree;
    }

    /// <summary>
    /// Compares the model with what <paramref name="tx"/> sees, tree names included; returns null when equal, or a
    /// description of the first difference.
    /// </summary>
    public string? Diff(Transaction tx)
    {
        ArgumentNullException.ThrowIfNull(tx);
        var names = tx.GetTreeNames().OrderBy(n => n, StringComparer.Ordinal).ToList();
        var expected = _trees.Keys.OrderBy(n => n, StringComparer.Ordinal).ToList();
        if (!names.SequenceEqual(expected))
        {
            return $"trees are [{string.Join(", ", names)}], expected [{string.Join(", ", expected)}]";
        }
        foreach (var name in expected)
        {
            var want = _trees[name];
            var tree = tx.OpenTree(name);
            if (tree.Count != want.Count) return $"tree '{name}' counts {tree.Count} keys, expected {want.Count}";
            using var e = want.GetEnumerator();
            var seen = 0;
            foreach (var entry in tree.All())
            {
                if (!e.MoveNext()) return $"tree '{name}' has an extra key {Show(entry.Key)}";
                if (!entry.Key.SequenceEqual(e.Current.Key)) return $"tree '{name}' entry {seen} has key {Show(entry.Key)}, expected {Show(e.Current.Key)}";
                if (!entry.Value.SequenceEqual(e.Current.Value))
                {
                    return $"tree '{name}' key {Show(entry.Key)} has a {entry.Value.Length}-byte value that differs from the expected {e.Current.Value.Length} bytes";
                }
                seen++;
            }
            if (e.MoveNext()) return $"tree '{name}' is missing key {Show(e.Current.Key)}";
        }
        return null;
    }

    private static string Show(ReadOnlySpan<byte> key) => Encoding.ASCII.GetString(key);
}

/// <summary>Bytewise order, the order Cairn keeps keys in.</summary>
public sealed class BytewiseComparer : IComparer<byte[]>
{
    public static readonly BytewiseComparer Instance = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}
