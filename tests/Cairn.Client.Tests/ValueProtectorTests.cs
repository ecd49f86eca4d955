using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Cairn.Crypto;

namespace Cairn.Client.Tests;

/// <summary>
/// The value protector on its own: every envelope checked against an independent model built on .NET's HKDF and
/// <see cref="AesGcm"/>, nonce uniqueness, every way a value can fail to open, and allocation.
/// </summary>
public sealed class ValueProtectorTests
{
    private static readonly byte[] Info = "cairn value key v1"u8.ToArray();

    private static ValueKey Key(int id, byte[] material) => new(id, new StaticKeyProvider(material, $"test key {id}"));

    /// <summary>The model's open: parse the envelope of docs/client.md, derive the session key with HKDF, decrypt with AesGcm.</summary>
    private static byte[] ModelOpen(byte[] valueKey, byte[] name, byte[] envelope, out ushort keyId)
    {
        Assert.Equal(0xCA, envelope[0]);
        Assert.Equal(1, envelope[1]);
        keyId = BinaryPrimitives.ReadUInt16BigEndian(envelope.AsSpan(2));
        var sessionKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, valueKey, 32, envelope[4..20], Info);
        using var gcm = new AesGcm(sessionKey, 16);
        var plaintext = new byte[envelope.Length - 48];
        gcm.Decrypt(envelope.AsSpan(20, 12), envelope.AsSpan(32, plaintext.Length), envelope.AsSpan(envelope.Length - 16), plaintext, name);
        return plaintext;
    }

    /// <summary>The model's seal, for a given session salt and counter.</summary>
    private static byte[] ModelSeal(byte[] valueKey, ushort keyId, byte[] salt, long counter, byte[] name, byte[] plaintext)
    {
        var envelope = new byte[plaintext.Length + 48];
        envelope[0] = 0xCA;
        envelope[1] = 1;
        BinaryPrimitives.WriteUInt16BigEndian(envelope.AsSpan(2), keyId);
        salt.CopyTo(envelope, 4);
        BinaryPrimitives.WriteInt64BigEndian(envelope.AsSpan(24), counter);
        var sessionKey = HKDF.DeriveKey(HashAlgorithmName.SHA256, valueKey, 32, salt, Info);
        using var gcm = new AesGcm(sessionKey, 16);
        gcm.Encrypt(envelope.AsSpan(20, 12), plaintext, envelope.AsSpan(32, plaintext.Length), envelope.AsSpan(envelope.Length - 16), name);
        return envelope;
    }

    private static readonly int[] Sizes = [0, 1, 15, 16, 17, 31, 64, 127, 128, 129, 255, 256, 257, 1000, 4096, 5001];

    [Fact]
    public void Sealing_matches_the_AesGcm_model_byte_for_byte()
    {
        const int seed = 7101;
        var rng = new Random(seed);
        var material = new byte[32];
        rng.NextBytes(material);
        using var p = new ValueProtector(Key(9, material));
        foreach (var size in Sizes)
        {
            var plaintext = new byte[size];
            rng.NextBytes(plaintext);
            var name = Encoding.UTF8.GetBytes($"model/{size}");
            var envelope = p.Seal(name, plaintext);
            Assert.Equal(size + ValueProtector.Overhead, envelope.Length);

            Assert.Equal(plaintext, ModelOpen(material, name, envelope, out var keyId));
            Assert.Equal(9, keyId);
            var counter = BinaryPrimitives.ReadInt64BigEndian(envelope.AsSpan(24));
            Assert.Equal(envelope, ModelSeal(material, 9, envelope[4..20], counter, name, plaintext));
            Assert.Equal(plaintext, p.Open(name, envelope));
        }
    }

    [Fact]
    public void Values_the_model_seals_in_other_sessions_open()
    {
        var rng = new Random(7102);
        var k1 = new byte[32];
        var k2 = new byte[32];
        rng.NextBytes(k1);
        rng.NextBytes(k2);
        using var p = new ValueProtector(Key(2, k2), Key(1, k1));
        foreach (var size in Sizes)
        {
            var plaintext = new byte[size];
            rng.NextBytes(plaintext);
            var salt = new byte[16];
            rng.NextBytes(salt);
            var name = Encoding.UTF8.GetBytes($"other/{size}");
            Assert.Equal(plaintext, p.Open(name, ModelSeal(k1, 1, salt, rng.NextInt64(1, long.MaxValue), name, plaintext)));
            Assert.Equal(plaintext, p.Open(name, ModelSeal(k2, 2, salt, 1, name, plaintext)));
        }
    }

    [Fact]
    public void Nonces_are_unique_within_a_session_and_sessions_draw_their_own_salts()
    {
        var material = RandomNumberGenerator.GetBytes(32);
        using var a = new ValueProtector(Key(1, material));
        using var b = new ValueProtector(Key(1, material));
        Assert.NotEqual(a.SessionSalt, b.SessionSalt);
        const int perSession = 5000;
        var envelopes = new byte[2 * perSession][];
        Parallel.For(0, envelopes.Length, i => envelopes[i] = (i % 2 == 0 ? a : b).Seal("n"u8, "same value"u8));

        var pairs = new HashSet<string>();
        var countersA = new SortedSet<long>();
        foreach (var e in envelopes)
        {
            Assert.True(pairs.Add(Convert.ToHexString(e, 4, 28)), "a (salt, nonce) pair was used twice");
            if (e.AsSpan(4, 16).SequenceEqual(BigEndian(a.SessionSalt))) countersA.Add(BinaryPrimitives.ReadInt64BigEndian(e.AsSpan(24)));
            Assert.Equal(0u, BinaryPrimitives.ReadUInt32BigEndian(e.AsSpan(20)));
        }
        Assert.Equal(Enumerable.Range(1, perSession).Select(i => (long)i), countersA);
        Assert.Equal(perSession * 2, envelopes.Select(e => Convert.ToHexString(e, 32, e.Length - 32)).Distinct().Count()); // same plaintext, distinct ciphertexts
    }

    private static byte[] BigEndian(UInt128 v)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(b, v);
        return b;
    }

    [Fact]
    public void Every_byte_changed_anywhere_in_an_envelope_fails_to_open_with_a_typed_error()
    {
        var material = RandomNumberGenerator.GetBytes(32);
        using var p = new ValueProtector(Key(1, material));
        var name = "t/key"u8.ToArray();
        var envelope = p.Seal(name, "a value worth protecting"u8);
        for (var i = 0; i < envelope.Length; i++)
        {
            var bad = (byte[])envelope.Clone();
            bad[i] ^= 0x01;
            var e = Assert.Throws<CairnValueProtectionException>(() => p.Open(name, bad));
            var expected = i switch
            {
                0 => ValueProtectionError.NotSealed,
                1 => ValueProtectionError.UnsupportedVersion,
                2 or 3 => ValueProtectionError.UnknownKey,
                _ => ValueProtectionError.AuthenticationFailed,
            };
            Assert.True(expected == e.Error, $"byte {i}: {e.Error}, expected {expected}");
            Assert.Equal(name, e.Key);
            Assert.Null(e.Code);
        }

        // Cut short, empty, or not sealed at all.
        Assert.Equal(ValueProtectionError.NotSealed, Assert.Throws<CairnValueProtectionException>(() => p.Open(name, envelope.AsSpan(0, ValueProtector.Overhead - 1))).Error);
        Assert.Equal(ValueProtectionError.NotSealed, Assert.Throws<CairnValueProtectionException>(() => p.Open(name, [])).Error);
        var plain = Assert.Throws<CairnValueProtectionException>(() => p.Open(name, "plain text written without a protector, long enough"u8));
        Assert.Equal(ValueProtectionError.NotSealed, plain.Error);
        Assert.Contains("written without a value protector", plain.Message, StringComparison.Ordinal);

        // Another key name, and the right id with the wrong key bytes.
        Assert.Equal(ValueProtectionError.AuthenticationFailed, Assert.Throws<CairnValueProtectionException>(() => p.Open("t/other"u8, envelope)).Error);
        using var impostor = new ValueProtector(Key(1, RandomNumberGenerator.GetBytes(32)));
        var wrong = Assert.Throws<CairnValueProtectionException>(() => impostor.Open(name, envelope));
        Assert.Equal((ValueProtectionError.AuthenticationFailed, 1), (wrong.Error, wrong.KeyId));

        // An id the keyring lacks: the message says which key to add.
        using var other = new ValueProtector(Key(4, RandomNumberGenerator.GetBytes(32)));
        var unknown = Assert.Throws<CairnValueProtectionException>(() => other.Open(name, envelope));
        Assert.Equal((ValueProtectionError.UnknownKey, 1), (unknown.Error, unknown.KeyId));
        Assert.Contains("add key 1", unknown.Message, StringComparison.Ordinal);

        // A failed open leaves nothing of the plaintext in the caller's buffer.
        var destination = new byte[envelope.Length];
        var tampered = (byte[])envelope.Clone();
        tampered[40] ^= 0x80;
        Assert.Throws<CairnValueProtectionException>(() => p.Open(name, tampered, destination));
        Assert.All(destination, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Values_from_more_sessions_than_the_cache_holds_still_open()
    {
        var material = RandomNumberGenerator.GetBytes(32);
        using var p = new ValueProtector(Key(1, material));
        var rng = new Random(7105);
        var salt = new byte[16];
        for (var i = 0; i < ValueProtector.MaxCachedSessions + 50; i++)
        {
            rng.NextBytes(salt);
            var value = BitConverter.GetBytes(i);
            Assert.Equal(value, p.Open("s"u8, ModelSeal(material, 1, salt, 1, "s"u8.ToArray(), value)));
        }
        Assert.Equal(ValueProtector.MaxCachedSessions, p.CachedSessions);
    }

    [Fact]
    public void Sealing_and_opening_allocate_nothing_but_the_result()
    {
        using var p = new ValueProtector(Key(1, RandomNumberGenerator.GetBytes(32)));
        var plaintext = new byte[256];
        var envelope = new byte[ValueProtector.SealedLength(256)];
        var opened = new byte[256];
        for (var i = 0; i < 10; i++)
        {
            p.Seal("alloc"u8, plaintext, envelope);
            p.Open("alloc"u8, envelope, opened);
            _ = p.Open("alloc"u8, p.Seal("alloc"u8, plaintext));
        }
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 100; i++)
        {
            p.Seal("alloc"u8, plaintext, envelope);
            p.Open("alloc"u8, envelope, opened);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);

        before = GC.GetAllocatedBytesForCurrentThread();
        var one = p.Seal("alloc"u8, plaintext);
        var arraySeal = GC.GetAllocatedBytesForCurrentThread() - before;
        before = GC.GetAllocatedBytesForCurrentThread();
        var back = p.Open("alloc"u8, one);
        var arrayOpen = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(plaintext, back);
        Assert.InRange(arraySeal, ValueProtector.SealedLength(256), ValueProtector.SealedLength(256) + 32);  // the array and its header only
        Assert.InRange(arrayOpen, 256, 256 + 32);
    }

    [Fact]
    public void Keyrings_are_read_from_key_files_and_refuse_duplicate_ids()
    {
        var dir = Path.Combine(Path.GetTempPath(), "cairn-value-keys", Guid.NewGuid().ToString("N"));
        try
        {
            var oldFile = KeyFileProvider.OpenOrCreate(Path.Combine(dir, "old.key")).Path;
            var newFile = KeyFileProvider.OpenOrCreate(Path.Combine(dir, "new.key")).Path;
            using var before = ValueProtector.FromKeyFiles(oldFile);
            Assert.Equal(1, before.CurrentKeyId);
            var envelope = before.Seal("f/a"u8, "v"u8);

            using var after = ValueProtector.FromKeyFiles($"2={newFile},1={oldFile}");
            Assert.Equal(2, after.CurrentKeyId);
            Assert.Equal([1, 2], after.KeyIds);
            Assert.Equal("v"u8.ToArray(), after.Open("f/a"u8, envelope));
            Assert.True(ValueProtector.TryReadKeyId(after.Seal("f/a"u8, "v"u8), out var id) && id == 2);

            Assert.Throws<ArgumentException>(() => ValueKey.ParseKeyFiles($"{newFile},{oldFile}"));
            Assert.Throws<ArgumentException>(() => ValueProtector.FromKeyFiles($"1={newFile},1={oldFile}"));
            Assert.Throws<ArgumentOutOfRangeException>(() => new ValueKey(0, new StaticKeyProvider(new byte[32])));
            Assert.Throws<FileNotFoundException>(() => ValueProtector.FromKeyFiles(Path.Combine(dir, "missing.key")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_disposed_protector_refuses_work()
    {
        var p = new ValueProtector(Key(1, RandomNumberGenerator.GetBytes(32)));
        var envelope = p.Seal("d"u8, "v"u8);
        p.Dispose();
        Assert.Throws<ObjectDisposedException>(() => p.Seal("d"u8, "v"u8));
        Assert.Throws<ObjectDisposedException>(() => p.Open("d"u8, envelope));
    }
}
