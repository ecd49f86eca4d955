using System.Buffers.Binary;
using System.IO.Hashing;
using System.Security.Cryptography;
using Cairn.Crypto;
using Cairn.Storage;

namespace Cairn.Fuzz;

/// <summary>
/// The page decoder (engine/Cairn.Storage): the input is a whole database file. It is opened, every tree named in the
/// catalog is opened and read key by key forwards and backwards (with point lookups), and <see cref="Database.Verify"/>
/// walks it. Clean: <see cref="StorageException"/> and its subclasses — <see cref="CorruptDatabaseException"/>,
/// <see cref="IncompatibleFormatException"/>, <see cref="EncryptionKeyException"/> (a damaged wrapped key cannot be told
/// from a wrong key).
/// <para>
/// Checksums (unencrypted) and GCM tags (encrypted) turn almost every raw mutation into "checksum mismatch" at the first
/// page read. So most mutations are structure-aware: one page (or a meta record) is opened, its plaintext mutated, and
/// it is sealed again — checksum recomputed, or re-encrypted under the file's key — so the damage reaches the page
/// decoder behind the seal, which must still refuse it cleanly.
/// </para>
/// </summary>
public sealed class StorageTarget : FuzzTarget
{
    private static readonly byte[] MasterKeyBytes = [.. Enumerable.Range(1, 32).Select(i => (byte)(i * 7))];
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"cairn-fuzz-storage-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly Lazy<IReadOnlyList<byte[]>> _seeds;
    private readonly StaticKeyProvider? _key;
    private long _files;

    /// <summary>A target for plain (<paramref name="encrypted"/> false) or encrypted database files.</summary>
    public StorageTarget(bool encrypted)
    {
        Encrypted = encrypted;
        _key = encrypted ? new StaticKeyProvider(MasterKeyBytes, "fuzz key") : null;
        Directory.CreateDirectory(_dir);
        _seeds = new Lazy<IReadOnlyList<byte[]>>(MakeSeeds);
    }

    /// <summary>Whether the files are encrypted.</summary>
    public bool Encrypted { get; }

    /// <inheritdoc/>
    public override string Name => Encrypted ? "storage-encrypted" : "storage";

    /// <inheritdoc/>
    public override IReadOnlyList<byte[]> Seeds => _seeds.Value;

    /// <inheritdoc/>
    public override int MaxInputBytes => 1 << 20;

    /// <inheritdoc/>
    public override string CleanExceptions => "StorageException: CorruptDatabaseException, IncompatibleFormatException, EncryptionKeyException";

    /// <inheritdoc/>
    public override bool IsClean(Exception e) => e is StorageException and not DatabaseLockedException;

    /// <summary>Opening a file sets up a page cache, a cipher and verification bitmaps; the rest must stay proportional to the file.</summary>
    public override long AllocationBound(int inputLength) => (2L << 20) + 16L * inputLength;

    private StorageOptions Options => new()
    {
        CreateIfMissing = false,
        MasterKey = _key,
        MapReserveBytes = 1 << 20,
        GrowthStepBytes = 4096,
        PageCacheBytes = 1 << 20,
    };

    private List<byte[]> MakeSeeds()
    {
        var seeds = new List<byte[]>();
        var path = Path.Combine(_dir, "seed.cairn");
        File.Delete(path);
        using (var db = Database.Open(path, Options with { CreateIfMissing = true }))
        {
            // A catalog of three trees; small values, values in overflow runs, a branch level, and freed pages.
            for (var round = 0; round < 3; round++)
            {
                using var tx = db.BeginWrite();
                var users = tx.CreateTree("users");
                for (var i = 0; i < 180; i++) users.Put(System.Text.Encoding.UTF8.GetBytes($"user/{i:D4}/{round % 2}"), System.Text.Encoding.UTF8.GetBytes($"{{\"n\":{i},\"r\":{round}}}"));
                var blobs = tx.CreateTree("blobs");
                blobs.Put("big"u8, Fill(3000 + round, (byte)round));
                blobs.Put("huge"u8, Fill(9000, 0x5A));
                blobs.Put("small"u8, "s"u8);
                if (round == 2)
                {
                    for (var i = 0; i < 180; i += 3) users.Delete(System.Text.Encoding.UTF8.GetBytes($"user/{i:D4}/0"));
                }
                tx.CreateTree("empty");
                tx.Commit();
            }
        }
        seeds.Add(File.ReadAllBytes(path));
        File.Delete(path);
        using (var db = Database.Open(path, Options with { CreateIfMissing = true }))
        {
            using var tx = db.BeginWrite();
            tx.CreateTree("t").Put("k"u8, "v"u8);
            tx.Commit();
        }
        seeds.Add(File.ReadAllBytes(path));
        File.Delete(path);
        return seeds;
    }

    private static byte[] Fill(int n, byte salt)
    {
        var b = new byte[n];
        for (var i = 0; i < n; i++) b[i] = (byte)(i * 31 + salt);
        return b;
    }

