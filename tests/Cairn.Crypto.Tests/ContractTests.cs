using System.Security.Cryptography;

namespace Cairn.Crypto.Tests;

/// <summary>Argument checks, disposal and the zero-allocation promise, on both paths.</summary>
public sealed class ContractTests
{
    private static readonly byte[] Key = Enumerable.Range(0, 32).Select(i => (byte)i).ToArray();
    private static readonly byte[] Nonce = new byte[12];

    [Theory]
    [InlineData(0)]
    [InlineData(16)]
    [InlineData(24)]
    [InlineData(31)]
    [InlineData(33)]
    [InlineData(64)]
    public void Key_must_be_32_bytes(int length)
    {
        var e = Assert.Throws<ArgumentException>(() => new Aes256Gcm(new byte[length]));
        Assert.Equal("key", e.ParamName);
        Assert.Contains("32-byte key", e.Message, StringComparison.Ordinal);
        Assert.Contains($"{length} bytes", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(0, false)]
    [InlineData(11, false)]
    [InlineData(17, false)]
    [InlineData(32, false)]
    [InlineData(11, true)]
    [InlineData(17, true)]
    public void Tag_must_be_12_to_16_bytes(int length, bool forceFallback)
    {
        using var cipher = new Aes256Gcm(Key, forceFallback);
        byte[] data = new byte[10];
        var e = Assert.Throws<ArgumentException>(() => cipher.Encrypt(Nonce, data, data, new byte[length]));
        Assert.Equal("tag", e.ParamName);
        Assert.Contains("12 to 16 bytes", e.Message, StringComparison.Ordinal);

        e = Assert.Throws<ArgumentException>(() => cipher.Decrypt(Nonce, data, new byte[length], data));
        Assert.Equal("tag", e.ParamName);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Nonce_must_not_be_empty(bool forceFallback)
    {
        using var cipher = new Aes256Gcm(Key, forceFallback);
        byte[] data = new byte[10];
        var e = Assert.Throws<ArgumentException>(() => cipher.Encrypt([], data, data, new byte[16]));
        Assert.Equal("nonce", e.ParamName);
        Assert.Contains("nonce is empty", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => cipher.Decrypt([], data, new byte[16], data));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(13)]
    [InlineData(16)]
    [InlineData(200)]
    public void Any_nonce_of_one_byte_or_more_round_trips(int length)
    {
        using var cipher = new Aes256Gcm(Key);
        byte[] nonce = new byte[length];
        byte[] plaintext = "page 812"u8.ToArray();
        byte[] ciphertext = new byte[plaintext.Length];
        byte[] tag = new byte[16];
        cipher.Encrypt(nonce, plaintext, ciphertext, tag);
        byte[] decrypted = new byte[plaintext.Length];
        cipher.Decrypt(nonce, ciphertext, tag, decrypted);
        Assert.Equal(plaintext, decrypted);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Plaintext_and_ciphertext_must_be_the_same_length(bool forceFallback)
    {
        using var cipher = new Aes256Gcm(Key, forceFallback);
        var e = Assert.Throws<ArgumentException>(() => cipher.Encrypt(Nonce, new byte[10], new byte[11], new byte[16]));
        Assert.Equal("ciphertext", e.ParamName);
        Assert.Contains("plaintext is 10 bytes, ciphertext 11", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => cipher.Decrypt(Nonce, new byte[10], new byte[16], new byte[9]));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(-1)]
    [InlineData(16)]
    [InlineData(100)]
    public void Partly_overlapping_buffers_are_refused(int shift)
    {
        using var cipher = new Aes256Gcm(Key);
        byte[] buffer = new byte[400];
        int plaintextAt = shift > 0 ? 0 : -shift;
        Span<byte> plaintext = buffer.AsSpan(plaintextAt, 256);
        Span<byte> ciphertext = buffer.AsSpan(plaintextAt + shift, 256);
        byte[] tag = new byte[16];

        try
        {
            cipher.Encrypt(Nonce, plaintext, ciphertext, tag);
            Assert.Fail("partly overlapping buffers were accepted");
        }
        catch (ArgumentException e)
        {
            Assert.Equal("ciphertext", e.ParamName);
            Assert.Contains("overlap", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Calls_after_Dispose_throw_and_the_key_schedule_is_wiped()
    {
        foreach (bool forceFallback in new[] { false, true })
        {
            var cipher = new Aes256Gcm(Key, forceFallback);
            byte[] data = new byte[64];
            byte[] tag = new byte[16];
            cipher.Encrypt(Nonce, data, data, tag);
            Assert.False(cipher.IsKeyMaterialWiped);

            cipher.Dispose();
            Assert.True(cipher.IsKeyMaterialWiped);
            Assert.Throws<ObjectDisposedException>(() => cipher.Encrypt(Nonce, data, data, tag));
            Assert.Throws<ObjectDisposedException>(() => cipher.Decrypt(Nonce, data, tag, data));
            cipher.Dispose(); // twice is harmless
        }
    }

    [Theory]
    [InlineData(false, 12)]
    [InlineData(false, 16)]
    [InlineData(true, 12)]
    [InlineData(true, 16)]
    public void Tag_may_share_memory_with_the_plaintext_it_is_checked_against(bool forceFallback, int nonceLength)
    {
        // The tag is read before any plaintext is written, so this layout decrypts.
        using var cipher = new Aes256Gcm(Key, forceFallback);
        byte[] nonce = new byte[nonceLength];
        byte[] message = new byte[100];
        new Random(3).NextBytes(message);
        byte[] buffer = new byte[116];
        cipher.Encrypt(nonce, message, buffer.AsSpan(0, 100), buffer.AsSpan(100, 16));

        byte[] plaintext = new byte[116];
        byte[] ciphertext = buffer[..100];
        buffer.AsSpan(100, 16).CopyTo(plaintext.AsSpan(84));
        cipher.Decrypt(nonce, ciphertext, plaintext.AsSpan(84, 16), plaintext.AsSpan(0, 100));
        Assert.Equal(message, plaintext[..100]);
    }

    [Theory]
    [InlineData(false, 12)]
    [InlineData(false, 16)]
    [InlineData(true, 12)]
    public void Encrypt_and_decrypt_of_4_KiB_allocate_nothing(bool forceFallback, int nonceLength)
    {
        using var cipher = new Aes256Gcm(Key, forceFallback);
        if (nonceLength != 12 && !cipher.UsesIntrinsics)
        {
            // Documented: without AES-NI, nonces other than 12 bytes go through the platform's
            // AES block cipher, which allocates. Only reachable on such machines.
            return;
        }

        byte[] nonce = new byte[nonceLength];
        byte[] plaintext = new byte[4096];
        byte[] ciphertext = new byte[4096];
        byte[] decrypted = new byte[4096];
        byte[] tag = new byte[16];
        byte[] associatedData = new byte[16];

        for (int i = 0; i < 200; i++)
        {
            cipher.Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
            cipher.Decrypt(nonce, ciphertext, tag, decrypted, associatedData);
        }

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < 1000; i++)
        {
            cipher.Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
            cipher.Decrypt(nonce, ciphertext, tag, decrypted, associatedData);
        }

        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        Assert.Equal(0, allocated);
        Assert.Equal(plaintext, decrypted);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Concurrent_calls_on_one_instance_agree_with_serial_ones(bool forceFallback)
    {
        // Small messages from several threads at once, so calls overlap often; each result is
        // checked against a private instance. (Unserialized, AesGcm's shared context fails this.)
        using var shared = new Aes256Gcm(Key, forceFallback);
        const int threads = 2;
        const int callsPerThread = 10_000;
        int failures = 0;
        string? firstFailure = null;
        using var start = new Barrier(threads);

        void Hammer(int seed)
        {
            using var own = new Aes256Gcm(Key, forceFallback);
            var random = new Random(seed);
            byte[] nonce = new byte[12];
            byte[] longNonce = new byte[16];
            byte[] plaintext = new byte[random.Next(16, 200)];
            byte[] ciphertext = new byte[plaintext.Length];
            byte[] expected = new byte[plaintext.Length];
            byte[] decrypted = new byte[plaintext.Length];
            byte[] tag = new byte[16];
            byte[] expectedTag = new byte[16];
            start.SignalAndWait();
            for (int i = 0; i < callsPerThread; i++)
            {
                // Now and then a 16-byte nonce, which takes the fallback's other route.
                byte[] n = i % 8 == 0 ? longNonce : nonce;
                random.NextBytes(n);
                random.NextBytes(plaintext);
                own.Encrypt(n, plaintext, expected, expectedTag);
                bool ok;
                try
                {
                    shared.Encrypt(n, plaintext, ciphertext, tag);
                    shared.Decrypt(n, expected, expectedTag, decrypted);
                    ok = expected.AsSpan().SequenceEqual(ciphertext) && expectedTag.AsSpan().SequenceEqual(tag) &&
                        plaintext.AsSpan().SequenceEqual(decrypted);
                }
                catch (CryptographicException)
                {
                    ok = false;
                }

                if (!ok && Interlocked.Increment(ref failures) == 1)
                {
                    firstFailure = $"thread seed {seed}, call {i}";
                }
            }
        }

        Thread[] workers = [.. Enumerable.Range(0, threads).Select(t => new Thread(() => Hammer(t)))];
        foreach (Thread worker in workers)
        {
            worker.Start();
        }

        foreach (Thread worker in workers)
        {
            worker.Join();
        }

        Assert.True(failures == 0, $"{failures} concurrent calls disagreed with serial ones; first: {firstFailure}");
    }

    [Fact]
    public void Hardware_path_is_taken_on_this_machine_when_available()
    {
        using var cipher = new Aes256Gcm(Key);
        Assert.Equal(Aes256Gcm.IsHardwareAccelerated, cipher.UsesIntrinsics);
        using var fallback = new Aes256Gcm(Key, forceFallback: true);
        Assert.False(fallback.UsesIntrinsics);
    }

    [Fact]
    public void A_bad_tag_throws_the_platform_exception_type()
    {
        using var cipher = new Aes256Gcm(Key);
        byte[] data = new byte[32];
        byte[] tag = new byte[16];
        cipher.Encrypt(Nonce, data, data, tag);
        tag[0] ^= 1;
        Assert.Throws<AuthenticationTagMismatchException>(() => cipher.Decrypt(Nonce, data, tag, data));
        Assert.True(data.All(b => b == 0));
    }
}
