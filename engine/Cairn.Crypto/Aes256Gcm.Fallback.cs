using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Cairn.Crypto;

// The path for machines without AES-NI or PCLMULQDQ. 96-bit nonces go to the platform AesGcm. It
// refuses other nonce lengths (OpenSSL builds accept only 12 bytes), so those run GCM here on the
// platform's AES block cipher with a bit-serial GHASH: SP 800-38D Algorithm 1, slow and rare.
public sealed partial class Aes256Gcm
{
    // Layout of _keyMaterial on the fallback path: the raw key (AesGcm instances are made on first
    // use of each tag size), then H = E(K, 0^128) in GCM byte order.
    private const int FallbackKeyOffset = 0;
    private const int FallbackHashKeyOffset = FallbackKeyOffset + KeySizeInBytes;
    private const int FallbackKeyMaterialSize = FallbackHashKeyOffset + BlockSize;

    // Index: tag size - 12. AesGcm binds the tag size at construction; ours takes it per call.
    private AesGcm?[]? _platformCiphers;

    // ECB, for nonces that are not 96 bits.
    private System.Security.Cryptography.Aes? _blockCipher;

    // Guards _platformCiphers and every call into them and _blockCipher: AesGcm keeps one native
    // context per instance and is not safe for concurrent calls; this class is.
    private readonly Lock _fallbackLock = new();

    private void InitializeFallback(ReadOnlySpan<byte> key)
    {
        key.CopyTo(_keyMaterial.AsSpan(FallbackKeyOffset, KeySizeInBytes));
        _platformCiphers = new AesGcm?[TagSizeInBytes - MinTagSizeInBytes + 1];

        _blockCipher = System.Security.Cryptography.Aes.Create();
        _blockCipher.SetKey(key);
        _blockCipher.EncryptEcb(
            stackalloc byte[BlockSize], _keyMaterial.AsSpan(FallbackHashKeyOffset, BlockSize), PaddingMode.None);
    }

    private void DisposeFallback()
    {
        using Lock.Scope scope = _fallbackLock.EnterScope();
        if (_platformCiphers is not null)
        {
            foreach (AesGcm? cipher in _platformCiphers)
            {
                cipher?.Dispose();
            }

            Array.Clear(_platformCiphers);
        }

        _blockCipher?.Dispose();
    }

    private AesGcm PlatformCipher(int tagSize)
    {
        ref AesGcm? cipher = ref _platformCiphers![tagSize - MinTagSizeInBytes];
        return cipher ??= new AesGcm(_keyMaterial.AsSpan(FallbackKeyOffset, KeySizeInBytes), tagSize);
    }

    private void EncryptFallback(
        ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag,
        ReadOnlySpan<byte> associatedData)
    {
        lock (_fallbackLock)
        {
            EncryptFallbackLocked(nonce, plaintext, ciphertext, tag, associatedData);
        }
    }

    private bool DecryptFallback(
        ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext,
        ReadOnlySpan<byte> associatedData)
    {
        lock (_fallbackLock)
        {
            return DecryptFallbackLocked(nonce, ciphertext, tag, plaintext, associatedData);
        }
    }

    private void EncryptFallbackLocked(
        ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, Span<byte> ciphertext, Span<byte> tag,
        ReadOnlySpan<byte> associatedData)
    {
        if (nonce.Length == NonceSizeInBytes)
        {
            PlatformCipher(tag.Length).Encrypt(nonce, plaintext, ciphertext, tag, associatedData);
            return;
        }

        Span<byte> j0 = stackalloc byte[BlockSize];
        Span<byte> tagMask = stackalloc byte[BlockSize];
        InitialCounterPortable(nonce, j0);
        _blockCipher!.EncryptEcb(j0, tagMask, PaddingMode.None);

        var ghash = new PortableGhash(_keyMaterial.AsSpan(FallbackHashKeyOffset, BlockSize));
        ghash.AbsorbPadded(associatedData);
        CounterModePortable(j0, plaintext, ciphertext);
        ghash.AbsorbPadded(ciphertext);
        ghash.AbsorbLengths(associatedData.Length, ciphertext.Length);

        Span<byte> full = stackalloc byte[BlockSize];
        ghash.WriteHash(full);
        for (int i = 0; i < tag.Length; i++)
        {
            tag[i] = (byte)(full[i] ^ tagMask[i]);
        }
    }

    private bool DecryptFallbackLocked(
        ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag, Span<byte> plaintext,
        ReadOnlySpan<byte> associatedData)
    {
        // The tag may share memory with the plaintext being written; read it first.
        Span<byte> expected = stackalloc byte[TagSizeInBytes];
        tag.CopyTo(expected);
        expected = expected[..tag.Length];

        if (nonce.Length == NonceSizeInBytes)
        {
            // AesGcm wipes the plaintext and throws on a bad tag itself.
            PlatformCipher(tag.Length).Decrypt(nonce, ciphertext, expected, plaintext, associatedData);
            return true;
        }

        Span<byte> j0 = stackalloc byte[BlockSize];
        Span<byte> tagMask = stackalloc byte[BlockSize];
        InitialCounterPortable(nonce, j0);
        _blockCipher!.EncryptEcb(j0, tagMask, PaddingMode.None);

        // Hash the ciphertext before counter mode overwrites it in place.
        var ghash = new PortableGhash(_keyMaterial.AsSpan(FallbackHashKeyOffset, BlockSize));
        ghash.AbsorbPadded(associatedData);
        ghash.AbsorbPadded(ciphertext);
        ghash.AbsorbLengths(associatedData.Length, ciphertext.Length);

        Span<byte> computed = stackalloc byte[BlockSize];
        ghash.WriteHash(computed);
        for (int i = 0; i < BlockSize; i++)
        {
            computed[i] ^= tagMask[i];
        }

        // Unlike the one-pass intrinsic path, nothing unauthenticated is written here.
        bool authentic = CryptographicOperations.FixedTimeEquals(computed[..tag.Length], expected);
        if (authentic)
        {
            CounterModePortable(j0, ciphertext, plaintext);
        }

        return authentic;
    }

