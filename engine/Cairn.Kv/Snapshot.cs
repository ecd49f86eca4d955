using System.Buffers;
using System.Buffers.Binary;
using System.IO.Hashing;
using System.Text;
using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>What a snapshot holds: the state after log index <paramref name="AppliedIndex"/>, at <paramref name="Revision"/>.</summary>
/// <param name="AppliedIndex">The last log index applied to the state the snapshot holds.</param>
/// <param name="Revision">The store's revision in that state.</param>
/// <param name="Bytes">Bytes of the dump written or read (for <see cref="KvStateMachine.InstallSnapshot"/>: the installed file's size).</param>
public sealed record SnapshotInfo(ulong AppliedIndex, long Revision, long Bytes);

/// <summary>What a snapshot dump holds, read without storing it (`cairn snapshot status`).</summary>
/// <param name="AppliedIndex">The last log index applied to the state it holds.</param>
/// <param name="Revision">The store's revision in that state.</param>
/// <param name="Trees">Trees in the dump.</param>
/// <param name="Records">Records in every tree (what etcd counts as its snapshot's keys).</param>
/// <param name="Keys">Keys of the key space, with deleted ones whose history is not yet compacted.</param>
/// <param name="Bytes">The dump's length.</param>
/// <param name="Hash">Its XxHash64 checksum (its trailer), verified.</param>
public sealed record SnapshotSummary(ulong AppliedIndex, long Revision, int Trees, long Records, long Keys, long Bytes, ulong Hash);

/// <summary>
/// The snapshot dump (docs/kv.md, "Snapshots"): every tree of one read transaction, in catalog order, each with its
/// records in key order, then an XxHash64 of everything before it. Integers are little-endian.
/// <code>
/// header   "CAIRNSNP" | u32 version (1) | u64 applied index | i64 revision
/// tree     0x01 | u8 name length (1..255) | name (UTF-8)
/// record   0x02 | u32 key length | u32 value length | key | value        (belongs to the tree before it)
/// end      0x00
/// trailer  u64 XxHash64 of every byte before it
/// </code>
/// </summary>
internal static class SnapshotFormat
{
    public const uint Version = 1;
    private static ReadOnlySpan<byte> Magic => "CAIRNSNP"u8;
    private const int HeaderBytes = 8 + 4 + 8 + 8;
    private const byte TagEnd = 0, TagTree = 1, TagRecord = 2;
    private const int BufferBytes = 64 << 10;
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Writes every tree <paramref name="tx"/> sees; returns the bytes written.</summary>
    public static long Write(Stream output, Transaction tx, ulong applied, long revision)
    {
        using var w = new HashingWriter(output);
        var header = w.Take(HeaderBytes);
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        BinaryPrimitives.WriteUInt64LittleEndian(header[12..], applied);
        BinaryPrimitives.WriteInt64LittleEndian(header[20..], revision);
        foreach (var name in tx.GetTreeNames())
        {
            var nameBytes = Encoding.UTF8.GetBytes(name);
            var t = w.Take(2);
            t[0] = TagTree;
            t[1] = checked((byte)nameBytes.Length); // the storage keeps names to 1..255 bytes
            w.Write(nameBytes);
            foreach (var e in tx.OpenTree(name).All())
            {
                var r = w.Take(9);
                r[0] = TagRecord;
                BinaryPrimitives.WriteInt32LittleEndian(r[1..], e.Key.Length);
                BinaryPrimitives.WriteInt32LittleEndian(r[5..], e.Value.Length);
                w.Write(e.Key);
                w.Write(e.Value);
            }
        }
        w.Take(1)[0] = TagEnd;
        return w.Finish();
    }

    /// <summary>
    /// Reads a dump into <paramref name="db"/> (fresh and empty), checking everything: any malformation is an
    /// <see cref="InvalidDataException"/> saying what is wrong. Allocation is bounded by the storage's key and value limits.
    /// Records <paramref name="keep"/> turns down (tree, key) are left out.
    /// </summary>
    public static SnapshotInfo Load(Stream input, Database db, Func<string, ReadOnlySpan<byte>, bool>? keep = null)
    {
        using var loader = new TreeLoader(db);
        var sink = new LoadSink(loader, keep);
        var (applied, revision, total, _) = Read(input, db.MaxKeySize, $"keys here are 1 to {db.MaxKeySize} bytes (pages of {db.PageSize})", ref sink);
        loader.Finish();
        db.Sync();
        CheckState(db, applied, revision);
        return new SnapshotInfo(applied, revision, total);
    }

