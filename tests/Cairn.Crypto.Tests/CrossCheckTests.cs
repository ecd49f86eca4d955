using System.Security.Cryptography;

namespace Cairn.Crypto.Tests;

/// <summary>
/// Random cases checked byte for byte against the platform's AesGcm (OpenSSL here), in both
/// directions. AesGcm on Linux takes only 12-byte nonces, so other lengths are checked against the
/// fallback's separate implementation (platform AES block cipher, bit-serial GHASH) instead.
/// </summary>
public sealed class CrossCheckTests
{
    private const int Seed = 0x5EED_CA1;

    [Fact]
    public void Random_cases_match_platform_AesGcm_both_ways()
    {
        const int cases = 10_000;
        var random = new Random(Seed);
        byte[] key = new byte[32];
        Aes256Gcm? ours = null;
        AesGcm?[] theirs = new AesGcm?[5];

        try
        {
            for (int i = 0; i < cases; i++)
            {
                if (i % 50 == 0)
                {
                    random.NextBytes(key);
                    ours?.Dispose();
                    ours = new Aes256Gcm(key);
                    Assert.Equal(Aes256Gcm.IsHardwareAccelerated, ours.UsesIntrinsics);
                    for (int t = 0; t < theirs.Length; t++)
                    {
                        theirs[t]?.Dispose();
                        theirs[t] = new AesGcm(key, 12 + t);
                    }
                }

                int length = NextLength(random);
                int tagLength = random.Next(12, 17);
                byte[] nonce = Bytes(random, 12);
                byte[] associatedData = Bytes(random, random.Next(3) == 0 ? 0 : random.Next(0, 65));
                byte[] plaintext = Bytes(random, length);
                AesGcm platform = theirs[tagLength - 12]!;
                string context = $"seed {Seed}, case {i}: text {length} B, aad {associatedData.Length} B, tag {tagLength} B";

                // Ours encrypts; the platform decrypts and agrees on every byte.
                byte[] ciphertext = new byte[length];
                byte[] tag = new byte[tagLength];
                bool inPlace = random.Next(4) == 0;
                if (inPlace)
                {
                    plaintext.CopyTo(ciphertext, 0);
                    ours!.Encrypt(nonce, ciphertext, ciphertext, tag, associatedData);
                }
                else
                {
                    ours!.Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
                }

                byte[] expectedCiphertext = new byte[length];
                byte[] expectedTag = new byte[tagLength];
                platform.Encrypt(nonce, plaintext, expectedCiphertext, expectedTag, associatedData);
                AssertEqual(expectedCiphertext, ciphertext, context, "ciphertext");
                AssertEqual(expectedTag, tag, context, "tag");

                byte[] decrypted = new byte[length];
                platform.Decrypt(nonce, ciphertext, tag, decrypted, associatedData);
                AssertEqual(plaintext, decrypted, context, "platform decryption of ours");

                // The platform encrypts; ours decrypts.
                Array.Clear(decrypted);
                if (inPlace)
                {
                    expectedCiphertext.CopyTo(decrypted, 0);
                    ours.Decrypt(nonce, decrypted, expectedTag, decrypted, associatedData);
                }
                else
                {
                    ours.Decrypt(nonce, expectedCiphertext, expectedTag, decrypted, associatedData);
                }

                AssertEqual(plaintext, decrypted, context, "our decryption of the platform's");

                if (i % 16 == 0)
                {
                    AssertTamperRejected(ours, random, nonce, expectedCiphertext, expectedTag, associatedData, context);
                }
            }
        }
        finally
        {
            ours?.Dispose();
            foreach (AesGcm? cipher in theirs)
            {
                cipher?.Dispose();
            }
        }
    }

