using System.Buffers.Binary;

namespace Cairn.Kv;

/// <summary>
/// How the key space lies in the B+tree (docs/kv.md, "Layout in the B+tree"), layout 2:
/// <code>
/// kv.index    key                     → create i64, mod i64, version i64, lease i64, sub u32, flags u8       (37 bytes)
/// kv.history  rev(u64 BE) sub(u32 BE) → kind u8, create i64, version i64, lease i64, prev rev i64, prev sub u32,
///                                      key length u16, key, value                                          (every change)
/// </code>
/// The history is keyed by revision, so a batch of changes appends to its last leaf; it holds each value once. The
/// index holds where each key's last change is (its mod revision and sub), not the value, so it stays small; a deleted
/// key stays in it as a tombstone until a compaction passes its deletion, so reads at past revisions find it. Each
/// change points to the key's change before it: a read at a past revision walks back from the index. Integers are
/// little-endian except in history keys.
/// </summary>
internal static class KvEncoding
{
    public const byte KindPut = 1;
    public const byte KindDelete = 2;

    /// <summary>Bytes of an index value.</summary>
    public const int IndexBytes = 37;

    /// <summary>Bytes of a history value before the key and the value.</summary>
    public const int HistoryHeader = 39;

    /// <summary>Bytes of a history key: revision and sub-revision, big-endian.</summary>
    public const int HistoryKeyBytes = 12;

    public const byte FlagDeleted = 1;

    /// <summary>Writes an index value; returns its length.</summary>
    public static int WriteIndex(Span<byte> dest, long create, long mod, long version, long lease, int sub, bool deleted)
    {
        BinaryPrimitives.WriteInt64LittleEndian(dest, create);
        BinaryPrimitives.WriteInt64LittleEndian(dest[8..], mod);
        BinaryPrimitives.WriteInt64LittleEndian(dest[16..], version);
        BinaryPrimitives.WriteInt64LittleEndian(dest[24..], lease);
        BinaryPrimitives.WriteInt32LittleEndian(dest[32..], sub);
        dest[36] = deleted ? FlagDeleted : (byte)0;
        return IndexBytes;
    }

    /// <summary>Writes a history key (revision, sub-revision); returns its length.</summary>
    public static int WriteHistoryKey(Span<byte> dest, long revision, int sub)
    {
        BinaryPrimitives.WriteInt64BigEndian(dest, revision);
        BinaryPrimitives.WriteInt32BigEndian(dest[8..], sub);
        return HistoryKeyBytes;
    }

    public static byte[] HistoryKey(long revision, int sub)
    {
        var b = new byte[HistoryKeyBytes];
        WriteHistoryKey(b, revision, sub);
        return b;
    }

    public static (long Revision, int Sub) ParseHistoryKey(ReadOnlySpan<byte> k) =>
        (BinaryPrimitives.ReadInt64BigEndian(k), BinaryPrimitives.ReadInt32BigEndian(k[8..]));

    /// <summary>Bytes of a history value for <paramref name="key"/> and <paramref name="value"/>.</summary>
    public static int HistoryValueLength(int key, int value) => HistoryHeader + key + value;

    /// <summary>Writes a history value; returns its length.</summary>
    public static int WriteHistoryValue(Span<byte> dest, byte kind, long create, long version, long lease, long prevRev, int prevSub, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        dest[0] = kind;
        BinaryPrimitives.WriteInt64LittleEndian(dest[1..], create);
        BinaryPrimitives.WriteInt64LittleEndian(dest[9..], version);
        BinaryPrimitives.WriteInt64LittleEndian(dest[17..], lease);
        BinaryPrimitives.WriteInt64LittleEndian(dest[25..], prevRev);
        BinaryPrimitives.WriteInt32LittleEndian(dest[33..], prevSub);
        BinaryPrimitives.WriteUInt16LittleEndian(dest[37..], checked((ushort)key.Length));
        key.CopyTo(dest[HistoryHeader..]);
        value.CopyTo(dest[(HistoryHeader + key.Length)..]);
        return HistoryHeader + key.Length + value.Length;
    }

    public static byte[] U64(long v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        return b;
    }
}

/// <summary>An index value, read in place.</summary>
internal readonly struct IndexEntry
{
    public IndexEntry(ReadOnlySpan<byte> v)
    {
        if (v.Length != KvEncoding.IndexBytes) throw new InvalidDataException($"an index record has {v.Length} bytes, expected {KvEncoding.IndexBytes}");
        Create = BinaryPrimitives.ReadInt64LittleEndian(v);
        Mod = BinaryPrimitives.ReadInt64LittleEndian(v[8..]);
        Version = BinaryPrimitives.ReadInt64LittleEndian(v[16..]);
        Lease = BinaryPrimitives.ReadInt64LittleEndian(v[24..]);
        Sub = BinaryPrimitives.ReadInt32LittleEndian(v[32..]);
        Deleted = (v[36] & KvEncoding.FlagDeleted) != 0;
    }

    public long Create { get; }

    /// <summary>Revision of the key's last change (its deletion, for a tombstone).</summary>
    public long Mod { get; }

    public long Version { get; }

    public long Lease { get; }

    /// <summary>Sub-revision of the key's last change: with <see cref="Mod"/>, its history key.</summary>
    public int Sub { get; }

    /// <summary>A tombstone: the key was deleted at <see cref="Mod"/> (kept until a compaction passes it).</summary>
    public bool Deleted { get; }
}

/// <summary>A history value, read in place.</summary>
internal readonly ref struct HistoryRecord
{
    public HistoryRecord(ReadOnlySpan<byte> v)
    {
        if (v.Length < KvEncoding.HistoryHeader) throw new InvalidDataException($"a history record has {v.Length} bytes, fewer than its {KvEncoding.HistoryHeader}-byte header");
        Kind = v[0];
        Create = BinaryPrimitives.ReadInt64LittleEndian(v[1..]);
        Version = BinaryPrimitives.ReadInt64LittleEndian(v[9..]);
        Lease = BinaryPrimitives.ReadInt64LittleEndian(v[17..]);
        PrevRevision = BinaryPrimitives.ReadInt64LittleEndian(v[25..]);
        PrevSub = BinaryPrimitives.ReadInt32LittleEndian(v[33..]);
        int keyLength = BinaryPrimitives.ReadUInt16LittleEndian(v[37..]);
        if (KvEncoding.HistoryHeader + keyLength > v.Length) throw new InvalidDataException("a history record's key runs past its end");
        Key = v.Slice(KvEncoding.HistoryHeader, keyLength);
        Value = v[(KvEncoding.HistoryHeader + keyLength)..];
    }

    public byte Kind { get; }

    public bool IsPut => Kind == KvEncoding.KindPut;

    public long Create { get; }

    public long Version { get; }

    public long Lease { get; }

    /// <summary>The key's change before this one (0: none).</summary>
    public long PrevRevision { get; }

    public int PrevSub { get; }

    public ReadOnlySpan<byte> Key { get; }

    public ReadOnlySpan<byte> Value { get; }

    /// <summary>The key-value this put made at <paramref name="mod"/>.</summary>
    public KeyValue ToKeyValue(long mod, bool keysOnly) => new(Key.ToArray(), keysOnly ? [] : Value.ToArray(), Create, mod, Version, Lease);
}
