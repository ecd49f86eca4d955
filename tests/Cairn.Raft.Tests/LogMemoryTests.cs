using static Cairn.Raft.Tests.Drive;

namespace Cairn.Raft.Tests;

/// <summary>
/// The log keeps entry bytes in slabs it reuses after compaction (see <see cref="Ready"/>): what comes out must be
/// what went in, bytes handed out must hold until the Advance after a compaction, and the memory must stop growing.
/// </summary>
public sealed class LogMemoryTests
{
    private static RaftNode LoneLeader()
    {
        var n = new RaftNode(new RaftOptions { Id = 1, Members = [1] });
        while (n.Role != Role.Leader) n.Tick();
        while (n.GetReady() is { } r) n.Advance(r);
        return n;
    }

    private static byte[] Payload(int i, Random rng)
    {
        // Sizes from empty to past a quarter slab (those get buffers of their own), contents naming the proposal.
        var size = rng.Next(10) == 0 ? rng.Next(70_000, 200_000) : rng.Next(0, 2_000);
        var b = new byte[size];
        rng.NextBytes(b);
        if (size >= 4) BitConverter.TryWriteBytes(b, i);
        return b;
    }

    [Fact]
    public void Entries_come_out_as_proposed_across_compactions_and_the_log_memory_stops_growing()
    {
        var n = LoneLeader();
        var rng = new Random(7);
        var proposed = new Dictionary<ulong, byte[]>();
        var held = new List<long>();
        for (var round = 0; round < 400; round++)
        {
            for (var k = 0; k < rng.Next(1, 20); k++)
            {
                var p = Payload(round * 100 + k, rng);
                Assert.True(n.Propose(p));
                proposed[n.LastIndex] = p;
            }
            while (n.GetReady() is { } ready)
            {
                foreach (var e in ready.Entries.Concat(ready.Committed))
                {
                    if (proposed.TryGetValue(e.Index, out var want)) Assert.True(e.Data.Span.SequenceEqual(want), $"entry {e.Index} changed");
                }
                n.Advance(ready);
            }
            if (round % 5 == 0 && n.Commit > n.SnapshotIndex) n.Compact(n.Commit, []);
            held.Add(n.LogBytes);
        }
        // After warm-up the slabs freed by compaction carry the new entries: the arena does not keep growing.
        Assert.True(held[^1] <= held.Take(200).Max(), $"log memory grew from {held.Take(200).Max()} to {held[^1]} bytes");
    }

    [Fact]
    public void Bytes_in_a_ready_hold_until_advance_though_the_log_is_compacted_past_them_meanwhile()
    {
        var n = new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 4 });
        while (n.Role != Role.Candidate) n.Tick();
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Drain(n);
        var noop = n.LastIndex;
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: noop));
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Index: noop));
        Drain(n);
        var proposed = new Dictionary<ulong, byte[]>();
        for (var i = 0; i < 200; i++)
        {
            var p = Enumerable.Repeat((byte)i, 1000).ToArray();
            Assert.True(n.Propose(p));
            proposed[n.LastIndex] = p;
        }
        Drain(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex)); // 2 has it all: committed
        Drain(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Reject: true, Index: noop)); // 3 lost everything
        var ready = n.GetReady()!;
        var resend = ready.Messages.First(m => m.To == 3 && m.Type == RaftMessageType.Append && m.Entries!.Count > 0);
        n.Compact(n.Commit, []);                                   // before the resend went out
        for (var i = 0; i < 300; i++) n.Propose(new byte[1000]);   // new entries while the old slabs wait
        foreach (var e in resend.Entries!) Assert.True(e.Data.Span.SequenceEqual(proposed[e.Index]), $"entry {e.Index} was overwritten before Advance");
        n.Advance(ready);
    }

    [Fact]
    public void After_warm_up_proposing_persisting_applying_and_compacting_allocate_under_a_byte_per_entry()
    {
        var n = LoneLeader();
        var payloads = Enumerable.Range(0, 64).Select(i => new byte[300 + i]).ToArray();
        var batch = new List<ReadOnlyMemory<byte>>();
        var compactAt = 0;
        void Rounds(int from, int to)
        {
            for (var r = from; r < to; r++)
            {
                batch.Clear();
                for (var k = 0; k < 16; k++) batch.Add(payloads[(r * 16 + k) % 64]);
                if (n.ProposeBatch(batch) != 16) throw new Xunit.Sdk.XunitException("a proposal was refused"); // (Assert.Equal itself allocates)
                while (n.GetReady() is { } ready) n.Advance(ready);
                if (++compactAt % 200 == 0) n.Compact(n.Commit, []);   // a compaction itself makes its snapshot record
            }
        }
        Rounds(0, 2000);                                               // warm-up: slabs, lists and the Ready at size
        var before = GC.GetAllocatedBytesForCurrentThread();
        Rounds(2000, 4000);
        var perEntry = (GC.GetAllocatedBytesForCurrentThread() - before) / (2000.0 * 16);
        Assert.True(perEntry < 1, $"{perEntry:F2} bytes allocated per entry");
    }

    [Fact]
    public void A_follower_keeps_its_own_copy_of_what_the_leader_sent()
    {
        var f = new RaftNode(new RaftOptions { Id = 2, Members = [1, 2] });
        var data = new byte[] { 1, 2, 3 };
        f.Step(new Message(RaftMessageType.Append, 1, 2, 1, Entries: [new LogEntry(1, 1, data)], Commit: 1));
        data[0] = 99;                                          // the receive buffer is reused by the caller
        var ready = f.GetReady()!;
        Assert.Equal([1, 2, 3], ready.Entries[0].Data.ToArray());
    }
}