    /// <inheritdoc/>
    public override void Run(byte[] input)
    {
        var path = Path.Combine(_dir, $"{Interlocked.Increment(ref _files)}.cairn");
        File.WriteAllBytes(path, input);
        try
        {
            using var db = Database.Open(path, Options);
            ReadEverything(db);
            db.Verify();
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>Every tree in the catalog, every key and value, forwards and backwards, and a lookup of each key seen.</summary>
    public static long ReadEverything(Database db)
    {
        ArgumentNullException.ThrowIfNull(db);
        long bytes = 0;
        using var tx = db.BeginRead();
        foreach (var name in tx.GetTreeNames())
        {
            var tree = tx.OpenTree(name);
            var keys = 0;
            foreach (var e in tree.All())
            {
                bytes += e.Key.Length + e.Value.Length;
                if (keys++ % 16 == 0 && !tree.TryGet(e.Key, out _)) bytes++;
            }
            using var c = tree.CreateCursor();
            for (var ok = c.Last(); ok; ok = c.Prev()) bytes += c.Key.Length + c.Value.Length;
        }
        return bytes;
    }

    /// <inheritdoc/>
    public override byte[] Mutate(Mutator m, byte[] seed, byte[] other)
    {
        if (m.OneIn(3) || seed.Length < 2 * 4096) return m.Mutate(seed, other, seed.Length + 8192);
        var file = (byte[])seed.Clone();
        var pageSize = BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(12));
        var pages = file.Length / pageSize;
        var rounds = 1 + (m.OneIn(3) ? m.Next(3) : 0);
        for (var r = 0; r < rounds; r++)
        {
            var pg = m.OneIn(6) ? m.Next(2) : 2 + m.Next(pages - 2);
            if (pg < 2) MutateMeta(m, file, pg * pageSize);
            else MutatePage(m, file, pageSize, pg, pages);
        }
        return file;
    }

    /// <summary>The meta record's first 504 bytes, mutated, with its XxHash64 recomputed.</summary>
    private static void MutateMeta(Mutator m, byte[] file, int at)
    {
        var record = file.AsSpan(at, 512);
        var body = Fit(m.Mutate(record[..504], default, 504), 504);
        body.CopyTo(record);
        BinaryPrimitives.WriteUInt64LittleEndian(record[504..], XxHash64.HashToUInt64(record[..504]));
    }

    private void MutatePage(Mutator m, byte[] file, int pageSize, int pg, int pages)
    {
        var fileId = file.AsSpan(16, 16).ToArray();
        if (!Encrypted)
        {
            var run = file[(pg * pageSize)] == 3 ? Math.Clamp(BinaryPrimitives.ReadInt32LittleEndian(file.AsSpan(pg * pageSize + 2)), 1, pages - pg) : 1;
            var span = file.AsSpan(pg * pageSize, run * pageSize);
            var body = Fit(m.Mutate(span[..^32], default, span.Length - 32), span.Length - 32);
            body.CopyTo(span);
            var trailer = span[^32..];
            trailer.Clear();
            Span<byte> seed = stackalloc byte[16];
            fileId.CopyTo(seed);
            var checksumSeed = BinaryPrimitives.ReadUInt64LittleEndian(seed) ^ BinaryPrimitives.ReadUInt64LittleEndian(seed[8..]);
            BinaryPrimitives.WriteUInt64LittleEndian(trailer, XxHash3.HashToUInt64(span[..^32], (long)checksumSeed));
            return;
        }
        var dataKey = new byte[32];
        var context = new byte[20];
        fileId.CopyTo(context, 0);
        file.AsSpan(148, 4).CopyTo(context.AsSpan(16));
        if (!KeyWrap.TryUnwrap(_key!, file.AsSpan(152, KeyWrap.WrappedSize), context, dataKey)) return;
        // A page's trailer is at the end of its run: try runs of growing length until one opens.
        for (var run = 1; run <= Math.Min(8, pages - pg); run++)
        {
            var span = file.AsSpan(pg * pageSize, run * pageSize);
            var trailer = span[^32..].ToArray();
            using var gcm = PageKey(dataKey, trailer);
            var nonce = new byte[12];
            trailer.AsSpan(12, 4).CopyTo(nonce);
            var ad = new byte[40];
            fileId.CopyTo(ad, 0);
            BinaryPrimitives.WriteUInt64LittleEndian(ad.AsSpan(16), (ulong)pg);
            trailer.AsSpan(0, 16).CopyTo(ad.AsSpan(24));
            var plain = new byte[span.Length - 32];
            try
            {
                gcm.Decrypt(nonce, span[..^32], trailer.AsSpan(16), plain, ad);
            }
            catch (AuthenticationTagMismatchException)
            {
                continue;
            }
            var body = Fit(m.Mutate(plain, default, plain.Length), plain.Length);
            gcm.Encrypt(nonce, body, span[..^32], span[^16..], ad);
            return;
        }
    }

    private static AesGcm PageKey(byte[] dataKey, byte[] trailer)
    {
        var key = new byte[32];
        HKDF.DeriveKey(HashAlgorithmName.SHA256, dataKey, key, trailer.AsSpan(2, 10), "cairn page key v1"u8);
        return new AesGcm(key, 16);
    }

    /// <summary>A mutated body brought back to its place's length (cut, or padded with zeros).</summary>
    private static byte[] Fit(byte[] b, int length)
    {
        if (b.Length == length) return b;
        var f = new byte[length];
        b.AsSpan(0, Math.Min(b.Length, length)).CopyTo(f);
        return f;
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
        base.Dispose();
    }
}
