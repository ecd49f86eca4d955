using System.Buffers.Binary;
using System.Runtime.CompilerServices;

namespace Cairn.Storage;

/// <summary>What a page holds; the first byte of every data page.</summary>
internal enum PageKind : byte
{
    Branch = 1,
    Leaf = 2,
    Overflow = 3,
}

/// <summary>
/// The layout of one B+tree page, operated on in place (format: docs/storage.md §Pages).
/// <code>
/// [0] kind  [1] 0  [2..4) count  [4..6) upper  [6..8) 0  [8..16) page number
/// [16 ..)   slots: u16 offset of entry i, in key order
/// [upper .. size-32)  entry bytes (grow downwards)      [size-32 .. size) trailer (checksum or GCM)
/// leaf entry:   u16 keyLen, u8 flags, u32 valueLen, key, value | u64 first overflow page
/// branch entry: u16 keyLen, u64 child, key   (entry 0 has an empty key: everything below entry 1)
/// </code>
/// </summary>
internal static class Node
{
    public const int HeaderSize = 16;
    public const int TrailerSize = 32;
    public const int LeafEntryHeader = 7;
    public const int BranchEntryHeader = 10;
    public const byte FlagOverflow = 1;

    public static PageKind Kind(ReadOnlySpan<byte> p) => (PageKind)p[0];

    public static int Count(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt16LittleEndian(p[2..]);

    public static int Upper(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt16LittleEndian(p[4..]);

    public static ulong PageNumber(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadUInt64LittleEndian(p[8..]);

    /// <summary>Pages in an overflow run (stored where a B+tree page keeps count and upper).</summary>
    public static int RunPages(ReadOnlySpan<byte> p) => BinaryPrimitives.ReadInt32LittleEndian(p[2..]);

    public static void SetPageNumber(Span<byte> p, ulong pgno) => BinaryPrimitives.WriteUInt64LittleEndian(p[8..], pgno);

    public static void Init(Span<byte> p, PageKind kind, ulong pgno)
    {
        p[..HeaderSize].Clear();
        p[0] = (byte)kind;
        SetUpper(p, p.Length - TrailerSize);
        SetPageNumber(p, pgno);
    }

    public static void InitOverflow(Span<byte> run, ulong pgno, int pages)
    {
        run[..HeaderSize].Clear();
        run[0] = (byte)PageKind.Overflow;
        BinaryPrimitives.WriteInt32LittleEndian(run[2..], pages);
        SetPageNumber(run, pgno);
    }

    /// <summary>Bytes of entries plus slots: what a page would need to hold its contents.</summary>
    public static int Used(ReadOnlySpan<byte> p) => p.Length - TrailerSize - Upper(p) + 2 * Count(p);

    public static int FreeSpace(ReadOnlySpan<byte> p) => Upper(p) - (HeaderSize + 2 * Count(p));

    public static int Usable(int pageSize) => pageSize - HeaderSize - TrailerSize;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int Slot(ReadOnlySpan<byte> p, int i) => BinaryPrimitives.ReadUInt16LittleEndian(p[(HeaderSize + 2 * i)..]);

    // ---- leaf entries ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<byte> LeafKey(ReadOnlySpan<byte> p, int i)
    {
        var off = Slot(p, i);
        return p.Slice(off + LeafEntryHeader, BinaryPrimitives.ReadUInt16LittleEndian(p[off..]));
    }

    public static bool LeafIsOverflow(ReadOnlySpan<byte> p, int i) => (p[Slot(p, i) + 2] & FlagOverflow) != 0;

    public static int LeafValueLength(ReadOnlySpan<byte> p, int i) => BinaryPrimitives.ReadInt32LittleEndian(p[(Slot(p, i) + 3)..]);

    /// <summary>The inline value, or the 8-byte first overflow page when the entry is an overflow entry.</summary>
    public static ReadOnlySpan<byte> LeafPayload(ReadOnlySpan<byte> p, int i)
    {
        var off = Slot(p, i);
        var klen = BinaryPrimitives.ReadUInt16LittleEndian(p[off..]);
        var len = (p[off + 2] & FlagOverflow) != 0 ? 8 : BinaryPrimitives.ReadInt32LittleEndian(p[(off + 3)..]);
        return p.Slice(off + LeafEntryHeader + klen, len);
    }

    public static int LeafPayloadOffset(ReadOnlySpan<byte> p, int i)
    {
        var off = Slot(p, i);
        return off + LeafEntryHeader + BinaryPrimitives.ReadUInt16LittleEndian(p[off..]);
    }

    public static ulong LeafOverflowPage(ReadOnlySpan<byte> p, int i) => BinaryPrimitives.ReadUInt64LittleEndian(LeafPayload(p, i));

    public static int LeafEntrySize(ReadOnlySpan<byte> p, int i)
    {
        var off = Slot(p, i);
        var klen = BinaryPrimitives.ReadUInt16LittleEndian(p[off..]);
        var len = (p[off + 2] & FlagOverflow) != 0 ? 8 : BinaryPrimitives.ReadInt32LittleEndian(p[(off + 3)..]);
        return LeafEntryHeader + klen + len;
    }

    /// <summary>Encodes a leaf entry into <paramref name="dst"/>; returns its size.</summary>
    public static int WriteLeafEntry(Span<byte> dst, ReadOnlySpan<byte> key, byte flags, int valueLength, ReadOnlySpan<byte> payload)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)key.Length);
        dst[2] = flags;
        BinaryPrimitives.WriteInt32LittleEndian(dst[3..], valueLength);
        key.CopyTo(dst[LeafEntryHeader..]);
        payload.CopyTo(dst[(LeafEntryHeader + key.Length)..]);
        return LeafEntryHeader + key.Length + payload.Length;
    }

