using System.Buffers.Binary;

namespace Cairn.Fuzz;

/// <summary>
/// A small mutation fuzzer, deterministic from its seed: bit flips, bytes set to interesting values, length-like
/// fields set to huge, negative or zero values, arithmetic, truncation, extension, deletion, insertion, splicing of two
/// inputs and repeated chunks. The same seed gives the same sequence of mutations on any machine (its generator is a
/// SplitMix64, not <see cref="Random"/>'s unspecified algorithm).
/// </summary>
public sealed class Mutator(ulong seed)
{
    private ulong _state = seed;

    /// <summary>Derives the generator of one iteration, so that iteration <paramref name="iteration"/> of run <paramref name="runSeed"/> can be replayed alone.</summary>
    public static Mutator For(ulong runSeed, long iteration) => new(Mix(runSeed ^ Mix((ulong)iteration + 0x632BE59BD9B4E019UL)));

    private static ulong Mix(ulong z)
    {
        z += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The next 64 random bits.</summary>
    public ulong NextU64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>A number in [0, <paramref name="bound"/>); 0 when the bound is not positive.</summary>
    public int Next(int bound) => bound <= 0 ? 0 : (int)(NextU64() % (ulong)bound);

    /// <summary>True with probability 1/<paramref name="n"/>.</summary>
    public bool OneIn(int n) => Next(n) == 0;

    private static readonly byte[] Interesting8 = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x10, 0x20, 0x40];

    private static readonly uint[] Interesting32 =
    [
        0, 1, 2, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFF, 0x8000, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFE, 0xFFFFFFF0,
        0x7FFFFFF0, 0x40000000, 0x01000000, 1 << 20, 4 << 20, 64 << 20,
    ];

    private static readonly ulong[] Interesting64 = [0, 1, ulong.MaxValue, long.MaxValue, 1UL << 63, 0xFFFFFFFF, 1UL << 32, ulong.MaxValue - 1];

    /// <summary>
    /// One to several mutations of <paramref name="input"/> (never changed: the result is a new array), the result kept
    /// within <paramref name="maxLength"/> bytes. <paramref name="other"/> is spliced in by the splice mutation.
    /// </summary>
    public byte[] Mutate(ReadOnlySpan<byte> input, ReadOnlySpan<byte> other, int maxLength)
    {
        var data = new List<byte>(input.Length + 64);
        foreach (var b in input) data.Add(b);
        var rounds = 1;
        while (rounds < 8 && OneIn(2)) rounds++;
        for (var r = 0; r < rounds; r++) MutateOnce(data, other);
        if (data.Count > maxLength) data.RemoveRange(maxLength, data.Count - maxLength);
        return [.. data];
    }

