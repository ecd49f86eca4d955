using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;
using Cairn.Crypto;

namespace Cairn.Raft;

/// <summary>What a snapshot covers: the log up to <paramref name="Index"/> (of <paramref name="Term"/>) and the configuration then.</summary>
/// <param name="Index">Last log index the snapshot includes.</param>
/// <param name="Term">Term of that entry.</param>
/// <param name="Voters">Voting members at that index.</param>
/// <param name="Learners">Learners at that index.</param>
public sealed record SnapshotMetadata(ulong Index, ulong Term, IReadOnlyList<ulong> Voters, IReadOnlyList<ulong> Learners);

/// <summary>A snapshot file is damaged, or the key does not open it.</summary>
public sealed class SnapshotCorruptException(string message) : Exception(message);

/// <summary>
/// Snapshot files: metadata and the state machine's bytes, written atomically (temporary file, sync, rename, sync of
/// the directory) so a crash leaves the old snapshot or the new one, never half of one; created with mode 0600. Sealed
/// with AES-256-GCM when a master key is given (a fresh data key per file, wrapped in its header); otherwise
/// checksummed with XxHash128.
/// <code>
/// "CAIRNSNP" | version u32 | flags u32 | metadata length u32 | body length u64 | wrapped key (60, encrypted)
/// | metadata | body | 16-byte checksum or tag over everything before it
/// </code>
/// </summary>
public static class SnapshotFile
{
    private static ReadOnlySpan<byte> Magic => "CAIRNSNP"u8;
    private const int HeaderSize = 8 + 4 + 4 + 4 + 8 + 60;

    /// <summary>Writes the snapshot to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, SnapshotMetadata metadata, ReadOnlySpan<byte> data, IKeyProvider? masterKey = null)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        var meta = EncodeMetadata(metadata);
        var file = new byte[HeaderSize + meta.Length + data.Length + 16];
        Magic.CopyTo(file);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(12), masterKey is null ? 0u : 1u);
        BinaryPrimitives.WriteInt32LittleEndian(file.AsSpan(16), meta.Length);
        BinaryPrimitives.WriteInt64LittleEndian(file.AsSpan(20), data.Length);
        meta.CopyTo(file, HeaderSize);
        data.CopyTo(file.AsSpan(HeaderSize + meta.Length));
        var body = file.AsSpan(HeaderSize, meta.Length + data.Length);
        var tag = file.AsSpan(file.Length - 16);
        if (masterKey is not null)
        {
            var key = RandomNumberGenerator.GetBytes(32);
            try
            {
                KeyWrap.Wrap(masterKey, key, file.AsSpan(0, 28), file.AsSpan(28, KeyWrap.WrappedSize));
                using var gcm = new Aes256Gcm(key);
                Span<byte> nonce = stackalloc byte[12]; // a fresh key per file: a fixed nonce is used once
                gcm.Encrypt(nonce, body, body, tag, file.AsSpan(0, HeaderSize));
            }
            finally
            {
                CryptographicOperations.ZeroMemory(key);
            }
        }
        else
        {
            XxHash128.Hash(file.AsSpan(0, file.Length - 16), tag);
        }
        var temp = path + ".tmp";
        File.Delete(temp); // a leftover of a crash: created afresh, so it gets the private mode
        using (var fs = new FileStream(temp, Wal.CreatePrivate(FileMode.CreateNew, FileAccess.Write, FileShare.None)))
        {
            fs.Write(file);
            fs.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
        // The rename is durable once the directory is synced.
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } dir) Wal.SyncDirectory(dir);
    }

    /// <summary>Reads a snapshot; <see cref="SnapshotCorruptException"/> when it is damaged or the key does not open it.</summary>
    public static (SnapshotMetadata Metadata, byte[] Data) Read(string path, IKeyProvider? masterKey = null)
    {
        var file = File.ReadAllBytes(path);
        var name = Path.GetFileName(path);
        if (file.Length < HeaderSize + 16 || !file.AsSpan(0, 8).SequenceEqual(Magic)) throw new SnapshotCorruptException($"{name} is not a Cairn snapshot.");
        var encrypted = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(12)) != 0;
        var metaLength = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(16));
        var dataLength = BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(20));
        if (metaLength < 0 || dataLength < 0 || HeaderSize + (long)metaLength + dataLength + 16 != file.Length)
        {
            throw new SnapshotCorruptException($"{name} is damaged: its lengths do not add up to its size.");
        }
        var body = file.AsSpan(HeaderSize, metaLength + (int)dataLength);
        var tag = file.AsSpan(file.Length - 16);
        if (encrypted)
        {
            if (masterKey is null) throw new SnapshotCorruptException($"{name} is encrypted; give the master key.");
            Span<byte> key = stackalloc byte[32];
            if (!KeyWrap.TryUnwrap(masterKey, file.AsSpan(28, KeyWrap.WrappedSize), file.AsSpan(0, 28), key))
            {
                throw new SnapshotCorruptException($"The master key ({masterKey.KeyId}) does not open {name}, or its header is damaged.");
            }
            using var gcm = new Aes256Gcm(key);
            CryptographicOperations.ZeroMemory(key);
            Span<byte> nonce = stackalloc byte[12];
            try
            {
                gcm.Decrypt(nonce, body, tag, body, file.AsSpan(0, HeaderSize));
            }
            catch (AuthenticationTagMismatchException)
            {
                throw new SnapshotCorruptException($"{name} is damaged (authentication tag mismatch).");
            }
        }
        else
        {
            Span<byte> sum = stackalloc byte[16];
            XxHash128.Hash(file.AsSpan(0, file.Length - 16), sum);
            if (!sum.SequenceEqual(tag)) throw new SnapshotCorruptException($"{name} is damaged (checksum mismatch).");
        }
        try
        {
            return (DecodeMetadata(body[..metaLength]), body[metaLength..].ToArray());
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or InvalidDataException)
        {
            throw new SnapshotCorruptException($"{name} has malformed metadata.");
        }
    }

    private static byte[] EncodeMetadata(SnapshotMetadata m)
    {
        var b = new byte[16 + 4 + 8 * m.Voters.Count + 4 + 8 * m.Learners.Count];
        BinaryPrimitives.WriteUInt64LittleEndian(b, m.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), m.Term);
        var at = 16;
        foreach (var list in new[] { m.Voters, m.Learners })
        {
            BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(at), list.Count);
            at += 4;
            foreach (var id in list)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(at), id);
                at += 8;
            }
        }
        return b;
    }

    private static SnapshotMetadata DecodeMetadata(ReadOnlySpan<byte> b)
    {
        var index = BinaryPrimitives.ReadUInt64LittleEndian(b);
        var term = BinaryPrimitives.ReadUInt64LittleEndian(b[8..]);
        var at = 16;
        var lists = new List<ulong>[2];
        for (var l = 0; l < 2; l++)
        {
            var n = BinaryPrimitives.ReadInt32LittleEndian(b[at..]);
            at += 4;
            if (n < 0 || n > (b.Length - at) / 8) throw new InvalidDataException("member count");
            lists[l] = [];
            for (var i = 0; i < n; i++, at += 8) lists[l].Add(BinaryPrimitives.ReadUInt64LittleEndian(b[at..]));
        }
        if (at != b.Length) throw new InvalidDataException("trailing metadata");
        return new SnapshotMetadata(index, term, lists[0], lists[1]);
    }
}
