using System.Buffers.Binary;
using System.IO.Hashing;

namespace Cairn.Storage;

/// <summary>Where one B+tree lives and what it holds; 48 bytes in a meta page or a catalog value.</summary>
internal struct TreeRoot
{
    public const int Size = 48;

    public ulong Root;          // 0 = empty tree
    public int Depth;           // 0 when empty, 1 = the root is a leaf
    public ulong Entries;
    public ulong BranchPages;
    public ulong LeafPages;
    public ulong OverflowPages;

    public readonly void Write(Span<byte> dst)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(dst, Root);
        BinaryPrimitives.WriteInt32LittleEndian(dst[8..], Depth);
        BinaryPrimitives.WriteInt32LittleEndian(dst[12..], 0);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[16..], Entries);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[24..], BranchPages);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[32..], LeafPages);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[40..], OverflowPages);
    }

    public static TreeRoot Read(ReadOnlySpan<byte> src) => new()
    {
        Root = BinaryPrimitives.ReadUInt64LittleEndian(src),
        Depth = BinaryPrimitives.ReadInt32LittleEndian(src[8..]),
        Entries = BinaryPrimitives.ReadUInt64LittleEndian(src[16..]),
        BranchPages = BinaryPrimitives.ReadUInt64LittleEndian(src[24..]),
        LeafPages = BinaryPrimitives.ReadUInt64LittleEndian(src[32..]),
        OverflowPages = BinaryPrimitives.ReadUInt64LittleEndian(src[40..]),
    };
}

/// <summary>
/// The committed state a transaction starts from: one meta record. Two meta pages (0 and 1) hold the last two
/// durable records; the one with the highest transaction id wins (docs/storage.md §Meta).
/// <code>
/// [0..8) magic "CAIRN.DB"  [8..12) format version  [12..16) page size  [16..32) file id
/// [32..40) txn id  [40..48) page count  [48..96) catalog root  [96..144) free-list root
/// [144..148) flags (bit 0: encrypted)  [148..152) data key id  [152..212) data key wrapped by the master key
/// [212..504) reserved  [504..512) XxHash64 of [0..504)
/// </code>
/// The record is 512 bytes, one disk sector, so a power cut cannot tear it.
/// </summary>
internal struct MetaState
{
    public const int RecordSize = 512;
    public const uint FormatVersion = 1;
    public static ReadOnlySpan<byte> Magic => "CAIRN.DB"u8;

    public int PageSize;
    public Guid FileId;
    public ulong TxnId;
    public ulong PageCount;     // pages [0, PageCount) exist; everything else is past the end
    public TreeRoot Catalog;
    public TreeRoot FreeTree;
    public uint Flags;
    public uint DataKeyId;
    public byte[]? WrappedKey;  // Cairn.Crypto.KeyWrap.WrappedSize bytes when encrypted

    public const uint FlagEncrypted = 1;
    public readonly bool Encrypted => (Flags & FlagEncrypted) != 0;

    public readonly void Write(Span<byte> dst)
    {
        dst[..RecordSize].Clear();
        Magic.CopyTo(dst);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[8..], FormatVersion);
        BinaryPrimitives.WriteInt32LittleEndian(dst[12..], PageSize);
        FileId.TryWriteBytes(dst[16..32]);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[32..], TxnId);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[40..], PageCount);
        Catalog.Write(dst[48..]);
        FreeTree.Write(dst[96..]);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[144..], Flags);
        BinaryPrimitives.WriteUInt32LittleEndian(dst[148..], DataKeyId);
        WrappedKey?.CopyTo(dst[152..]);
        BinaryPrimitives.WriteUInt64LittleEndian(dst[504..], XxHash64.HashToUInt64(dst[..504]));
    }

    public enum ReadResult { Ok, NotCairn, BadVersion, BadChecksum }

    public static ReadResult TryRead(ReadOnlySpan<byte> src, out MetaState meta, out uint version)
    {
        meta = default;
        version = 0;
        if (src.Length < RecordSize || !src[..8].SequenceEqual(Magic)) return ReadResult.NotCairn;
        if (BinaryPrimitives.ReadUInt64LittleEndian(src[504..]) != XxHash64.HashToUInt64(src[..504])) return ReadResult.BadChecksum;
        version = BinaryPrimitives.ReadUInt32LittleEndian(src[8..]);
        if (version != FormatVersion) return ReadResult.BadVersion;
        meta = new MetaState
        {
            PageSize = BinaryPrimitives.ReadInt32LittleEndian(src[12..]),
            FileId = new Guid(src[16..32]),
            TxnId = BinaryPrimitives.ReadUInt64LittleEndian(src[32..]),
            PageCount = BinaryPrimitives.ReadUInt64LittleEndian(src[40..]),
            Catalog = TreeRoot.Read(src[48..]),
            FreeTree = TreeRoot.Read(src[96..]),
            Flags = BinaryPrimitives.ReadUInt32LittleEndian(src[144..]),
            DataKeyId = BinaryPrimitives.ReadUInt32LittleEndian(src[148..]),
        };
        if (meta.Encrypted) meta.WrappedKey = src.Slice(152, Cairn.Crypto.KeyWrap.WrappedSize).ToArray();
        return ReadResult.Ok;
    }

    /// <summary>What a wrapped data key is bound to: this file and this key id.</summary>
    public readonly byte[] KeyContext()
    {
        var b = new byte[20];
        FileId.TryWriteBytes(b);
        BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(16), DataKeyId);
        return b;
    }

    /// <summary>Seed of every data page's checksum: a page copied in from another file fails.</summary>
    public readonly ulong ChecksumSeed
    {
        get
        {
            Span<byte> b = stackalloc byte[16];
            FileId.TryWriteBytes(b);
            return BinaryPrimitives.ReadUInt64LittleEndian(b) ^ BinaryPrimitives.ReadUInt64LittleEndian(b[8..]);
        }
    }
}