    private void MutateOnce(List<byte> d, ReadOnlySpan<byte> other)
    {
        if (d.Count == 0)
        {
            Insert(d, 0, RandomBytes(1 + Next(32)));
            return;
        }
        switch (Next(16))
        {
            case 0: // flip one bit
            {
                var i = Next(d.Count);
                d[i] ^= (byte)(1 << Next(8));
                break;
            }
            case 1: // a byte set to an interesting value
                d[Next(d.Count)] = Interesting8[Next(Interesting8.Length)];
                break;
            case 2: // a random byte
                d[Next(d.Count)] = (byte)NextU64();
                break;
            case 3: // a u16 field set to an interesting value
                WriteAt(d, Next(d.Count), 2, Interesting32[Next(Interesting32.Length)]);
                break;
            case 4: // a length-like u32 field: huge, negative, zero, the bytes left, one more than that
            {
                var at = Next(d.Count);
                uint value = Next(4) switch
                {
                    0 => Interesting32[Next(Interesting32.Length)],
                    1 => (uint)Math.Max(0, d.Count - at - 4),
                    2 => (uint)Math.Max(0, d.Count - at - 4) + 1 + (uint)Next(8),
                    _ => (uint)-(1 + Next(64)),
                };
                WriteAt(d, at, 4, value);
                break;
            }
            case 5: // a u64 field set to an interesting value
                WriteAt(d, Next(d.Count), 8, Interesting64[Next(Interesting64.Length)]);
                break;
            case 6: // arithmetic on a byte or a u32
            {
                var at = Next(d.Count);
                var delta = 1 + Next(35);
                if (OneIn(2))
                {
                    d[at] = (byte)(d[at] + (OneIn(2) ? delta : -delta));
                }
                else
                {
                    var v = ReadAt(d, at, 4);
                    WriteAt(d, at, 4, OneIn(2) ? v + (uint)delta : v - (uint)delta);
                }
                break;
            }
            case 7: // truncation: keep a prefix (often a short one, where headers end)
            {
                var keep = OneIn(2) ? Next(Math.Min(d.Count, 64)) : Next(d.Count);
                d.RemoveRange(keep, d.Count - keep);
                break;
            }
            case 8: // extension: zeros, random bytes or a copy of the tail
            {
                var n = 1 + Next(OneIn(4) ? 4096 : 64);
                var extra = Next(3) switch
                {
                    0 => new byte[n],
                    1 => RandomBytes(n),
                    _ => d.GetRange(Math.Max(0, d.Count - n), Math.Min(n, d.Count)).ToArray(),
                };
                Insert(d, d.Count, extra);
                break;
            }
            case 9: // delete a chunk
            {
                var at = Next(d.Count);
                d.RemoveRange(at, Math.Min(d.Count - at, 1 + Next(OneIn(4) ? 1024 : 16)));
                break;
            }
            case 10: // insert random bytes
                Insert(d, Next(d.Count + 1), RandomBytes(1 + Next(16)));
                break;
            case 11: // splice: this input's head with the other's tail (or the other way round)
            {
                if (other.IsEmpty) goto case 0;
                var cut = Next(d.Count + 1);
                var from = Next(other.Length + 1);
                if (OneIn(2))
                {
                    d.RemoveRange(cut, d.Count - cut);
                    Insert(d, d.Count, other[from..].ToArray());
                }
                else
                {
                    d.RemoveRange(0, cut);
                    Insert(d, 0, other[..from].ToArray());
                }
                break;
            }
            case 12: // repeat a chunk several times
            {
                var at = Next(d.Count);
                var chunk = d.GetRange(at, Math.Min(d.Count - at, 1 + Next(64))).ToArray();
                var times = 1 + Next(OneIn(4) ? 64 : 4);
                for (var t = 0; t < times; t++) Insert(d, at, chunk);
                break;
            }
            case 13: // copy a chunk over another place
            {
                var from = Next(d.Count);
                var to = Next(d.Count);
                var n = Math.Min(Math.Min(d.Count - from, d.Count - to), 1 + Next(64));
                var chunk = d.GetRange(from, n).ToArray();
                for (var i = 0; i < n; i++) d[to + i] = chunk[i];
                break;
            }
            case 14: // a run of bytes set to one interesting value
            {
                var at = Next(d.Count);
                var n = Math.Min(d.Count - at, 1 + Next(16));
                var v = Interesting8[Next(Interesting8.Length)];
                for (var i = 0; i < n; i++) d[at + i] = v;
                break;
            }
            default: // swap two bytes
            {
                var a = Next(d.Count);
                var b = Next(d.Count);
                (d[a], d[b]) = (d[b], d[a]);
                break;
            }
        }
    }

    /// <summary>Random bytes.</summary>
    public byte[] RandomBytes(int n)
    {
        var b = new byte[n];
        for (var i = 0; i < n; i++) b[i] = (byte)NextU64();
        return b;
    }

    private static void Insert(List<byte> d, int at, byte[] bytes) => d.InsertRange(at, bytes);

    private static void WriteAt(List<byte> d, int at, int size, ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        for (var i = 0; i < size && at + i < d.Count; i++) d[at + i] = b[i];
    }

    private static uint ReadAt(List<byte> d, int at, int size)
    {
        uint v = 0;
        for (var i = 0; i < size && at + i < d.Count; i++) v |= (uint)d[at + i] << (8 * i);
        return v;
    }
}
