using System.Buffers.Binary;
using System.IO.Hashing;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Fuzz.Tests;

/// <summary>
/// The inputs that found each bug (docs/faults.md, "Fuzzing"), kept: each must now get its clean answer. Inputs that
/// depend on the seed files' random ids are rebuilt from the seeds the same way the fuzzer built them.
/// </summary>
public sealed class RegressionTests
{
    // ---- protocol: a Txn with three small compares was refused as "list cannot fit" (minimum compare size 26, not 22) ----

    [Fact]
    public void A_txn_of_three_one_byte_compares_is_accepted()
    {
        using var w = new FrameWriter();
        w.BeginFrame(MessageType.Txn, FrameFlags.None, 1);
        Messages.WriteTxn(w, ProtocolSeeds.SmallComparesTxn()); // three compares of keys "x", "y", "z", no operations: 77 bytes after the count
        w.EndFrame();
        var frame = w.WrittenSpan.ToArray();
        using var t = new ProtocolTarget();
        Assert.Null(FuzzRunner.Execute(t, frame, () => "three small compares", seed: true));
        var r = new PayloadReader(frame.AsSpan(Frame.HeaderSize));
        Assert.Equal(3, Messages.ReadTxn(ref r).Compares.Count);
    }

    // ---- peer: a forward reply whose inner frame claims 2^31 bytes made OnForwardReply slice with a negative length ----

    [Fact]
    public void A_forward_reply_with_an_inner_frame_of_two_gibibytes_is_ignored_not_sliced()
    {
        var hello = PeerSeeds.All()[0];
        var reply = Convert.FromHexString(
            "18000000670001000000000000000000" + // PeerForwardReply, 24 bytes
            "0700000000000000" +                   // forward id 7
            "000000800A0001000100000000000000");   // inner header: 0x80000000 bytes, Range, Response
        using var t = new PeerTarget();
        Assert.Null(FuzzRunner.Execute(t, [.. hello, .. reply], () => "2 GiB inner frame"));
        ReadOnlySpan<byte> frames = reply.AsSpan(24);
        Assert.False(Cairn.Server.PeerCodec.TryReadFrame(ref frames, out _, out _));
    }

    // ---- storage: a meta page count near 2^64 wrapped the size check; reads then ran off the mapping (access violation) ----

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_meta_page_count_that_wraps_the_size_check_is_a_truncated_file(bool encrypted)
    {
        using var t = new StorageTarget(encrypted);
        foreach (var count in new[] { ulong.MaxValue, 1UL << 63, (1UL << 52) + 3 })
        {
            var file = (byte[])t.Seeds[0].Clone();
            for (var slot = 0; slot < 2; slot++)
            {
                var meta = file.AsSpan(slot * 4096, 512);
                BinaryPrimitives.WriteUInt64LittleEndian(meta[40..], count);
                BinaryPrimitives.WriteUInt64LittleEndian(meta[504..], XxHash64.HashToUInt64(meta[..504]));
            }
            var e = FuzzRunner.Execute(t, file, () => $"page count {count}");
            Assert.IsType<CorruptDatabaseException>(e);
            Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        }
    }

    // ---- storage: a catalog key that is not a tree name (empty, not UTF-8) escaped as ArgumentException / KeyNotFoundException ----

