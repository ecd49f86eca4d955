using Cairn.Kv;
using Cairn.Storage;
using K4os.Compression.LZ4.Streams;

namespace Cairn.Client.Tests;

/// <summary>Snapshots streamed through the client are the member's state: a store built from one hashes the same.</summary>
public sealed class SnapshotTests(SingleMember member) : IClassFixture<SingleMember>
{
    [Fact]
    public async Task A_saved_snapshot_builds_a_store_with_the_members_hash_and_revision()
    {
        var rng = new Random(5);
        await using var client = member.Cluster.Client();
        for (var i = 0; i < 400; i++)
        {
            var key = $"snap/{rng.Next(150):d3}";
            if (rng.Next(5) == 0) await client.DeleteAsync(key);
            else await client.PutAsync(key, new string('x', rng.Next(2000)) + i);
        }
        var lease = (await client.LeaseGrantAsync(60)).Body.Id;
        await client.PutAsync("snap/leased", "l", lease: lease);
        var (_, hash) = await client.HashAsync();

        using var dump = new MemoryStream();
        var written = await client.SnapshotAsync(dump);
        Assert.Equal(dump.Length, written);
        using var compressed = new MemoryStream();
        var compressedBytes = await client.SnapshotAsync(compressed, member.Endpoint, compressed: true);
        Assert.Equal(compressed.Length, compressedBytes);
        Assert.True(compressedBytes < written, $"{compressedBytes} compressed bytes for a {written}-byte dump");
        // The compressed form is the LZ4 frame stream of the same dump.
        compressed.Position = 0;
        using (var decoded = new MemoryStream())
        {
            using (var lz4 = LZ4Stream.Decode(compressed, leaveOpen: true)) await lz4.CopyToAsync(decoded);
            byte[] a = dump.ToArray(), b = decoded.ToArray();
            Assert.Equal(a.Length, b.Length);
            // An entry that changes no key (a leader's no-op, a member publishing its address) may have applied between
            // the two: then only the applied index (bytes 12..20 of the dump) and the trailing checksum differ.
            if (a.AsSpan(12, 8).SequenceEqual(b.AsSpan(12, 8))) Assert.Equal(a, b);
            else Assert.Equal(a[20..^8], b[20..^8]);
        }

        var dir = Path.Combine(Path.GetTempPath(), "cairn-client-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            var path = Path.Combine(dir, "built.db");
            var options = new KvOptions { Storage = new StorageOptions { PageSize = 16384 } };
            dump.Position = 0;
            var info = KvStateMachine.BuildFromSnapshot(dump, path, options);
            Assert.Equal(hash.Revision, info.Revision);
            using var built = KvStateMachine.Open(path, options);
            Assert.Equal((hash.Hash, hash.Revision, hash.CompactRevision), built.Hash());
            Assert.Equal(lease, Assert.Single(built.Leases()).Id);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task A_snapshot_of_an_unreachable_endpoint_names_it()
    {
        await using var client = member.Cluster.Client();
        var (holder, port) = TestCluster.ClosedPort();
        using var _ = holder;
        var e = await Assert.ThrowsAsync<CairnUnavailableException>(() => client.SnapshotAsync(Stream.Null, $"127.0.0.1:{port}"));
        Assert.Contains($"127.0.0.1:{port} (connection refused)", e.Message);
    }
}