    // ---- branch entries ----

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ReadOnlySpan<byte> BranchKey(ReadOnlySpan<byte> p, int i)
    {
        var off = Slot(p, i);
        return p.Slice(off + BranchEntryHeader, BinaryPrimitives.ReadUInt16LittleEndian(p[off..]));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong BranchChild(ReadOnlySpan<byte> p, int i) => BinaryPrimitives.ReadUInt64LittleEndian(p[(Slot(p, i) + 2)..]);

    public static void SetBranchChild(Span<byte> p, int i, ulong child) => BinaryPrimitives.WriteUInt64LittleEndian(p[(Slot(p, i) + 2)..], child);

    public static int BranchEntrySize(ReadOnlySpan<byte> p, int i) => BranchEntryHeader + BinaryPrimitives.ReadUInt16LittleEndian(p[Slot(p, i)..]);

    public static int WriteBranchEntry(Span<byte> dst, ReadOnlySpan<byte> key, ulong child)
    {
        BinaryPrimitives.WriteUInt16LittleEndian(dst, (ushort)key.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[2..], child);
        key.CopyTo(dst[BranchEntryHeader..]);
        return BranchEntryHeader + key.Length;
    }

    public static int EntrySize(ReadOnlySpan<byte> p, int i) => Kind(p) == PageKind.Leaf ? LeafEntrySize(p, i) : BranchEntrySize(p, i);

    public static ReadOnlySpan<byte> RawEntry(ReadOnlySpan<byte> p, int i) => p.Slice(Slot(p, i), EntrySize(p, i));

    // ---- search ----

    /// <summary>Index of the first key ≥ <paramref name="key"/> (Count when none); <paramref name="exact"/> when equal.</summary>
    public static int LeafSearch(ReadOnlySpan<byte> p, ReadOnlySpan<byte> key, out bool exact)
    {
        int lo = 0, hi = Count(p);
        while (lo < hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            var c = LeafKey(p, mid).SequenceCompareTo(key);
            if (c < 0) lo = mid + 1;
            else if (c > 0) hi = mid;
            else { exact = true; return mid; }
        }
        exact = false;
        return lo;
    }

    /// <summary>Index of the child whose range holds <paramref name="key"/>: the last entry with key ≤ it (entry 0 bounds nothing below).</summary>
    public static int BranchSearch(ReadOnlySpan<byte> p, ReadOnlySpan<byte> key)
    {
        int lo = 1, hi = Count(p);
        while (lo < hi)
        {
            var mid = (int)((uint)(lo + hi) >> 1);
            var c = BranchKey(p, mid).SequenceCompareTo(key);
            if (c <= 0) lo = mid + 1;
            else hi = mid;
        }
        return lo - 1;
    }

    // ---- mutation (the page must be a dirty copy owned by the writer) ----

    /// <summary>Inserts encoded entry bytes at slot <paramref name="i"/>; the caller checked <see cref="FreeSpace"/>.</summary>
    public static void InsertRaw(Span<byte> p, int i, ReadOnlySpan<byte> raw)
    {
        var count = Count(p);
        var upper = Upper(p) - raw.Length;
        raw.CopyTo(p[upper..]);
        var slots = p[HeaderSize..];
        slots.Slice(2 * i, 2 * (count - i)).CopyTo(slots[(2 * i + 2)..]);
        BinaryPrimitives.WriteUInt16LittleEndian(slots[(2 * i)..], (ushort)upper);
        SetCount(p, count + 1);
        SetUpper(p, upper);
    }

    /// <summary>Removes entry <paramref name="i"/> and closes the gap it leaves in the entry area.</summary>
    public static void Remove(Span<byte> p, int i)
    {
        var count = Count(p);
        var off = Slot(p, i);
        var size = EntrySize(p, i);
        var upper = Upper(p);
        p[upper..off].CopyTo(p[(upper + size)..]);
        var slots = p[HeaderSize..];
        for (var j = 0; j < count; j++)
        {
            var s = BinaryPrimitives.ReadUInt16LittleEndian(slots[(2 * j)..]);
            if (s < off) BinaryPrimitives.WriteUInt16LittleEndian(slots[(2 * j)..], (ushort)(s + size));
        }
        slots.Slice(2 * i + 2, 2 * (count - i - 1)).CopyTo(slots[(2 * i)..]);
        SetCount(p, count - 1);
        SetUpper(p, upper + size);
    }

    private static void SetCount(Span<byte> p, int count) => BinaryPrimitives.WriteUInt16LittleEndian(p[2..], (ushort)count);

    private static void SetUpper(Span<byte> p, int upper) => BinaryPrimitives.WriteUInt16LittleEndian(p[4..], (ushort)upper);

    /// <summary>
    /// Checks that a page's slots and entries lie inside it, so a damaged page whose checksum happens to hold
    /// becomes a <see cref="CorruptDatabaseException"/> rather than an out-of-range read later.
    /// </summary>
    public static string? CheckStructure(ReadOnlySpan<byte> p)
    {
        var kind = Kind(p);
        if (kind is not (PageKind.Branch or PageKind.Leaf)) return $"unknown page kind {(byte)kind}";
        var count = Count(p);
        var upper = Upper(p);
        var end = p.Length - TrailerSize;
        if (HeaderSize + 2 * count > upper || upper > end) return $"count {count} and upper {upper} overlap";
        if (kind == PageKind.Branch && count == 0) return "branch page without children";
        for (var i = 0; i < count; i++)
        {
            var off = Slot(p, i);
            var header = kind == PageKind.Leaf ? LeafEntryHeader : BranchEntryHeader;
            if (off < upper || off + header > end) return $"entry {i} at {off} lies outside the entry area";
            var size = EntrySize(p, i);
            if (size < header || size > end - off) return $"entry {i} at {off} runs past the entry area"; // not off + size: a value length near 2^31 wraps it
            if (kind == PageKind.Leaf)
            {
                var overflow = (p[off + 2] & FlagOverflow) != 0;
                if (LeafValueLength(p, i) < 0) return $"entry {i} has a negative value length";
                if ((p[off + 2] & ~FlagOverflow) != 0) return $"entry {i} has unknown flags";
                _ = overflow;
            }
        }
        return null;
    }
}