    [Theory]
    [InlineData(0)]      // empty
    [InlineData(0xFF)]   // not UTF-8
    public void A_catalog_name_that_is_not_a_tree_name_is_corruption(byte fill)
    {
        // What the fuzzer found (seed 1, iteration 16): the catalog leaf re-sealed with a damaged first key.
        using var t = new StorageTarget(encrypted: false);
        var file = (byte[])t.Seeds[0].Clone();
        var meta = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(32)) > BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(4096 + 32)) ? 0 : 4096;
        var root = (int)BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(meta + 48));
        var page = file.AsSpan(root * 4096, 4096);
        Assert.Equal(2, page[0]); // a leaf: three trees fit in one
        var off = BinaryPrimitives.ReadUInt16LittleEndian(page[16..]);
        var klen = BinaryPrimitives.ReadUInt16LittleEndian(page[off..]);
        if (fill == 0) BinaryPrimitives.WriteUInt16LittleEndian(page[off..], 0); // the key's bytes join the value
        else page.Slice(off + 7, klen).Fill(fill);
        var id = file.AsSpan(16, 16);
        var seed = BinaryPrimitives.ReadUInt64LittleEndian(id) ^ BinaryPrimitives.ReadUInt64LittleEndian(id[8..]);
        page[^32..].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(page[^32..], XxHash3.HashToUInt64(page[..^32], (long)seed));
        var e = FuzzRunner.Execute(t, file, () => $"catalog name filled with {fill}");
        var corrupt = Assert.IsType<CorruptDatabaseException>(e);
        Assert.Contains("catalog", corrupt.Message, StringComparison.Ordinal);
    }

    // ---- storage: a leaf value length near 2^31 behind a valid checksum wrapped the entry bounds check ----

    [Theory]
    [InlineData(0x7FFFFFF0)]
    [InlineData(int.MaxValue - 9)]
    public void A_value_length_near_two_gibibytes_is_corruption(int valueLength)
    {
        using var t = new StorageTarget(encrypted: false);
        var file = (byte[])t.Seeds[1].Clone(); // one tree "t" holding "k" = "v"
        var meta = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(32)) > BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(4096 + 32)) ? 0 : 4096;
        var catalog = file.AsSpan((int)BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(meta + 48)) * 4096, 4096);
        var off = BinaryPrimitives.ReadUInt16LittleEndian(catalog[16..]);
        var klen = BinaryPrimitives.ReadUInt16LittleEndian(catalog[off..]);
        var root = (int)BinaryPrimitives.ReadUInt64LittleEndian(catalog[(off + 7 + klen)..]);
        var leaf = file.AsSpan(root * 4096, 4096);
        BinaryPrimitives.WriteInt32LittleEndian(leaf[(BinaryPrimitives.ReadUInt16LittleEndian(leaf[16..]) + 3)..], valueLength);
        var id = file.AsSpan(16, 16);
        var seed = BinaryPrimitives.ReadUInt64LittleEndian(id) ^ BinaryPrimitives.ReadUInt64LittleEndian(id[8..]);
        leaf[^32..].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(leaf[^32..], XxHash3.HashToUInt64(leaf[..^32], (long)seed));
        var e = FuzzRunner.Execute(t, file, () => $"value length {valueLength}");
        Assert.Contains("runs past the entry area", Assert.IsType<CorruptDatabaseException>(e).Message, StringComparison.Ordinal);
    }

    // ---- storage: Verify walked as deep as a tree's recorded depth, so a forged depth over a page cycle overflowed the stack ----

    [Fact]
    public void A_recorded_tree_depth_beyond_the_maximum_is_corruption_before_any_walk()
    {
        using var t = new StorageTarget(encrypted: false);
        var file = (byte[])t.Seeds[1].Clone(); // one tree "t" holding "k" = "v"
        var meta = BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(32)) > BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(4096 + 32)) ? 0 : 4096;
        var catalog = file.AsSpan((int)BinaryPrimitives.ReadUInt64LittleEndian(file.AsSpan(meta + 48)) * 4096, 4096);
        var off = BinaryPrimitives.ReadUInt16LittleEndian(catalog[16..]);
        var klen = BinaryPrimitives.ReadUInt16LittleEndian(catalog[off..]);
        BinaryPrimitives.WriteInt32LittleEndian(catalog[(off + 7 + klen + 8)..], 1_000_000); // the tree's depth, after its root page
        var id = file.AsSpan(16, 16);
        var seed = BinaryPrimitives.ReadUInt64LittleEndian(id) ^ BinaryPrimitives.ReadUInt64LittleEndian(id[8..]);
        catalog[^32..].Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(catalog[^32..], XxHash3.HashToUInt64(catalog[..^32], (long)seed));
        var e = FuzzRunner.Execute(t, file, () => "tree depth 1,000,000");
        Assert.Contains("records a depth of 1000000", Assert.IsType<CorruptDatabaseException>(e).Message, StringComparison.Ordinal);
    }

    // ---- wal: segments out of order, a missing segment, a lost tail, and a cut header under TruncateAtDamage ----

    private static (List<byte[]> Segments, byte Flags) ThreeSegments(WalTarget t)
    {
        var (segments, flags) = WalTarget.Unpack(t.Seeds[0]);
        Assert.Equal(3, segments.Count);
        return (segments, flags);
    }

    [Fact]
    public void Swapped_or_repeated_segments_are_damage()
    {
        using var t = new WalTarget();
        var (s, f) = ThreeSegments(t);
        Assert.IsType<WalCorruptException>(FuzzRunner.Execute(t, WalTarget.Pack([s[1], s[0], s[2]], f), () => "swapped"));
        Assert.IsType<WalCorruptException>(FuzzRunner.Execute(t, WalTarget.Pack([s[0], s[0], s[1]], f), () => "repeated"));
    }

    [Fact]
    public void A_segment_missing_from_the_middle_is_damage()
    {
        using var t = new WalTarget();
        var (s, f) = ThreeSegments(t);
        // The fuzzer's version: the middle segment's records gone, its header left; the next entry then leaves a gap.
        var e = FuzzRunner.Execute(t, WalTarget.Pack([s[0], s[1][..128], s[2]], f), () => "middle segment emptied");
        Assert.Contains("missing", Assert.IsType<WalCorruptException>(e).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_inputs_the_fuzzer_found_in_the_log_are_refused_or_recovered_consistently()
    {
        using var t = new WalTarget();
        foreach (var iteration in new long[] { 28, 78 }) // seed 1: a cut header left an unreadable file; a gap in the entries
        {
            var input = FuzzRunner.Generate(t, 1, iteration);
            var e = FuzzRunner.Execute(t, input, () => $"wal seed 1 iteration {iteration}");
            Assert.True(e is null or WalCorruptException, e?.ToString());
        }
    }

    [Fact]
    public void A_header_cut_under_truncate_at_damage_leaves_a_log_that_opens_again()
    {
        using var t = new WalTarget();
        var (s, _) = ThreeSegments(t);
        var damaged = (byte[])s[1].Clone();
        damaged[20] ^= 1; // the header's checksum no longer holds
        Assert.Null(FuzzRunner.Execute(t, WalTarget.Pack([s[0], damaged, s[2]], 0x80), () => "header damage, truncate"));
    }
}
