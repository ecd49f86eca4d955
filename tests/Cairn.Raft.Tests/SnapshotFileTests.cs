using Cairn.Crypto;

namespace Cairn.Raft.Tests;

public sealed class SnapshotFileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-snap-tests", Guid.NewGuid().ToString("N"));

    public SnapshotFileTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<bool> Encryption => new() { false, true };

    private static readonly IKeyProvider Key = StaticKeyProvider.CreateRandom();

    [Theory]
    [MemberData(nameof(Encryption))]
    public void A_snapshot_round_trips_replaces_the_old_one_atomically_and_any_damage_is_refused(bool encrypted)
    {
        var path = Path.Combine(_dir, "snap");
        var key = encrypted ? Key : null;
        var data = Enumerable.Range(0, 5_000).Select(i => (byte)(i * 7)).ToArray();
        SnapshotFile.Write(path, new SnapshotMetadata(10, 2, [1, 2, 3], [4]), [1, 2, 3], key);
        SnapshotFile.Write(path, new SnapshotMetadata(40, 3, [1, 2, 3, 4], []), data, key);
        var (meta, read) = SnapshotFile.Read(path, key);
        Assert.Equal((40UL, 3UL), (meta.Index, meta.Term));
        Assert.Equal([1UL, 2UL, 3UL, 4UL], meta.Voters);
        Assert.Empty(meta.Learners);
        Assert.Equal(data, read);
        Assert.False(File.Exists(path + ".tmp"));
        var bytes = File.ReadAllBytes(path);
        if (encrypted) Assert.Equal(-1, bytes.AsSpan().IndexOf(data.AsSpan(100, 32)));
        var rng = new Random(4);
        for (var i = 0; i < 200; i++)
        {
            var damaged = (byte[])bytes.Clone();
            damaged[rng.Next(damaged.Length)] ^= (byte)(1 << rng.Next(8));
            File.WriteAllBytes(path, damaged);
            Assert.Throws<SnapshotCorruptException>(() => SnapshotFile.Read(path, key));
        }
        File.WriteAllBytes(path, bytes[..^5]);
        Assert.Throws<SnapshotCorruptException>(() => SnapshotFile.Read(path, key));
        if (encrypted)
        {
            File.WriteAllBytes(path, bytes);
            Assert.Throws<SnapshotCorruptException>(() => SnapshotFile.Read(path, StaticKeyProvider.CreateRandom()));
        }
    }
}
