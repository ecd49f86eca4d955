using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>Decoder cases found by fuzzing (docs/faults.md, "Fuzzing"): Cairn.Protocol's messages and the peer codec.</summary>
public sealed class CodecTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    [InlineData(10)]
    public void A_txn_of_small_compares_and_no_operations_decodes(int compares)
    {
        // The compare count was checked against 26 bytes per compare; the smallest compare is 22 (23 with a 1-byte key).
        var txn = new TxnRequest { Compares = [.. Enumerable.Range(0, compares).Select(i => new Compare { Key = [(byte)('a' + i)], Target = CompareTarget.Create })] };
        using var w = new FrameWriter();
        Messages.WriteTxn(w, txn);
        var r = new PayloadReader(w.WrittenSpan);
        var read = Messages.ReadTxn(ref r);
        r.End();
        Assert.Equal(compares, read.Compares.Count);
        Assert.Equal(txn.Compares.Select(c => c.Key[0]), read.Compares.Select(c => c.Key[0]));
    }

    [Fact]
    public void A_received_append_holds_its_entries_in_pooled_memory_and_makes_only_the_message()
    {
        var entries = Enumerable.Range(1, 40).Select(i => new Cairn.Raft.LogEntry((ulong)i, 3, Enumerable.Repeat((byte)i, 300).ToArray())).ToList();
        var sent = new Cairn.Raft.Message(Cairn.Raft.RaftMessageType.Append, 1, 2, 3, LogTerm: 3, Index: 0, Entries: entries, Commit: 5);
        using var w = new FrameWriter();
        PeerCodec.WriteMessage(w, sent);
        var payload = w.WrittenSpan[Frame.HeaderSize..].ToArray();
        for (var i = 0; i < 100; i++)
        {
            var warm = ReceivedMessage.Rent();     // warm the pools
            PeerCodec.ReadMessage(payload, warm);
            warm.Release();
        }
        ReceivedMessage? holder = null;
        Cairn.Raft.Message? read = null;
        long allocated = long.MaxValue;
        for (var round = 0; round < 5; round++)
        {
            holder?.Release();
            var before = GC.GetAllocatedBytesForCurrentThread();
            holder = ReceivedMessage.Rent();
            read = PeerCodec.ReadMessage(payload, holder);
            allocated = Math.Min(allocated, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        // The message itself; not an array per entry (40 × 300 bytes) nor a list of them.
        Assert.True(allocated < 256, $"reading an append of 40 entries allocated {allocated} bytes");
        Assert.Equal(entries.Select(e => (e.Index, e.Term, Convert.ToHexString(e.Data.Span))), read!.Entries!.Select(e => (e.Index, e.Term, Convert.ToHexString(e.Data.Span))));
        holder!.Release();
    }

    [Fact]
    public void A_compare_count_that_cannot_fit_is_still_refused_before_allocating()
    {
        using var w = new FrameWriter();
        w.U32(1_000_000);
        w.Raw(new byte[64]);
        var e = Assert.Throws<ProtocolException>(() =>
        {
            var r = new PayloadReader(w.WrittenSpan);
            Messages.ReadTxn(ref r);
        });
        Assert.Equal(ErrorCode.Malformed, e.Code);
    }

    [Theory]
    [InlineData(0x80000000u)]
    [InlineData(0xFFFFFFFFu)]
    [InlineData(9u)]
    public void A_forwarded_answer_whose_length_runs_past_the_reply_is_not_cut(uint length)
    {
        // Before the fix OnForwardReply compared against (int)length: past 2 GiB that was negative, and the slice threw.
        var frames = new byte[Frame.HeaderSize + 8];
        Frame.WriteHeader(frames, new FrameHeader(length, MessageType.Range, FrameFlags.Response, 1));
        ReadOnlySpan<byte> span = frames;
        Assert.False(PeerCodec.TryReadFrame(ref span, out _, out _));
        Assert.Equal(frames.Length, span.Length);
    }

    [Fact]
    public void Forwarded_answers_are_cut_one_by_one()
    {
        using var w = new FrameWriter();
        for (var i = 0; i < 3; i++)
        {
            w.BeginFrame(MessageType.Compact, FrameFlags.Response, (ulong)i);
            w.I64(i);
            w.EndFrame();
        }
        ReadOnlySpan<byte> span = w.WrittenSpan;
        var ids = new List<ulong>();
        while (PeerCodec.TryReadFrame(ref span, out var h, out var payload))
        {
            Assert.Equal(8, payload.Length);
            ids.Add(h.RequestId);
        }
        Assert.Equal([0UL, 1UL, 2UL], ids);
        Assert.True(span.IsEmpty);
    }
}
