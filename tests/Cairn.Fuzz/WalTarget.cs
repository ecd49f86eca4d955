using System.Buffers.Binary;
using System.IO.Hashing;
using Cairn.Crypto;
using Cairn.Raft;

namespace Cairn.Fuzz;

/// <summary>
/// WAL recovery (engine/Cairn.Raft): the input is a directory of segment files, packed as
/// <c>[u8 flags][u32 length of each segment but the last][segments...]</c> (flags: low two bits + 1 = segment count,
/// 0x80 = open with <see cref="WalOptions.TruncateAtDamage"/>, 0x40 = records were re-sealed by the fuzzer). The files are
/// written as <c>0000000000000000.wal</c>, ... and opened with <see cref="Wal.Open"/>. Clean:
/// <see cref="WalCorruptException"/> and <see cref="WalKeyException"/>. When it opens, the log must be a valid
/// prefix: entries contiguous, after the snapshot, and — unless records were re-sealed — each exactly the entry the
/// seed wrote at that index; and opening it again (without TruncateAtDamage) must give the same log.
/// </summary>
public sealed class WalTarget : FuzzTarget
{
    private const int HeaderSize = 128;
    private static readonly byte[] MasterKeyBytes = [.. Enumerable.Range(1, 32).Select(i => (byte)(255 - i))];
    private readonly StaticKeyProvider _key = new(MasterKeyBytes, "fuzz wal key");
    private readonly string _dir = Path.Combine(Path.GetTempPath(), $"cairn-fuzz-wal-{Environment.ProcessId}-{Guid.NewGuid():N}");
    private readonly Lazy<IReadOnlyList<byte[]>> _seeds;
    private long _runs;

    /// <summary>A target whose seeds are plain and encrypted logs of two and three segments.</summary>
    public WalTarget()
    {
        Directory.CreateDirectory(_dir);
        _seeds = new Lazy<IReadOnlyList<byte[]>>(MakeSeeds);
    }

    /// <inheritdoc/>
    public override string Name => "wal";

    /// <inheritdoc/>
    public override IReadOnlyList<byte[]> Seeds => _seeds.Value;

    /// <inheritdoc/>
    public override int MaxInputBytes => 1 << 20;

    /// <inheritdoc/>
    public override string CleanExceptions => "WalCorruptException, WalKeyException";

    /// <inheritdoc/>
    public override bool IsClean(Exception e) => e is WalCorruptException or WalKeyException;

    /// <summary>Each of the two opens reads every segment whole and copies each entry into the log; the harness writes the files: a multiple of the input, plus bookkeeping.</summary>
    public override long AllocationBound(int inputLength) => (4L << 20) + 16L * inputLength;

    /// <summary>The entry every seed writes at <paramref name="index"/>.</summary>
    public static LogEntry Canonical(ulong index)
    {
        var data = new byte[(int)(index * 37 % 300)];
        for (var i = 0; i < data.Length; i++) data[i] = (byte)(index * 131 + (ulong)i);
        return new LogEntry(index, 1 + (index - 1) / 25, data, index % 17 == 0 ? EntryKind.Config : EntryKind.Normal);
    }

    private WalOptions Options(bool truncate, bool encrypted) => new() { SegmentBytes = 64 << 10, MaxRecordBytes = 16 << 10, MasterKey = encrypted ? _key : null, TruncateAtDamage = truncate, Sync = false };

    private List<byte[]> MakeSeeds()
    {
        var seeds = new List<byte[]>();
        foreach (var (encrypted, count, snapshotAt) in new[] { (false, 900UL, 0UL), (true, 420UL, 0UL), (false, 600UL, 130UL) })
        {
            var dir = Path.Combine(_dir, "seed");
            if (Directory.Exists(dir)) Directory.Delete(dir, true);
            using (var wal = Wal.Open(dir, Options(false, encrypted)))
            {
                ulong next = 1;
                var batch = 1;
                while (next <= count)
                {
                    var entries = new List<LogEntry>();
                    for (var i = 0; i < batch && next <= count; i++) entries.Add(Canonical(next++));
                    wal.Save(new HardState(1 + (next - 2) / 25, 0xA1, next > 3 ? next - 3 : 0), entries);
                    if (snapshotAt != 0 && next - 1 >= snapshotAt && wal.Snapshot.Index == 0) wal.SaveSnapshot(snapshotAt, Canonical(snapshotAt).Term);
                    batch = batch % 5 + 1;
                }
            }
            var files = Directory.GetFiles(dir, "*.wal").Order(StringComparer.Ordinal).Select(TrimZeros).ToList();
            if (files.Count is < 2 or > 4) throw new InvalidOperationException($"seed log has {files.Count} segments; expected 2 to 4");
            seeds.Add(Pack(files.Take(3).ToList(), 0));
            Directory.Delete(dir, true);
        }
        return seeds;
    }

