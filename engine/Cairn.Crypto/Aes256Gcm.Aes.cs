using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Cairn.Crypto;

// The AES-256 block cipher on AES-NI: key expansion (FIPS 197 §5.2) and counter-block encryption.
public sealed partial class Aes256Gcm
{
    private const int Rounds = 14;
    private const int BlockSize = 16;

    // Layout of _keyMaterial on the intrinsic path.
    private const int RoundKeysOffset = 0;                                          // 15 round keys
    private const int HashKeyPowersOffset = RoundKeysOffset + (Rounds + 1) * BlockSize; // H^8 .. H^1
    private const int IntrinsicKeyMaterialSize = HashKeyPowersOffset + GroupBlocks * BlockSize;

    private const int GroupBlocks = 8;
    private const int GroupSize = GroupBlocks * BlockSize;

    /// <summary>Reverses the last four bytes: turns the native counter lane into the big-endian one GCM uses.</summary>
    private static Vector128<byte> CounterByteOrder
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector128.Create((byte)0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 15, 14, 13, 12);
    }

    /// <summary>
    /// Expands the key into the 15 round keys, then derives H = E(K, 0^128) and its powers.
    /// </summary>
    private void ExpandKey(ReadOnlySpan<byte> key)
    {
        ref byte rk = ref MemoryMarshal.GetArrayDataReference(_keyMaterial);

        // Words w[8i..8i+7] come from w[8i-8..8i-1]: an even round key from the one two back and
        // RotWord/SubWord/Rcon of the last word of the previous key; an odd one with SubWord only.
        Vector128<byte> even = Vector128.Create(key[..BlockSize]);
        Vector128<byte> odd = Vector128.Create(key[BlockSize..]);
        even.StoreUnsafe(ref rk, 0 * BlockSize);
        odd.StoreUnsafe(ref rk, 1 * BlockSize);

        even = NextEvenRoundKey(even, X86Aes.KeygenAssist(odd, 0x01));
        odd = NextOddRoundKey(odd, even);
        even.StoreUnsafe(ref rk, 2 * BlockSize);
        odd.StoreUnsafe(ref rk, 3 * BlockSize);

        even = NextEvenRoundKey(even, X86Aes.KeygenAssist(odd, 0x02));
        odd = NextOddRoundKey(odd, even);
        even.StoreUnsafe(ref rk, 4 * BlockSize);
        odd.StoreUnsafe(ref rk, 5 * BlockSize);

        even = NextEvenRoundKey(even, X86Aes.KeygenAssist(odd, 0x04));
        odd = NextOddRoundKey(odd, even);
        even.StoreUnsafe(ref rk, 6 * BlockSize);
        odd.StoreUnsafe(ref rk, 7 * BlockSize);

        even = NextEvenRoundKey(even, X86Aes.KeygenAssist(odd, 0x08));
        odd = NextOddRoundKey(odd, even);
        even.StoreUnsafe(ref rk, 8 * BlockSize);
        odd.StoreUnsafe(ref rk, 9 * BlockSize);

        even = NextEvenRoundKey(even, X86Aes.KeygenAssist(odd, 0x10));
        odd = NextOddRoundKey(odd, even);
        even.StoreUnsafe(ref rk, 10 * BlockSize);
        odd.StoreUnsafe(ref rk, 11 * BlockSize);

        even = NextEvenRoundKey(even, X86Aes.KeygenAssist(odd, 0x20));
        odd = NextOddRoundKey(odd, even);
        even.StoreUnsafe(ref rk, 12 * BlockSize);
        odd.StoreUnsafe(ref rk, 13 * BlockSize);

        even = NextEvenRoundKey(even, X86Aes.KeygenAssist(odd, 0x40));
        even.StoreUnsafe(ref rk, 14 * BlockSize);

        InitializeHashKey(EncryptBlock(ref rk, Vector128<byte>.Zero));
    }

    // assist holds RotWord(SubWord(w)) ^ Rcon of the previous key's last word in its top lane.
    private static Vector128<byte> NextEvenRoundKey(Vector128<byte> twoBack, Vector128<byte> assist) =>
        PrefixXor(twoBack) ^ Sse2.Shuffle(assist.AsUInt32(), 0xFF).AsByte();

    // KeygenAssist(.., 0) holds SubWord of the new even key's last word in lane 2.
    private static Vector128<byte> NextOddRoundKey(Vector128<byte> twoBack, Vector128<byte> newEven) =>
        PrefixXor(twoBack) ^ Sse2.Shuffle(X86Aes.KeygenAssist(newEven, 0x00).AsUInt32(), 0xAA).AsByte();

    // Lane i becomes the XOR of lanes 0..i: the chain w[i] = w[i-8] ^ w[i-1] within one round key.
    private static Vector128<byte> PrefixXor(Vector128<byte> v)
    {
        v ^= Sse2.ShiftLeftLogical128BitLane(v, 4);
        v ^= Sse2.ShiftLeftLogical128BitLane(v, 8);
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<byte> EncryptBlock(ref byte roundKeys, Vector128<byte> block)
    {
        block ^= Vector128.LoadUnsafe(ref roundKeys, RoundKeysOffset);
        for (nuint round = 1; round < Rounds; round++)
        {
            block = X86Aes.Encrypt(block, Vector128.LoadUnsafe(ref roundKeys, RoundKeysOffset + round * BlockSize));
        }

        return X86Aes.EncryptLast(block, Vector128.LoadUnsafe(ref roundKeys, RoundKeysOffset + Rounds * BlockSize));
    }

    /// <summary>
    /// Encrypts the eight counter blocks <paramref name="counter"/> .. +7 (native counter lane),
    /// the rounds interleaved so all eight are in flight.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Keystream8(
        ref byte roundKeys, Vector128<uint> counter,
        out Vector128<byte> b0, out Vector128<byte> b1, out Vector128<byte> b2, out Vector128<byte> b3,
        out Vector128<byte> b4, out Vector128<byte> b5, out Vector128<byte> b6, out Vector128<byte> b7)
    {
        // One increment constant, chained: the JIT keeps few registers live, so the eight states
        // get xmm0-15 (VEX-encoded AESENC cannot reach xmm16-31; states there cost a move per round).
        Vector128<byte> order = CounterByteOrder;
        Vector128<uint> one = Vector128.Create(0u, 0, 0, 1);
        Vector128<byte> key = Vector128.LoadUnsafe(ref roundKeys, RoundKeysOffset);
        b0 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;
        counter += one;
        b1 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;
        counter += one;
        b2 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;
        counter += one;
        b3 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;
        counter += one;
        b4 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;
        counter += one;
        b5 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;
        counter += one;
        b6 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;
        counter += one;
        b7 = Ssse3.Shuffle(counter.AsByte(), order) ^ key;

        for (nuint round = 1; round < Rounds; round++)
        {
            key = Vector128.LoadUnsafe(ref roundKeys, RoundKeysOffset + round * BlockSize);
            b0 = X86Aes.Encrypt(b0, key);
            b1 = X86Aes.Encrypt(b1, key);
            b2 = X86Aes.Encrypt(b2, key);
            b3 = X86Aes.Encrypt(b3, key);
            b4 = X86Aes.Encrypt(b4, key);
            b5 = X86Aes.Encrypt(b5, key);
            b6 = X86Aes.Encrypt(b6, key);
            b7 = X86Aes.Encrypt(b7, key);
        }

        key = Vector128.LoadUnsafe(ref roundKeys, RoundKeysOffset + Rounds * BlockSize);
        b0 = X86Aes.EncryptLast(b0, key);
        b1 = X86Aes.EncryptLast(b1, key);
        b2 = X86Aes.EncryptLast(b2, key);
        b3 = X86Aes.EncryptLast(b3, key);
        b4 = X86Aes.EncryptLast(b4, key);
        b5 = X86Aes.EncryptLast(b5, key);
        b6 = X86Aes.EncryptLast(b6, key);
        b7 = X86Aes.EncryptLast(b7, key);
    }
}
