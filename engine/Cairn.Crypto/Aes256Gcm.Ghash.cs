using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace Cairn.Crypto;

// GHASH (SP 800-38D §6.4) on PCLMULQDQ.
//
// Field elements are held byte-reversed, as 128-bit integers whose bit i is the coefficient of
// x^(127-i) (GCM's bit order reflected). A carry-less product of two such values, read as 256 bits,
// is then x·A·B, and reducing it modulo g(x) = x^128 + x^7 + x^2 + x + 1 in the reflected domain is
// a Montgomery step by y^128 over the reversed polynomial 1 + y^121 + y^126 + y^127 + y^128: two
// 64-bit folds by 0xC2000000_00000000 (y^57 + y^62 + y^63). To cancel the extra factor x, the powers
// of H are stored premultiplied by x^-1, so reduce(clmul(X, H^i·x^-1)) = X·H^i.
//
// Eight blocks are absorbed per reduction: Y' = (Y + C1)·H^8 + C2·H^7 + ... + C8·H^1, the 256-bit
// products summed unreduced (schoolbook: low, middle and high 128-bit parts).
public sealed partial class Aes256Gcm
{
    private static Vector128<byte> ByteReverse
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get => Vector128.Create((byte)15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0);
    }

    /// <summary>Stores H^8 .. H^1 (each times x^-1, reflected) after the round keys.</summary>
    private void InitializeHashKey(Vector128<byte> hashKey)
    {
        ref byte powers = ref Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(_keyMaterial), HashKeyPowersOffset);

        // H·x^-1: shift the reflected value up by one; if the x^0 coefficient (bit 127) falls
        // off, add g(x)/x, which reflected is bits 0, 121, 126 and 127.
        Vector128<ulong> h = Ssse3.Shuffle(hashKey, ByteReverse).AsUInt64();
        ulong low = h.GetElement(0);
        ulong high = h.GetElement(1);
        ulong fold = 0UL - (high >> 63);
        high = (high << 1) | (low >> 63);
        low <<= 1;
        Vector128<ulong> h1 = Vector128.Create(low ^ (fold & 1), high ^ (fold & 0xC200000000000000UL));

        Vector128<ulong> power = h1;
        power.AsByte().StoreUnsafe(ref powers, (GroupBlocks - 1) * BlockSize);
        for (nuint i = 2; i <= GroupBlocks; i++)
        {
            power = Multiply(power, h1);
            power.AsByte().StoreUnsafe(ref powers, (GroupBlocks - i) * BlockSize);
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> LoadReflected(ref byte source, nuint offset) =>
        Ssse3.Shuffle(Vector128.LoadUnsafe(ref source, offset), ByteReverse).AsUInt64();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> LoadPower(ref byte powers, nuint index) =>
        Vector128.LoadUnsafe(ref powers, index * BlockSize).AsUInt64();

    /// <summary>Adds the unreduced product X·H into the low, middle and high accumulators.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void MultiplyAdd(
        Vector128<ulong> x, Vector128<ulong> h,
        ref Vector128<ulong> low, ref Vector128<ulong> middle, ref Vector128<ulong> high)
    {
        low ^= Pclmulqdq.CarrylessMultiply(x, h, 0x00);
        high ^= Pclmulqdq.CarrylessMultiply(x, h, 0x11);
        middle ^= Pclmulqdq.CarrylessMultiply(x, h, 0x01) ^ Pclmulqdq.CarrylessMultiply(x, h, 0x10);
    }

    /// <summary>Reduces the 256-bit sum (low + middle·2^64 + high·2^128) to a field element.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Reduce(Vector128<ulong> low, Vector128<ulong> middle, Vector128<ulong> high)
    {
        low ^= Sse2.ShiftLeftLogical128BitLane(middle, 8);
        high ^= Sse2.ShiftRightLogical128BitLane(middle, 8);

        // Two Montgomery folds of 64 bits each: clear the low quadword by adding a multiple of
        // the reversed polynomial, then move up by 64 bits.
        Vector128<ulong> polynomial = Vector128.Create(0xC200000000000000UL);
        low = Sse2.Shuffle(low.AsUInt32(), 0x4E).AsUInt64() ^ Pclmulqdq.CarrylessMultiply(low, polynomial, 0x00);
        low = Sse2.Shuffle(low.AsUInt32(), 0x4E).AsUInt64() ^ Pclmulqdq.CarrylessMultiply(low, polynomial, 0x00);
        return high ^ low;
    }

    private static Vector128<ulong> Multiply(Vector128<ulong> x, Vector128<ulong> h)
    {
        Vector128<ulong> low = default, middle = default, high = default;
        MultiplyAdd(x, h, ref low, ref middle, ref high);
        return Reduce(low, middle, high);
    }

    /// <summary>Absorbs one group of eight blocks from memory with one reduction.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Ghash8(Vector128<ulong> y, ref byte blocks, ref byte powers)
    {
        if (Pclmulqdq.V512.IsSupported && Avx512BW.IsSupported)
        {
            return Ghash8x512(
                y, Vector512.LoadUnsafe(ref blocks, 0 * BlockSize), Vector512.LoadUnsafe(ref blocks, 4 * BlockSize), ref powers);
        }

        if (Pclmulqdq.V256.IsSupported && Avx2.IsSupported)
        {
            return Ghash8x256(
                y,
                Vector256.LoadUnsafe(ref blocks, 0 * BlockSize), Vector256.LoadUnsafe(ref blocks, 2 * BlockSize),
                Vector256.LoadUnsafe(ref blocks, 4 * BlockSize), Vector256.LoadUnsafe(ref blocks, 6 * BlockSize),
                ref powers);
        }

        return Ghash8x128(
            y,
            Vector128.LoadUnsafe(ref blocks, 0 * BlockSize), Vector128.LoadUnsafe(ref blocks, 1 * BlockSize),
            Vector128.LoadUnsafe(ref blocks, 2 * BlockSize), Vector128.LoadUnsafe(ref blocks, 3 * BlockSize),
            Vector128.LoadUnsafe(ref blocks, 4 * BlockSize), Vector128.LoadUnsafe(ref blocks, 5 * BlockSize),
            Vector128.LoadUnsafe(ref blocks, 6 * BlockSize), Vector128.LoadUnsafe(ref blocks, 7 * BlockSize),
            ref powers);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Ghash8x128(
        Vector128<ulong> y,
        Vector128<byte> c0, Vector128<byte> c1, Vector128<byte> c2, Vector128<byte> c3,
        Vector128<byte> c4, Vector128<byte> c5, Vector128<byte> c6, Vector128<byte> c7,
        ref byte powers)
    {
        Vector128<ulong> low = default, middle = default, high = default;
        MultiplyAdd(Reflect(c0) ^ y, LoadPower(ref powers, 0), ref low, ref middle, ref high);
        MultiplyAdd(Reflect(c1), LoadPower(ref powers, 1), ref low, ref middle, ref high);
        MultiplyAdd(Reflect(c2), LoadPower(ref powers, 2), ref low, ref middle, ref high);
        MultiplyAdd(Reflect(c3), LoadPower(ref powers, 3), ref low, ref middle, ref high);
        MultiplyAdd(Reflect(c4), LoadPower(ref powers, 4), ref low, ref middle, ref high);
        MultiplyAdd(Reflect(c5), LoadPower(ref powers, 5), ref low, ref middle, ref high);
        MultiplyAdd(Reflect(c6), LoadPower(ref powers, 6), ref low, ref middle, ref high);
        MultiplyAdd(Reflect(c7), LoadPower(ref powers, 7), ref low, ref middle, ref high);
        return Reduce(low, middle, high);
    }

    /// <summary>Eight blocks as four pairs, two blocks per VPCLMULQDQ; H^8..H^1 pair up the same way in memory.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Ghash8x256(
        Vector128<ulong> y, Vector256<byte> c01, Vector256<byte> c23, Vector256<byte> c45, Vector256<byte> c67, ref byte powers)
    {
        Vector256<byte> reverse = Vector256.Create(ByteReverse, ByteReverse);
        Vector256<ulong> x01 = Avx2.Shuffle(c01, reverse).AsUInt64() ^ y.ToVector256();
        Vector256<ulong> x23 = Avx2.Shuffle(c23, reverse).AsUInt64();
        Vector256<ulong> x45 = Avx2.Shuffle(c45, reverse).AsUInt64();
        Vector256<ulong> x67 = Avx2.Shuffle(c67, reverse).AsUInt64();
        Vector256<ulong> h01 = Vector256.LoadUnsafe(ref powers, 0 * BlockSize).AsUInt64();
        Vector256<ulong> h23 = Vector256.LoadUnsafe(ref powers, 2 * BlockSize).AsUInt64();
        Vector256<ulong> h45 = Vector256.LoadUnsafe(ref powers, 4 * BlockSize).AsUInt64();
        Vector256<ulong> h67 = Vector256.LoadUnsafe(ref powers, 6 * BlockSize).AsUInt64();

        Vector256<ulong> low =
            Pclmulqdq.V256.CarrylessMultiply(x01, h01, 0x00) ^ Pclmulqdq.V256.CarrylessMultiply(x23, h23, 0x00) ^
            Pclmulqdq.V256.CarrylessMultiply(x45, h45, 0x00) ^ Pclmulqdq.V256.CarrylessMultiply(x67, h67, 0x00);
        Vector256<ulong> high =
            Pclmulqdq.V256.CarrylessMultiply(x01, h01, 0x11) ^ Pclmulqdq.V256.CarrylessMultiply(x23, h23, 0x11) ^
            Pclmulqdq.V256.CarrylessMultiply(x45, h45, 0x11) ^ Pclmulqdq.V256.CarrylessMultiply(x67, h67, 0x11);
        Vector256<ulong> middle =
            Pclmulqdq.V256.CarrylessMultiply(x01, h01, 0x01) ^ Pclmulqdq.V256.CarrylessMultiply(x23, h23, 0x01) ^
            Pclmulqdq.V256.CarrylessMultiply(x45, h45, 0x01) ^ Pclmulqdq.V256.CarrylessMultiply(x67, h67, 0x01) ^
            Pclmulqdq.V256.CarrylessMultiply(x01, h01, 0x10) ^ Pclmulqdq.V256.CarrylessMultiply(x23, h23, 0x10) ^
            Pclmulqdq.V256.CarrylessMultiply(x45, h45, 0x10) ^ Pclmulqdq.V256.CarrylessMultiply(x67, h67, 0x10);

        return Reduce(
            low.GetLower() ^ low.GetUpper(),
            middle.GetLower() ^ middle.GetUpper(),
            high.GetLower() ^ high.GetUpper());
    }

    /// <summary>
    /// Eight blocks as two quads, four blocks per VPCLMULQDQ: on this family a 512-bit carry-less
    /// multiply costs about what a 128-bit one does, so the widest form wins.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Ghash8x512(Vector128<ulong> y, Vector512<byte> c0123, Vector512<byte> c4567, ref byte powers)
    {
        Vector512<byte> reverse = Vector512.Create(
            0x08090A0B0C0D0E0FUL, 0x0001020304050607UL, 0x08090A0B0C0D0E0FUL, 0x0001020304050607UL,
            0x08090A0B0C0D0E0FUL, 0x0001020304050607UL, 0x08090A0B0C0D0E0FUL, 0x0001020304050607UL).AsByte();
        Vector512<ulong> x0 = Avx512BW.Shuffle(c0123, reverse).AsUInt64() ^ y.ToVector256().ToVector512();
        Vector512<ulong> x1 = Avx512BW.Shuffle(c4567, reverse).AsUInt64();
        Vector512<ulong> h0 = Vector512.LoadUnsafe(ref powers, 0 * BlockSize).AsUInt64();
        Vector512<ulong> h1 = Vector512.LoadUnsafe(ref powers, 4 * BlockSize).AsUInt64();

        Vector512<ulong> low = Pclmulqdq.V512.CarrylessMultiply(x0, h0, 0x00) ^ Pclmulqdq.V512.CarrylessMultiply(x1, h1, 0x00);
        Vector512<ulong> high = Pclmulqdq.V512.CarrylessMultiply(x0, h0, 0x11) ^ Pclmulqdq.V512.CarrylessMultiply(x1, h1, 0x11);
        Vector512<ulong> middle =
            Pclmulqdq.V512.CarrylessMultiply(x0, h0, 0x01) ^ Pclmulqdq.V512.CarrylessMultiply(x1, h1, 0x01) ^
            Pclmulqdq.V512.CarrylessMultiply(x0, h0, 0x10) ^ Pclmulqdq.V512.CarrylessMultiply(x1, h1, 0x10);

        // The four lanes hold independent partial sums; fold them before the one reduction.
        Vector256<ulong> low256 = low.GetLower() ^ low.GetUpper();
        Vector256<ulong> middle256 = middle.GetLower() ^ middle.GetUpper();
        Vector256<ulong> high256 = high.GetLower() ^ high.GetUpper();
        return Reduce(
            low256.GetLower() ^ low256.GetUpper(),
            middle256.GetLower() ^ middle256.GetUpper(),
            high256.GetLower() ^ high256.GetUpper());
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector128<ulong> Reflect(Vector128<byte> block) => Ssse3.Shuffle(block, ByteReverse).AsUInt64();

    /// <summary>Absorbs <paramref name="count"/> whole blocks, eight per reduction and the rest in one more.</summary>
    private static Vector128<ulong> Ghash(Vector128<ulong> y, ref byte blocks, nuint count, ref byte powers)
    {
        for (; count >= GroupBlocks; count -= GroupBlocks)
        {
            y = Ghash8(y, ref blocks, ref powers);
            blocks = ref Unsafe.Add(ref blocks, GroupSize);
        }

        if (count == 0)
        {
            return y;
        }

        // The last `count` blocks take H^count .. H^1, the tail of the stored powers.
        ref byte tailPowers = ref Unsafe.Add(ref powers, (GroupBlocks - count) * BlockSize);
        Vector128<ulong> low = default, middle = default, high = default;
        MultiplyAdd(LoadReflected(ref blocks, 0) ^ y, LoadPower(ref tailPowers, 0), ref low, ref middle, ref high);
        for (nuint i = 1; i < count; i++)
        {
            MultiplyAdd(LoadReflected(ref blocks, i * BlockSize), LoadPower(ref tailPowers, i), ref low, ref middle, ref high);
        }

        return Reduce(low, middle, high);
    }

    /// <summary>Absorbs <paramref name="data"/> zero-padded to whole blocks (how GCM hashes A, C and a long IV).</summary>
    private static Vector128<ulong> GhashPadded(Vector128<ulong> y, ReadOnlySpan<byte> data, ref byte powers)
    {
        nuint whole = (nuint)data.Length / BlockSize;
        y = Ghash(y, ref MemoryMarshal.GetReference(data), whole, ref powers);

        int rest = data.Length % BlockSize;
        if (rest != 0)
        {
            Vector128<byte> last = default;
            data[^rest..].CopyTo(MemoryMarshal.AsBytes(new Span<Vector128<byte>>(ref last)));
            y = Ghash(y, ref Unsafe.As<Vector128<byte>, byte>(ref last), 1, ref powers);
        }

        return y;
    }
}
