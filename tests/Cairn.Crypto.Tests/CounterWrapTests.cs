using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Cairn.Crypto.Tests;

/// <summary>
/// inc32 wraps the low 32 bits of the counter block without carrying into the rest
/// (SP 800-38D §6.2). A 96-bit nonce starts the counter at 2, so only a GHASH-derived J0 can wrap
/// within a message; these tests solve for a 16-byte nonce whose J0 ends in a chosen counter and
/// check every keystream block against the platform's AES block cipher.
/// </summary>
public sealed class CounterWrapTests
{
    [Theory]
    [InlineData(0xFFFFFFFEu, false)]
    [InlineData(0xFFFFFFFEu, true)]
    [InlineData(0xFFFFFFFAu, false)]
    [InlineData(0xFFFFFFFAu, true)]
    [InlineData(0xFFFFFFF0u, false)]
    [InlineData(0x7FFFFFFDu, false)]
    public void Counter_wraps_in_its_low_32_bits(uint initialCounter, bool forceFallback)
    {
        byte[] key = Convert.FromHexString("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4");
        using var blockCipher = Aes.Create();
        blockCipher.Key = key;
        Gf128 h = Gf128.Read(blockCipher.EncryptEcb(new byte[16], PaddingMode.None));

        // J0 = GHASH(N || 0^64 || [128]64) = ((N·H) + L)·H  =>  N = (J0·H^-1 + L)·H^-1.
        byte[] j0 = Convert.FromHexString("0102030405060708090a0b0c00000000");
        BinaryPrimitives.WriteUInt32BigEndian(j0.AsSpan(12), initialCounter);
        Gf128 lengthBlock = new(0, 128);
        Gf128 inverse = h.Inverse();
        byte[] nonce = new byte[16];
        ((Gf128.Read(j0) * inverse + lengthBlock) * inverse).Write(nonce);

        // Three eight-block groups and a partial block: the wrap lands inside a group.
        byte[] plaintext = new byte[3 * 128 + 5];
        new Random(7).NextBytes(plaintext);
        byte[] ciphertext = new byte[plaintext.Length];
        byte[] tag = new byte[16];
        using var cipher = new Aes256Gcm(key, forceFallback);
        cipher.Encrypt(nonce, plaintext, ciphertext, tag);

        byte[] counterBlock = (byte[])j0.Clone();
        for (int block = 0; block * 16 < plaintext.Length; block++)
        {
            uint counter = unchecked(initialCounter + 1 + (uint)block);
            BinaryPrimitives.WriteUInt32BigEndian(counterBlock.AsSpan(12), counter);
            byte[] keystream = blockCipher.EncryptEcb(counterBlock, PaddingMode.None);
            for (int i = block * 16; i < Math.Min(plaintext.Length, (block + 1) * 16); i++)
            {
                Assert.True(
                    (byte)(plaintext[i] ^ keystream[i - (block * 16)]) == ciphertext[i],
                    $"J0 counter {initialCounter:x8}: byte {i} (counter {counter:x8}) is not plaintext ^ E(K, counter block)");
            }
        }

        // The tag is E(K, J0) + GHASH; J0 itself must be the one solved for.
        byte[] tagMask = blockCipher.EncryptEcb(j0, PaddingMode.None);
        Gf128 s = Gf128.Zero;
        for (int offset = 0; offset < 384; offset += 16)
        {
            s = (s + Gf128.Read(ciphertext.AsSpan(offset, 16))) * h;
        }

        byte[] last = new byte[16];
        ciphertext.AsSpan(384).CopyTo(last);
        s = (s + Gf128.Read(last)) * h;
        s = (s + new Gf128(0, (ulong)plaintext.Length * 8)) * h;
        byte[] expectedTag = new byte[16];
        s.Write(expectedTag);
        for (int i = 0; i < 16; i++)
        {
            expectedTag[i] ^= tagMask[i];
        }

        Assert.Equal(Convert.ToHexString(expectedTag), Convert.ToHexString(tag));

        byte[] decrypted = new byte[plaintext.Length];
        cipher.Decrypt(nonce, ciphertext, tag, decrypted);
        Assert.Equal(plaintext, decrypted);
    }

    /// <summary>An element of GF(2^128) in GCM's bit order: the first bit of the block is x^0.</summary>
    private readonly record struct Gf128(ulong High, ulong Low)
    {
        public static Gf128 Zero => default;

        private static Gf128 One => new(1UL << 63, 0);

        public static Gf128 Read(ReadOnlySpan<byte> block) =>
            new(BinaryPrimitives.ReadUInt64BigEndian(block), BinaryPrimitives.ReadUInt64BigEndian(block[8..16]));

        public void Write(Span<byte> block)
        {
            BinaryPrimitives.WriteUInt64BigEndian(block, High);
            BinaryPrimitives.WriteUInt64BigEndian(block[8..], Low);
        }

        public static Gf128 operator +(Gf128 a, Gf128 b) => new(a.High ^ b.High, a.Low ^ b.Low);

        // Shift-and-add, reducing by x^128 = x^7 + x^2 + x + 1 as each bit moves up a degree.
        public static Gf128 operator *(Gf128 a, Gf128 b)
        {
            Gf128 product = Zero;
            Gf128 v = b;
            for (int i = 0; i < 128; i++)
            {
                bool set = i < 64 ? ((a.High >> (63 - i)) & 1) != 0 : ((a.Low >> (127 - i)) & 1) != 0;
                if (set)
                {
                    product += v;
                }

                bool overflow = (v.Low & 1) != 0;
                v = new Gf128(v.High >> 1, (v.Low >> 1) | (v.High << 63));
                if (overflow)
                {
                    v = new Gf128(v.High ^ 0xE100000000000000UL, v.Low);
                }
            }

            return product;
        }

        // a^(2^128 - 2) = a^-1: the multiplicative group has order 2^128 - 1.
        public Gf128 Inverse()
        {
            Gf128 result = One;
            for (int bit = 127; bit >= 0; bit--)
            {
                result *= result;
                if (bit != 0)
                {
                    result *= this;
                }
            }

            return result;
        }
    }
}