    [Fact]
    public void Random_cases_with_other_nonce_lengths_match_the_fallback_both_ways()
    {
        // Without AES-NI both instances take the fallback and this only checks it against itself.
        const int cases = 600;
        var random = new Random(Seed + 1);
        for (int i = 0; i < cases; i++)
        {
            byte[] key = Bytes(random, 32);
            using var intrinsic = new Aes256Gcm(key);
            using var fallback = new Aes256Gcm(key, forceFallback: true);

            int nonceLength = random.Next(1, 80);
            if (nonceLength == 12)
            {
                nonceLength = 16;
            }

            int length = random.Next(4) == 0 ? random.Next(0, 10_001) : random.Next(0, 300);
            int tagLength = random.Next(12, 17);
            byte[] nonce = Bytes(random, nonceLength);
            byte[] associatedData = Bytes(random, random.Next(0, 65));
            byte[] plaintext = Bytes(random, length);
            string context = $"seed {Seed + 1}, case {i}: nonce {nonceLength} B, text {length} B, aad {associatedData.Length} B, tag {tagLength} B";

            byte[] ciphertext = new byte[length];
            byte[] tag = new byte[tagLength];
            intrinsic.Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
            byte[] expectedCiphertext = new byte[length];
            byte[] expectedTag = new byte[tagLength];
            fallback.Encrypt(nonce, plaintext, expectedCiphertext, expectedTag, associatedData);
            AssertEqual(expectedCiphertext, ciphertext, context, "ciphertext");
            AssertEqual(expectedTag, tag, context, "tag");

            byte[] decrypted = new byte[length];
            fallback.Decrypt(nonce, ciphertext, tag, decrypted, associatedData);
            AssertEqual(plaintext, decrypted, context, "fallback decryption of intrinsic");
            Array.Clear(decrypted);
            intrinsic.Decrypt(nonce, expectedCiphertext, expectedTag, decrypted, associatedData);
            AssertEqual(plaintext, decrypted, context, "intrinsic decryption of fallback");

            AssertTamperRejected(intrinsic, random, nonce, ciphertext, tag, associatedData, context);
            AssertTamperRejected(fallback, random, nonce, ciphertext, tag, associatedData, context);
        }
    }

    /// <summary>Lengths 0..10,000, weighted toward the edges of blocks and eight-block groups.</summary>
    private static int NextLength(Random random) => random.Next(4) switch
    {
        0 => random.Next(0, 10_001),
        1 => random.Next(0, 300),
        2 => Math.Clamp((random.Next(1, 80) * 128) + random.Next(-17, 18), 0, 10_000),
        _ => random.Next(0, 4097),
    };

    private static void AssertTamperRejected(
        Aes256Gcm cipher, Random random, byte[] nonce, byte[] ciphertext, byte[] tag, byte[] associatedData, string context)
    {
        byte[] badCiphertext = (byte[])ciphertext.Clone();
        byte[] badTag = (byte[])tag.Clone();
        byte[] badAssociatedData = (byte[])associatedData.Clone();
        switch (random.Next(3))
        {
            case 0 when badCiphertext.Length > 0:
                badCiphertext[random.Next(badCiphertext.Length)] ^= (byte)(1 << random.Next(8));
                break;
            case 1 when badAssociatedData.Length > 0:
                badAssociatedData[random.Next(badAssociatedData.Length)] ^= (byte)(1 << random.Next(8));
                break;
            default:
                badTag[random.Next(badTag.Length)] ^= (byte)(1 << random.Next(8));
                break;
        }

        byte[] plaintext = new byte[ciphertext.Length];
        plaintext.AsSpan().Fill(0xA5);
        Assert.Throws<AuthenticationTagMismatchException>(
            () => cipher.Decrypt(nonce, badCiphertext, badTag, plaintext, badAssociatedData));
        Assert.True(plaintext.AsSpan().IndexOfAnyExcept((byte)0) < 0, $"{context}: plaintext not wiped after a bad tag");
    }

    private static byte[] Bytes(Random random, int length)
    {
        byte[] bytes = new byte[length];
        random.NextBytes(bytes);
        return bytes;
    }

    private static void AssertEqual(byte[] expected, byte[] actual, string context, string what)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
        {
            int at = expected.AsSpan().CommonPrefixLength(actual);
            Assert.Fail($"{context}: {what} differs from byte {at} of {expected.Length}");
        }
    }
}