    /// <summary>Reads a whole dump without storing it: what it holds, its length and its checksum (every check of <see cref="Load"/> but the state record's).</summary>
    public static SnapshotSummary Inspect(Stream input)
    {
        var sink = new CountSink();
        var (applied, revision, total, hash) = Read(input, 64 << 10, "keys are 1 to 65536 bytes", ref sink);
        return new SnapshotSummary(applied, revision, sink.Trees, sink.Records, sink.Keys, total, hash);
    }

    /// <summary>What a dump's records go to.</summary>
    private interface IDumpSink
    {
        void BeginTree(string name);

        void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);
    }

    private struct LoadSink(TreeLoader loader, Func<string, ReadOnlySpan<byte>, bool>? keep) : IDumpSink
    {
        private string _tree = "";

        public void BeginTree(string name)
        {
            _tree = name;
            loader.BeginTree(name);
        }

        public readonly void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            if (keep is null || keep(_tree, key)) loader.Put(key, value);
        }
    }

    private struct CountSink : IDumpSink
    {
        public int Trees;
        public long Records;
        public long Keys;          // records of the key index: the keys the store holds
        private bool _inIndex;

        public void BeginTree(string name)
        {
            Trees++;
            _inIndex = name == Mvcc.IndexTree;
        }

        public void Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
        {
            Records++;
            if (_inIndex) Keys++;
        }
    }

    /// <summary>Parses a dump, handing each tree and record to <paramref name="sink"/>; returns the header's state, the length and the checksum.</summary>
    private static (ulong Applied, long Revision, long Length, ulong Hash) Read<TSink>(Stream input, int maxKey, string keyLimit, ref TSink sink) where TSink : struct, IDumpSink
    {
        using var r = new HashingReader(input);
        Span<byte> header = stackalloc byte[HeaderBytes];
        r.Read(header);
        if (!header[..8].SequenceEqual(Magic)) throw Damaged("it does not start with CAIRNSNP (not a Cairn snapshot)");
        var version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if (version != Version) throw Damaged($"format version {version} is unknown (this build reads version {Version})");
        var applied = BinaryPrimitives.ReadUInt64LittleEndian(header[12..]);
        var revision = BinaryPrimitives.ReadInt64LittleEndian(header[20..]);
        if (revision < 0) throw Damaged($"revision {revision} is negative");

        var key = new byte[maxKey];
        var prev = new byte[maxKey];
        var prevLength = 0;
        var value = Array.Empty<byte>();
        byte[]? lastName = null;
        Span<byte> lengths = stackalloc byte[8];
        Span<byte> nameBuf = stackalloc byte[255];
        string? tree = null;
        while (true)
        {
            var at = r.Position;
            var tag = r.ReadByte();
            if (tag == TagEnd) break;
            if (tag == TagTree)
            {
                var length = r.ReadByte();
                if (length == 0) throw Damaged($"the tree name at byte {at} is empty");
                var name = nameBuf[..length];
                r.Read(name);
                if (lastName is not null && name.SequenceCompareTo(lastName) <= 0) throw Damaged($"trees out of order or repeated at byte {at}");
                try
                {
                    tree = StrictUtf8.GetString(name);
                }
                catch (DecoderFallbackException)
                {
                    throw Damaged($"the tree name at byte {at} is not UTF-8");
                }
                lastName = name.ToArray();
                prevLength = 0;
                sink.BeginTree(tree);
            }
            else if (tag == TagRecord)
            {
                if (tree is null) throw Damaged($"a record at byte {at} comes before any tree");
                r.Read(lengths);
                var kl = BinaryPrimitives.ReadUInt32LittleEndian(lengths);
                var vl = BinaryPrimitives.ReadUInt32LittleEndian(lengths[4..]);
                if (kl == 0 || kl > (uint)maxKey) throw Damaged($"the record at byte {at} in tree {tree} has a key of {kl} bytes; {keyLimit}");
                if (vl > Database.MaxValueSize) throw Damaged($"the record at byte {at} in tree {tree} has a value of {vl} bytes; the limit is {Database.MaxValueSize}");
                var k = key.AsSpan(0, (int)kl);
                r.Read(k);
                if (value.Length < vl) value = new byte[Math.Max(vl, Math.Min(2 * (long)value.Length, Database.MaxValueSize))];
                var v = value.AsSpan(0, (int)vl);
                r.Read(v);
                if (prevLength > 0 && k.SequenceCompareTo(prev.AsSpan(0, prevLength)) <= 0) throw Damaged($"keys out of order or repeated in tree {tree} at byte {at}");
                sink.Put(k, v);
                (key, prev, prevLength) = (prev, key, (int)kl);
            }
            else
            {
                throw Damaged($"unknown section tag {tag} at byte {at}");
            }
        }
        var (total, hash) = r.Finish();
        return (applied, revision, total, hash);
    }

    /// <summary>The key-value state recorded inside must be the one the header names.</summary>
    private static void CheckState(Database db, ulong applied, long revision)
    {
        using var tx = db.BeginRead();
        ulong a = 0;
        long rev = 0;
        if (tx.TryOpenTree(Mvcc.MetaTree, out var meta) && meta.TryGet(Mvcc.StateKey, out var state))
        {
            if (state.Length != Mvcc.StateBytes) throw Damaged($"the key-value state record has {state.Length} bytes, expected {Mvcc.StateBytes}");
            rev = BinaryPrimitives.ReadInt64LittleEndian(state);
            a = BinaryPrimitives.ReadUInt64LittleEndian(state[16..]);
        }
        if (a != applied || rev != revision) throw Damaged($"the header says applied index {applied} at revision {revision}, the data says {a} at {rev}");
    }

    private static InvalidDataException Damaged(string what) => new($"snapshot is damaged: {what}");

    /// <summary>Buffers writes and hashes them on the way out.</summary>
    private sealed class HashingWriter(Stream output) : IDisposable
    {
        private readonly byte[] _buf = ArrayPool<byte>.Shared.Rent(BufferBytes);
        private readonly XxHash64 _hash = new();
        private int _len;
        private long _flushed;

        /// <summary>Room for <paramref name="n"/> bytes (small: headers and lengths).</summary>
        public Span<byte> Take(int n)
        {
            if (_len + n > _buf.Length) Flush();
            var s = _buf.AsSpan(_len, n);
            _len += n;
            return s;
        }

        public void Write(ReadOnlySpan<byte> data)
        {
            if (_len + data.Length <= _buf.Length)
            {
                data.CopyTo(_buf.AsSpan(_len));
                _len += data.Length;
                return;
            }
            Flush();
            if (data.Length <= _buf.Length / 2)
            {
                data.CopyTo(_buf);
                _len = data.Length;
                return;
            }
            _hash.Append(data); // large values go straight through
            output.Write(data);
            _flushed += data.Length;
        }

        private void Flush()
        {
            _hash.Append(_buf.AsSpan(0, _len));
            output.Write(_buf, 0, _len);
            _flushed += _len;
            _len = 0;
        }

        /// <summary>Flushes, appends the hash; returns the bytes written in all.</summary>
        public long Finish()
        {
            Flush();
            Span<byte> trailer = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(trailer, _hash.GetCurrentHashAsUInt64());
            output.Write(trailer);
            output.Flush();
            return _flushed + 8;
        }

        public void Dispose() => ArrayPool<byte>.Shared.Return(_buf);
    }

    /// <summary>Buffers reads and hashes what is consumed; running out of bytes is a truncated snapshot.</summary>
    private sealed class HashingReader(Stream input) : IDisposable
    {
        private readonly byte[] _buf = ArrayPool<byte>.Shared.Rent(BufferBytes);
        private readonly XxHash64 _hash = new();
        private int _pos, _len;
        private long _consumed; // bytes before _buf[0]

        /// <summary>Offset of the next byte in the dump.</summary>
        public long Position => _consumed + _pos;

        private bool Fill()
        {
            if (_pos < _len) return true;
            _consumed += _len;
            _pos = 0;
            _len = input.Read(_buf, 0, _buf.Length);
            return _len > 0;
        }

        private void ReadRaw(Span<byte> into, bool hash)
        {
            while (into.Length > 0)
            {
                if (!Fill()) throw Damaged($"it ends at byte {Position}, in the middle of a section (truncated)");
                var n = Math.Min(into.Length, _len - _pos);
                var chunk = _buf.AsSpan(_pos, n);
                if (hash) _hash.Append(chunk);
                chunk.CopyTo(into);
                _pos += n;
                into = into[n..];
            }
        }

        public void Read(Span<byte> into) => ReadRaw(into, hash: true);

        public byte ReadByte()
        {
            Span<byte> b = stackalloc byte[1];
            ReadRaw(b, hash: true);
            return b[0];
        }

        /// <summary>Checks the trailer hash and that nothing follows it; returns the dump's length and the hash.</summary>
        public (long Length, ulong Hash) Finish()
        {
            var expected = _hash.GetCurrentHashAsUInt64();
            Span<byte> trailer = stackalloc byte[8];
            ReadRaw(trailer, hash: false);
            if (BinaryPrimitives.ReadUInt64LittleEndian(trailer) != expected) throw Damaged("the checksum does not match its contents (altered or cut short)");
            var length = Position;
            if (Fill()) throw Damaged($"there are bytes after its end at byte {length}");
            return (length, expected);
        }

        public void Dispose() => ArrayPool<byte>.Shared.Return(_buf);
    }
}
