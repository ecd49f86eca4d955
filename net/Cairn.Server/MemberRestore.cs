using System.Buffers.Binary;
using Cairn.Kv;
using Cairn.Raft;
using Cairn.Storage;
using K4os.Compression.LZ4.Streams;

namespace Cairn.Server;

/// <summary>
/// `cairn snapshot restore` (as etcdctl's): a new member's data directory made from a snapshot saved with `cairn
/// snapshot save`, for a new cluster named by --initial-cluster. Every key, revision, lease and user is kept; the old
/// member directory is dropped (the new members publish their own addresses) and the log starts at the snapshot's
/// index with the new voters, so every member restored from the same file starts from the same state.
/// </summary>
public static class MemberRestore
{
    /// <summary>What a restore made: the state it holds and the new cluster's and member's ids.</summary>
    public sealed record Result(SnapshotInfo Snapshot, ulong ClusterId, ulong MemberId);

    /// <summary>The first term of a restored cluster's log (the snapshot's entries belong to no term of the new cluster).</summary>
    private const ulong RestoredTerm = 1;

    /// <summary>Restores <paramref name="snapshotPath"/> into a new data directory for the member <paramref name="options"/> names.</summary>
    /// <exception cref="MemberStartException">The data directory already holds a member, or the snapshot is damaged.</exception>
    public static Result Restore(string snapshotPath, MemberOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!File.Exists(snapshotPath)) throw new MemberStartException($"no snapshot file at {snapshotPath}; save one with `cairn snapshot save FILE`");
        var dir = Path.Combine(options.DataDir, "member");
        if (Directory.Exists(dir) && Directory.EnumerateFileSystemEntries(dir).Any())
        {
            throw new MemberStartException($"--data-dir {options.DataDir} already holds a member's data; restore into a new, empty directory");
        }
        Directory.CreateDirectory(dir);
        try
        {
            SnapshotInfo info;
            using (var input = OpenDump(snapshotPath))
            {
                info = KvStateMachine.BuildFromSnapshot(input, Path.Combine(dir, "kv.db"), new KvOptions
                {
                    QuotaBytes = options.QuotaBytes,
                    Storage = new StorageOptions { PageSize = 16384, MasterKey = options.MasterKey },
                }, key => !key.StartsWith(MemberDirectory.PrefixBytes));
            }
            var voters = options.Cluster.Select(m => MemberOptions.MemberId(m.Name)).ToList();
            var clusterId = MemberOptions.ClusterIdOf(options.Cluster, options.ClusterToken);
            if (info.AppliedIndex > 0)
            {
                // The log starts after the snapshot, with the new voters: no entry of the old cluster is replayed.
                SnapshotFile.Write(Path.Combine(dir, "snap.meta"), new SnapshotMetadata(info.AppliedIndex, RestoredTerm, voters, []), [], options.MasterKey);
                using var wal = Wal.Open(Path.Combine(dir, "wal"), new WalOptions { MasterKey = options.MasterKey });
                wal.SaveSnapshot(info.AppliedIndex, RestoredTerm);
                wal.Save(new HardState(RestoredTerm, 0, info.AppliedIndex), []);
            }
            var identity = Identity.Write(dir, options.Name, clusterId, voters);
            return new Result(info, clusterId, identity.MemberId);
        }
        catch (InvalidDataException e)
        {
            Directory.Delete(dir, recursive: true);
            throw new MemberStartException($"{snapshotPath}: {e.Message}", e);
        }
        catch
        {
            Directory.Delete(dir, recursive: true);
            throw;
        }
    }

    /// <summary>A saved snapshot, decompressed when it was saved as sent (`snapshot save --compressed`, an LZ4 frame).</summary>
    public static Stream OpenDump(string path)
    {
        var file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        Span<byte> magic = stackalloc byte[4];
        var n = file.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        file.Position = 0;
        // Saved through etcd's API (etcdctl snapshot save): the snapshot is followed by padding and a SHA-256.
        Stream body = EtcdSnapshotLength(file) is { } length ? new BoundedStream(file, length) : file;
        // An LZ4 frame starts with 0x184D2204 (little-endian); a dump with "CAIRNSNP".
        return n == 4 && magic.SequenceEqual(new byte[] { 0x04, 0x22, 0x4D, 0x18 }) ? LZ4Stream.Decode(body, leaveOpen: false) : body;
    }

    /// <summary>
    /// What follows a snapshot streamed through etcd's API so the whole is 512-byte blocks before etcd's trailing
    /// SHA-256 (which etcdctl checks): zeros, then the snapshot's length as 8 bytes, little-endian.
    /// </summary>
    internal static byte[] EtcdSnapshotPadding(long length)
    {
        var total = (length + 8 + 511) / 512 * 512;
        var padding = new byte[total - length];
        BinaryPrimitives.WriteInt64LittleEndian(padding.AsSpan(padding.Length - 8), length);
        return padding;
    }

    /// <summary>The length of the snapshot inside a file saved through etcd's API (padded, with its SHA-256 at the end), or null for a plain dump.</summary>
    private static long? EtcdSnapshotLength(Stream file)
    {
        var size = file.Length;
        if (size < 512 + 32 || size % 512 != 32) return null;
        Span<byte> tail = stackalloc byte[40];
        file.Position = size - 40;
        file.ReadExactly(tail);
        var length = BinaryPrimitives.ReadInt64LittleEndian(tail);
        file.Position = 0;
        if (length <= 0 || length > size - 40 || (length + 8 + 511) / 512 * 512 != size - 32) return null;
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        var buffer = new byte[1 << 16];
        for (long left = size - 32; left > 0;)
        {
            var n = file.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
            if (n == 0) return null;
            sha.AppendData(buffer, 0, n);
            left -= n;
        }
        var matches = sha.GetHashAndReset().AsSpan().SequenceEqual(tail[8..]);
        file.Position = 0;
        return matches ? length : null;
    }

    /// <summary>The first <c>length</c> bytes of a stream.</summary>
    private sealed class BoundedStream(Stream inner, long limit) : Stream
    {
        private readonly long _length = limit;
        private long _left = limit;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => _length;
        public override long Position { get => _length - _left; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = inner.Read(buffer, offset, (int)Math.Min(count, _left));
            _left -= n;
            return n;
        }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
