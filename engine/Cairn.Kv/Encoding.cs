using System.Buffers.Binary;

namespace Cairn.Kv;

/// <summary>
/// How the key space lies in the B+tree (docs/kv.md):
/// <code>
/// kv.index    key                          → create u64, mod u64, version u64, lease i64, value       (live keys)
/// kv.history  esc(key) 00 01 rev(u64 BE)   → kind u8, create u64, version u64, lease i64, value       (every change)
/// kv.events   rev(u64 BE) sub(u32 BE)      → kind u8, key                                           (changes by revision)
/// kv.meta     "rev" / "compact" / "applied" → u64
/// </code>
/// esc() doubles every 0 byte as 00 FF and the key ends with 00 01, so history keys sort by (key, revision) for any
/// key bytes.
/// </summary>
internal static class KvEncoding
{
    public const byte KindPut = 1;
    public const byte KindDelete = 2;
    public const int IndexHeader = 32;
    public const int HistoryHeader = 25;

    public static byte[] HistoryKey(ReadOnlySpan<byte> key, long revision)
    {
        var zeros = key.Count((byte)0);
        var buf = new byte[key.Length + zeros + 2 + 8];
        var at = Escape(key, buf);
        buf[at] = 0;
        buf[at + 1] = 1;
        BinaryPrimitives.WriteInt64BigEndian(buf.AsSpan(at + 2), revision);
        return buf;
    }

    /// <summary>The escaped key with its terminator: every history key of <paramref name="key"/> starts with it.</summary>
    public static byte[] HistoryPrefix(ReadOnlySpan<byte> key, byte terminator = 1)
    {
        var zeros = key.Count((byte)0);
        var buf = new byte[key.Length + zeros + 2];
        var at = Escape(key, buf);
        buf[at] = 0;
        buf[at + 1] = terminator;
        return buf;
    }

    private static int Escape(ReadOnlySpan<byte> key, Span<byte> dst)
    {
        var at = 0;
        foreach (var b in key)
        {
            dst[at++] = b;
            if (b == 0) dst[at++] = 0xFF;
        }
        return at;
    }

    /// <summary>Splits a history key into the user key and the revision.</summary>
    public static (byte[] Key, long Revision) ParseHistoryKey(ReadOnlySpan<byte> hk)
    {
        var key = new List<byte>(hk.Length);
        var i = 0;
        while (i < hk.Length - 9)
        {
            if (hk[i] == 0)
            {
                if (hk[i + 1] == 0xFF) { key.Add(0); i += 2; continue; }
                if (hk[i + 1] == 1) break;
                throw new InvalidDataException("malformed history key");
            }
            key.Add(hk[i++]);
        }
        if (i + 10 != hk.Length) throw new InvalidDataException("malformed history key");
        return ([.. key], BinaryPrimitives.ReadInt64BigEndian(hk[(i + 2)..]));
    }

    /// <summary>Writes a history key into <paramref name="dest"/> (at least <see cref="HistoryKeyLength"/> bytes); returns its length.</summary>
    public static int WriteHistoryKey(Span<byte> dest, ReadOnlySpan<byte> key, long revision)
    {
        var at = Escape(key, dest);
        dest[at] = 0;
        dest[at + 1] = 1;
        BinaryPrimitives.WriteInt64BigEndian(dest[(at + 2)..], revision);
        return at + 10;
    }

    /// <summary>Bytes of the history key of <paramref name="key"/>.</summary>
    public static int HistoryKeyLength(ReadOnlySpan<byte> key) => key.Length + key.Count((byte)0) + 10;

    /// <summary>Writes an index value into <paramref name="dest"/>; returns its length.</summary>
    public static int WriteIndexValue(Span<byte> dest, long create, long mod, long version, long lease, ReadOnlySpan<byte> value)
    {
        BinaryPrimitives.WriteInt64LittleEndian(dest, create);
        BinaryPrimitives.WriteInt64LittleEndian(dest[8..], mod);
        BinaryPrimitives.WriteInt64LittleEndian(dest[16..], version);
        BinaryPrimitives.WriteInt64LittleEndian(dest[24..], lease);
        value.CopyTo(dest[IndexHeader..]);
        return IndexHeader + value.Length;
    }

