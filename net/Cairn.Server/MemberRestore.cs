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
        // An LZ4 frame starts with 0x184D2204 (little-endian); a dump with "CAIRNSNP".
        return n == 4 && magic.SequenceEqual(new byte[] { 0x04, 0x22, 0x4D, 0x18 }) ? LZ4Stream.Decode(file, leaveOpen: false) : file;
    }
}