    private void InitialCounterPortable(ReadOnlySpan<byte> nonce, Span<byte> j0)
    {
        var ghash = new PortableGhash(_keyMaterial.AsSpan(FallbackHashKeyOffset, BlockSize));
        ghash.AbsorbPadded(nonce);
        ghash.AbsorbLengths(0, nonce.Length);
        ghash.WriteHash(j0);
    }

    /// <summary>GCTR from inc32(J0) (SP 800-38D §6.5), a batch of counter blocks per ECB call.</summary>
    private void CounterModePortable(ReadOnlySpan<byte> j0, ReadOnlySpan<byte> source, Span<byte> destination)
    {
        const int batchBlocks = 16;
        Span<byte> counters = stackalloc byte[batchBlocks * BlockSize];
        Span<byte> keystream = stackalloc byte[batchBlocks * BlockSize];
        uint counter = BinaryPrimitives.ReadUInt32BigEndian(j0[12..]);

        for (int offset = 0; offset < source.Length; offset += batchBlocks * BlockSize)
        {
            int count = Math.Min(batchBlocks * BlockSize, source.Length - offset);
            int blocks = (count + BlockSize - 1) / BlockSize;
            for (int b = 0; b < blocks; b++)
            {
                Span<byte> block = counters.Slice(b * BlockSize, BlockSize);
                j0[..12].CopyTo(block);
                BinaryPrimitives.WriteUInt32BigEndian(block[12..], unchecked(++counter));
            }

            _blockCipher!.EncryptEcb(counters[..(blocks * BlockSize)], keystream, PaddingMode.None);
            for (int i = 0; i < count; i++)
            {
                destination[offset + i] = (byte)(source[offset + i] ^ keystream[i]);
            }
        }

        CryptographicOperations.ZeroMemory(keystream);
    }

    /// <summary>GHASH one bit at a time, as SP 800-38D §6.3 Algorithm 1 writes it; no tables, no secret branches.</summary>
    private struct PortableGhash
    {
        private const ulong R = 0xE100000000000000UL;

        // Each 128-bit value as two big-endian halves: the leftmost bit of the block is high's top bit.
        private readonly ulong _hashKeyHigh;
        private readonly ulong _hashKeyLow;
        private ulong _high;
        private ulong _low;

        public PortableGhash(ReadOnlySpan<byte> hashKey)
        {
            _hashKeyHigh = BinaryPrimitives.ReadUInt64BigEndian(hashKey);
            _hashKeyLow = BinaryPrimitives.ReadUInt64BigEndian(hashKey[8..]);
        }

        public void AbsorbPadded(ReadOnlySpan<byte> data)
        {
            Span<byte> last = stackalloc byte[BlockSize];
            for (; data.Length >= BlockSize; data = data[BlockSize..])
            {
                Absorb(BinaryPrimitives.ReadUInt64BigEndian(data), BinaryPrimitives.ReadUInt64BigEndian(data[8..]));
            }

            if (!data.IsEmpty)
            {
                data.CopyTo(last);
                Absorb(BinaryPrimitives.ReadUInt64BigEndian(last), BinaryPrimitives.ReadUInt64BigEndian(last[8..]));
            }
        }

        public void AbsorbLengths(int firstLength, int secondLength) =>
            Absorb((ulong)firstLength * 8, (ulong)secondLength * 8);

        public readonly void WriteHash(Span<byte> destination)
        {
            BinaryPrimitives.WriteUInt64BigEndian(destination, _high);
            BinaryPrimitives.WriteUInt64BigEndian(destination[8..], _low);
        }

        // Y = (Y xor X) · H
        private void Absorb(ulong blockHigh, ulong blockLow)
        {
            ulong xHigh = _high ^ blockHigh, xLow = _low ^ blockLow;
            ulong zHigh = 0, zLow = 0;
            ulong vHigh = _hashKeyHigh, vLow = _hashKeyLow;
            for (int i = 0; i < 128; i++)
            {
                ulong bit = i < 64 ? (xHigh >> (63 - i)) & 1 : (xLow >> (127 - i)) & 1;
                ulong take = 0UL - bit;
                zHigh ^= vHigh & take;
                zLow ^= vLow & take;

                ulong carry = 0UL - (vLow & 1);
                vLow = (vLow >> 1) | (vHigh << 63);
                vHigh = (vHigh >> 1) ^ (R & carry);
            }

            _high = zHigh;
            _low = zLow;
        }
    }
}