    /// <summary>Writes a history value into <paramref name="dest"/>; returns its length.</summary>
    public static int WriteHistoryValue(Span<byte> dest, byte kind, long create, long version, long lease, ReadOnlySpan<byte> value)
    {
        dest[0] = kind;
        BinaryPrimitives.WriteInt64LittleEndian(dest[1..], create);
        BinaryPrimitives.WriteInt64LittleEndian(dest[9..], version);
        BinaryPrimitives.WriteInt64LittleEndian(dest[17..], lease);
        value.CopyTo(dest[HistoryHeader..]);
        return HistoryHeader + value.Length;
    }

    /// <summary>Writes an event key (12 bytes) into <paramref name="dest"/>.</summary>
    public static int WriteEventKey(Span<byte> dest, long revision, int sub)
    {
        BinaryPrimitives.WriteInt64BigEndian(dest, revision);
        BinaryPrimitives.WriteInt32BigEndian(dest[8..], sub);
        return 12;
    }

    /// <summary>Writes an event value into <paramref name="dest"/>; returns its length.</summary>
    public static int WriteEventValue(Span<byte> dest, byte kind, ReadOnlySpan<byte> key)
    {
        dest[0] = kind;
        key.CopyTo(dest[1..]);
        return 1 + key.Length;
    }

    public static byte[] IndexValue(long create, long mod, long version, long lease, ReadOnlySpan<byte> value)
    {
        var buf = new byte[IndexHeader + value.Length];
        BinaryPrimitives.WriteInt64LittleEndian(buf, create);
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(8), mod);
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(16), version);
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(24), lease);
        value.CopyTo(buf.AsSpan(IndexHeader));
        return buf;
    }

    public static KeyValue ReadIndex(ReadOnlySpan<byte> key, ReadOnlySpan<byte> v, bool keysOnly) => new(
        key.ToArray(),
        keysOnly ? [] : v[IndexHeader..].ToArray(),
        BinaryPrimitives.ReadInt64LittleEndian(v),
        BinaryPrimitives.ReadInt64LittleEndian(v[8..]),
        BinaryPrimitives.ReadInt64LittleEndian(v[16..]),
        BinaryPrimitives.ReadInt64LittleEndian(v[24..]));

    public static byte[] HistoryValue(byte kind, long create, long version, long lease, ReadOnlySpan<byte> value)
    {
        var buf = new byte[HistoryHeader + value.Length];
        buf[0] = kind;
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(1), create);
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(9), version);
        BinaryPrimitives.WriteInt64LittleEndian(buf.AsSpan(17), lease);
        value.CopyTo(buf.AsSpan(HistoryHeader));
        return buf;
    }

    /// <summary>A history entry as the key-value it describes at <paramref name="mod"/>; null for a tombstone.</summary>
    public static KeyValue? ReadHistory(byte[] key, long mod, ReadOnlySpan<byte> v, bool keysOnly)
    {
        if (v[0] != KindPut) return null;
        return new KeyValue(key, keysOnly ? [] : v[HistoryHeader..].ToArray(),
            BinaryPrimitives.ReadInt64LittleEndian(v[1..]), mod,
            BinaryPrimitives.ReadInt64LittleEndian(v[9..]),
            BinaryPrimitives.ReadInt64LittleEndian(v[17..]));
    }

    public static byte[] EventKey(long revision, int sub)
    {
        var buf = new byte[12];
        BinaryPrimitives.WriteInt64BigEndian(buf, revision);
        BinaryPrimitives.WriteInt32BigEndian(buf.AsSpan(8), sub);
        return buf;
    }

    public static byte[] EventValue(byte kind, ReadOnlySpan<byte> key)
    {
        var buf = new byte[1 + key.Length];
        buf[0] = kind;
        key.CopyTo(buf.AsSpan(1));
        return buf;
    }

    public static byte[] U64(long v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, v);
        return b;
    }
}