    /// <summary>A segment without its preallocated zeros, but with a few left (the end marker).</summary>
    private static byte[] TrimZeros(string file)
    {
        var data = File.ReadAllBytes(file);
        var end = data.AsSpan().LastIndexOfAnyExcept((byte)0) + 1;
        return data[..Math.Min(data.Length, end + 32)];
    }

    /// <summary>Packs segments into one input.</summary>
    public static byte[] Pack(IReadOnlyList<byte[]> segments, byte flags)
    {
        ArgumentNullException.ThrowIfNull(segments);
        using var ms = new MemoryStream();
        ms.WriteByte((byte)((flags & 0xFC) | (segments.Count - 1)));
        Span<byte> len = stackalloc byte[4];
        for (var i = 0; i < segments.Count - 1; i++)
        {
            BinaryPrimitives.WriteInt32LittleEndian(len, segments[i].Length);
            ms.Write(len);
        }
        foreach (var s in segments) ms.Write(s);
        return ms.ToArray();
    }

    /// <summary>Unpacks an input (leniently: lengths are clamped to what is there).</summary>
    public static (List<byte[]> Segments, byte Flags) Unpack(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty) return ([], 0);
        var flags = input[0];
        var count = (flags & 3) + 1;
        var at = 1;
        var lengths = new List<int>();
        for (var i = 0; i < count - 1; i++)
        {
            lengths.Add(at + 4 <= input.Length ? (int)Math.Min(BinaryPrimitives.ReadUInt32LittleEndian(input[at..]), (uint)input.Length) : 0);
            at = Math.Min(at + 4, input.Length);
        }
        var segments = new List<byte[]>();
        foreach (var n in lengths)
        {
            var take = Math.Min(n, input.Length - at);
            segments.Add(input.Slice(at, take).ToArray());
            at += take;
        }
        segments.Add(input[at..].ToArray());
        return (segments, flags);
    }

    /// <inheritdoc/>
    public override void Run(byte[] input)
    {
        var (segments, flags) = Unpack(input);
        var dir = Path.Combine(_dir, Interlocked.Increment(ref _runs).ToString(System.Globalization.CultureInfo.InvariantCulture));
        Directory.CreateDirectory(dir);
        try
        {
            for (var i = 0; i < segments.Count; i++) File.WriteAllBytes(Path.Combine(dir, $"{i:x16}.wal"), segments[i]);
            var truncate = (flags & 0x80) != 0;
            var resealed = (flags & 0x40) != 0;
            (ulong, int, HardState, (ulong, ulong)) first;
            using (var wal = Wal.Open(dir, Options(truncate, encrypted: true)))
            {
                first = Check(wal, resealed);
            }
            // Recovery is idempotent: whatever it cut, the log it left opens again, as it was, without asking to truncate.
            using (var again = OpenAgain(dir))
            {
                var second = Check(again, resealed);
                if (second != first) throw new FuzzPropertyException($"the log recovered as {first} but opened again as {second}");
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private Wal OpenAgain(string dir)
    {
        try
        {
            return Wal.Open(dir, Options(false, encrypted: true));
        }
        catch (Exception e) when (IsClean(e))
        {
            throw new FuzzPropertyException($"the log opened once, but opening it again failed: {e.Message}");
        }
    }

    private static (ulong LastIndex, int Count, HardState HardState, (ulong, ulong) Snapshot) Check(Wal wal, bool resealed)
    {
        var entries = wal.Entries;
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            if (e.Index <= wal.Snapshot.Index) throw new FuzzPropertyException($"entry {e.Index} is at or below the snapshot {wal.Snapshot.Index}");
            if (i > 0 && e.Index != entries[i - 1].Index + 1) throw new FuzzPropertyException($"entries not contiguous: {entries[i - 1].Index} then {e.Index}");
            if (!resealed)
            {
                var c = Canonical(e.Index);
                if (e.Term != c.Term || e.Kind != c.Kind || !e.Data.Span.SequenceEqual(c.Data.Span)) throw new FuzzPropertyException($"entry {e.Index} was recovered with other contents than were written");
            }
        }
        return (wal.LastIndex, entries.Count, wal.HardState, wal.Snapshot);
    }

    /// <inheritdoc/>
    public override byte[] Mutate(Mutator m, byte[] seed, byte[] other)
    {
        var (segments, flags) = Unpack(seed);
        if (m.OneIn(4)) flags |= 0x80;
        switch (m.Next(8))
        {
            case 0: // a whole segment dropped, swapped with another, or repeated
            {
                var i = m.Next(segments.Count);
                var j = m.Next(segments.Count);
                switch (m.Next(3))
                {
                    case 0 when segments.Count > 1:
                        segments.RemoveAt(i);
                        break;
                    case 1:
                        (segments[i], segments[j]) = (segments[j], segments[i]);
                        break;
                    default:
                        if (segments.Count < 4) segments.Insert(i, segments[i]);
                        break;
                }
                return Pack(segments, flags);
            }
            case 1 or 2: // one record mutated and the segment sealed again (plain segments)
            {
                var i = m.Next(segments.Count);
                if (Reseal(m, segments[i]) is { } resealed)
                {
                    segments[i] = resealed;
                    return Pack(segments, (byte)(flags | 0x40));
                }
                return Pack(segments, flags);
            }
            case 3 or 4: // one segment mutated in place
            {
                var i = m.Next(segments.Count);
                segments[i] = m.Mutate(segments[i], segments[m.Next(segments.Count)], segments[i].Length + 4096);
                return Pack(segments, flags);
            }
            default: // the packed input mutated as a whole
                return m.Mutate(Pack(segments, flags), other, MaxInputBytes);
        }
    }

    /// <summary>Decodes a plain segment's records, mutates one (payload, type or length), and writes them all again with fresh checksums at their new offsets.</summary>
    private static byte[]? Reseal(Mutator m, byte[] segment)
    {
        if (segment.Length < HeaderSize || BinaryPrimitives.ReadUInt32LittleEndian(segment.AsSpan(12)) != 0) return null;
        var records = new List<(byte Type, byte[] Payload)>();
        var at = HeaderSize;
        while (at + 21 <= segment.Length)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(segment.AsSpan(at));
            if (length <= 0 || at + 21 + length > segment.Length) break;
            records.Add((segment[at + 4], segment.AsSpan(at + 5, length).ToArray()));
            at += 21 + length;
        }
        if (records.Count == 0) return null;
        var k = m.Next(records.Count);
        var (type, payload) = records[k];
        if (m.OneIn(4)) type = m.OneIn(2) ? (byte)m.Next(6) : (byte)m.NextU64();
        else payload = m.Mutate(payload, default, payload.Length + 64);
        records[k] = (type, payload);
        var id = segment.AsSpan(24, 16).ToArray();
        var seq = BinaryPrimitives.ReadUInt64LittleEndian(segment.AsSpan(16));
        using var ms = new MemoryStream();
        ms.Write(segment.AsSpan(0, HeaderSize));
        foreach (var (t, p) in records)
        {
            var frame = new byte[21 + p.Length];
            BinaryPrimitives.WriteInt32LittleEndian(frame, p.Length);
            frame[4] = t;
            p.CopyTo(frame, 5);
            var ad = new byte[37];
            id.CopyTo(ad, 0);
            BinaryPrimitives.WriteUInt64LittleEndian(ad.AsSpan(16), seq);
            BinaryPrimitives.WriteInt64LittleEndian(ad.AsSpan(24), ms.Position);
            frame.AsSpan(0, 5).CopyTo(ad.AsSpan(32));
            var h = new XxHash128();
            h.Append(ad);
            h.Append(frame.AsSpan(5, p.Length));
            h.GetCurrentHash(frame.AsSpan(5 + p.Length));
            ms.Write(frame);
        }
        ms.Write(new byte[32]);
        return ms.ToArray();
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
