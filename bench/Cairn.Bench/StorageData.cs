using System.Buffers.Binary;

namespace Cairn.Bench;

/// <summary>
/// The one data set every storage benchmark uses, identical for Cairn, LMDB and RocksDB: <see cref="KeyCount"/> keys of
/// <see cref="KeySize"/> random-looking bytes, each with a <see cref="ValueSize"/>-byte value, loaded in index order
/// (which is random key order). Everything is derived from fixed seeds, so every benchmark process sees the same bytes.
/// </summary>
internal static class StorageData
{
    public const int KeyCount = 1_000_000;
    public const int KeySize = 16;
    public const int ValueSize = 100;

    /// <summary>Puts per write transaction (per WriteBatch for RocksDB) when loading.</summary>
    public const int BatchSize = 10_000;

    /// <summary>Keys past the loaded set, for benchmarks that insert into a loaded database; used round-robin.</summary>
    public const int ExtraKeyCount = 100_000;

    /// <summary>Lookups per invoke of the point-get benchmarks.</summary>
    public const int LookupCount = 10_000;

    /// <summary>Name of Cairn's tree (LMDB uses its main database, RocksDB its default column family).</summary>
    public const string TreeName = "bench";

    private const int ValuePoolSize = 1 << 16;

    // Keys 0..KeyCount-1 are the data set; KeyCount..KeyCount+ExtraKeyCount-1 are never loaded.
    private static readonly byte[] s_keys = BuildKeys(KeyCount + ExtraKeyCount);
    private static readonly byte[] s_valuePool = BuildValuePool();
    private static readonly int[] s_lookupOrder = BuildLookupOrder();

    /// <summary>Key <paramref name="i"/>: 0 ≤ i &lt; <see cref="KeyCount"/> + <see cref="ExtraKeyCount"/>.</summary>
    public static ReadOnlySpan<byte> Key(int i) => s_keys.AsSpan(i * KeySize, KeySize);

    /// <summary>The value stored under key <paramref name="i"/> (a window into a fixed random pool).</summary>
    public static ReadOnlySpan<byte> Value(int i) => s_valuePool.AsSpan(ValueOffset(i), ValueSize);

    /// <summary>A second value for key <paramref name="i"/>, same length, different bytes: for overwrites.</summary>
    public static ReadOnlySpan<byte> OtherValue(int i) => Value(i + 1);

    /// <summary>Indexes of the loaded keys that the point-get benchmarks look up, in a fixed random order.</summary>
    public static ReadOnlySpan<int> LookupOrder => s_lookupOrder;

    /// <summary>The extra key for the <paramref name="n"/>-th insert into a loaded database.</summary>
    public static int ExtraKey(long n) => KeyCount + (int)(n % ExtraKeyCount);

    /// <summary>What a point-get pass returns when every lookup finds its value: Σ (value[0] + value length).</summary>
    public static long ExpectedLookupSum()
    {
        long sum = 0;
        foreach (var i in s_lookupOrder) sum += Value(i)[0] + ValueSize;
        return sum;
    }

    /// <summary>What a full scan of keys 0..<paramref name="count"/>-1 returns: Σ (key[0] + value length).</summary>
    public static long ExpectedScanSum(int count)
    {
        long sum = 0;
        for (var i = 0; i < count; i++) sum += Key(i)[0] + ValueSize;
        return sum;
    }

    /// <summary>Setup-time check that an engine returned the data set, so no benchmark measures a wrong answer.</summary>
    public static void Check(string what, long actual, long expected)
    {
        if (actual != expected) throw new InvalidOperationException($"{what} returned {actual}, expected {expected}: the engine does not hold the data set.");
    }

    private static int ValueOffset(int i) => (int)((uint)i * 2_654_435_761u % (ValuePoolSize - ValueSize));

    /// <summary>
    /// The first 8 bytes are a bijective 64-bit mix of the index, so keys are distinct; the last 8 are a second mix,
    /// so all 16 bytes look random. Big-endian, so byte order and numeric order of the mixes agree.
    /// </summary>
    private static byte[] BuildKeys(int count)
    {
        var keys = new byte[count * KeySize];
        for (var i = 0; i < count; i++)
        {
            var span = keys.AsSpan(i * KeySize, KeySize);
            BinaryPrimitives.WriteUInt64BigEndian(span, Mix((ulong)i));
            BinaryPrimitives.WriteUInt64BigEndian(span[8..], Mix((ulong)i ^ 0x5851_F42D_4C95_7F2DUL));
        }
        return keys;
    }

    /// <summary>A bijection on 64-bit integers with good avalanche (the splitmix64 finaliser).</summary>
    private static ulong Mix(ulong x)
    {
        x += 0x9E37_79B9_7F4A_7C15UL;
        x = (x ^ (x >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
        x = (x ^ (x >> 27)) * 0x94D0_49BB_1331_11EBUL;
        return x ^ (x >> 31);
    }

    private static byte[] BuildValuePool()
    {
        var pool = new byte[ValuePoolSize];
        new Random(20_240_601).NextBytes(pool);
        return pool;
    }

    private static int[] BuildLookupOrder()
    {
        var random = new Random(7);
        var order = new int[LookupCount];
        for (var i = 0; i < order.Length; i++) order[i] = random.Next(KeyCount);
        return order;
    }
}
