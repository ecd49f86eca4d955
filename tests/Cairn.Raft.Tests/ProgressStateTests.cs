using static Cairn.Raft.Tests.Drive;

namespace Cairn.Raft.Tests;

/// <summary>
/// A follower's flow state as its leader keeps it — probe, replicate, snapshot — and what moves it: answers, heartbeat
/// answers, and the transport's reports (<see cref="RaftNode.ReportUnreachable"/>, <see cref="RaftNode.ReportSnapshot"/>).
/// </summary>
public sealed class ProgressStateTests
{
    /// <summary>Member 1 leading 1, 2, 3; its no-op (index 1) is out to both followers as their first probe.</summary>
    private static RaftNode Leader(int inflight = 8)
    {
        var n = new RaftNode(new RaftOptions
        {
            Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 9,
            MaxInflightMessages = inflight,
        });
        while (n.Role != Role.Candidate) n.Tick();
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Drain(n);
        return n;
    }

    private static List<Message> To(List<Message> messages, ulong to, RaftMessageType type) => [.. messages.Where(m => m.Type == type && m.To == to)];

    private static List<Message> AppendsTo(RaftNode n, ulong to) => To(Drain(n), to, RaftMessageType.Append);

    private static ulong Last(Message append) => append.Index + (ulong)append.Entries!.Count;

    /// <summary>Member 2 acknowledges the no-op (replicate); each proposal then goes to it in an append of its own, all lost.</summary>
    private static List<Message> Replicating(RaftNode n, int lost)
    {
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: 1));
        Drain(n);
        var sent = new List<Message>();
        for (var i = 0; i < lost; i++)
        {
            n.Propose([(byte)i]);
            sent.AddRange(AppendsTo(n, 2));
        }
        return sent;
    }

    [Fact]
    public void A_replicating_follower_reported_unreachable_is_probed_from_its_match_then_replicated_to_again()
    {
        var n = Leader();
        var lost = Replicating(n, lost: 3);
        Assert.Equal(3, lost.Count);                            // pipelined: no waiting for answers
        n.ReportUnreachable(2);
        n.Propose([7]);
        var probe = Assert.Single(AppendsTo(n, 2));
        Assert.Equal(1UL, probe.Index);                         // from the match, not from what was sent on the broken link
        Assert.Equal(n.LastIndex, Last(probe));
        n.Propose([8]);
        Assert.Empty(AppendsTo(n, 2));                          // a probe waits for its answer
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: Last(probe)));
        Assert.Single(AppendsTo(n, 2));                         // the rest
        n.Propose([9]);
        n.Propose([10]);
        Assert.Equal(2, AppendsTo(n, 2).Count);                 // replicating again: back to back
    }

    [Fact]
    public void Unreachable_is_ignored_by_a_probe_a_follower_waiting_for_a_snapshot_and_a_member_that_does_not_lead()
    {
        var follower = new RaftNode(new RaftOptions { Id = 2, Members = [1, 2, 3] });
        follower.ReportUnreachable(1);
        follower.ReportSnapshot(1, succeeded: true);
        Assert.Null(follower.GetReady());
        var n = Leader();
        n.ReportUnreachable(2);                                 // probing already: its probe is still awaited
        n.Propose([1]);
        Assert.Empty(AppendsTo(n, 2));
    }

    [Fact]
    public void A_heartbeat_answer_frees_no_slot_of_a_full_window_and_lost_appends_are_sent_again_once_reported()
    {
        // The nemesis case of docs/faults.md (finding 4): a partition dropped every append in a full window.
        var n = Leader(inflight: 3);
        var lost = Replicating(n, lost: 5);
        Assert.Equal(3, lost.Count);                            // the window is full
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));
        var asked = AppendsTo(n, 2);
        Assert.All(asked, m => Assert.Empty(m.Entries!));      // at most an empty append asking where the follower is
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));
        n.Propose([9]);
        Assert.DoesNotContain(AppendsTo(n, 2), m => m.Entries!.Count > 0); // no slot freed on a guess
        n.ReportUnreachable(2);
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));
        var probe = Assert.Single(AppendsTo(n, 2));
        Assert.Equal(1UL, probe.Index);
        Assert.Equal(n.LastIndex, Last(probe));
    }

    [Fact]
    public void Without_a_report_the_empty_append_a_heartbeat_answer_lets_out_finds_lost_appends_or_lost_acknowledgements()
    {
        // Appends lost: the follower rejects the empty append, and probing resumes from its hint.
        var n = Leader(inflight: 3);
        var lost = Replicating(n, lost: 5);
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));
        var asked = Assert.Single(AppendsTo(n, 2));
        Assert.Empty(asked.Entries!);
        Assert.Equal(Last(lost[^1]), asked.Index);              // just after what was sent
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Reject: true, Index: 1));
        var probe = Assert.Single(AppendsTo(n, 2));
        Assert.Equal(1UL, probe.Index);
        Assert.Equal(n.LastIndex, Last(probe));

        // Acknowledgements lost (the follower's link to the leader broke; the leader's transport saw nothing): the
        // follower acknowledges the empty append with all it holds, and the window opens.
        n = Leader(inflight: 3);
        lost = Replicating(n, lost: 5);
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));
        asked = Assert.Single(AppendsTo(n, 2));
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: asked.Index));
        var rest = AppendsTo(n, 2);
        Assert.NotEmpty(rest);
        Assert.Equal(n.LastIndex, Last(rest[^1]));
    }

    [Fact]
    public void A_heartbeat_answer_sends_a_waiting_probe_again_and_probes_a_caught_up_follower_back_to_replicate()
    {
        var n = Leader();
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));
        var again = Assert.Single(AppendsTo(n, 2));             // the no-op's probe was lost: sent again
        Assert.Equal(0UL, again.Index);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: 1));
        Drain(n);
        n.ReportUnreachable(2);                                 // caught up, yet probing now
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));
        var probe = Assert.Single(AppendsTo(n, 2));
        Assert.Empty(probe.Entries!);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: probe.Index)); // the known match, again
        n.Propose([1]);
        n.Propose([2]);
        Assert.Equal(2, AppendsTo(n, 2).Count);                 // replicating
    }

    /// <summary>Member 2 holds the log; the leader compacts it, and member 3, which holds nothing, is sent the snapshot.</summary>
    private static (RaftNode Leader, Message Snapshot) SnapshotOut()
    {
        var n = Leader();
        for (var i = 0; i < 5; i++) n.Propose([(byte)i]);
        Drain(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex));
        Drain(n);
        n.Compact(n.Commit, [42]);
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Reject: true, Index: 0));
        var snapshot = Assert.Single(To(Drain(n), 3, RaftMessageType.Snapshot));
        Assert.Equal(n.SnapshotIndex, snapshot.Index);
        return (n, snapshot);
    }

    [Fact]
    public void A_follower_waiting_for_a_snapshot_gets_no_appends_and_no_second_snapshot()
    {
        var (n, _) = SnapshotOut();
        n.Propose([7]);
        Assert.Equal(1, n.ProposeBatch([new byte[] { 8 }]));
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 3, 1, n.Term));
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Reject: true, Index: 0)); // an answer to an older append
        n.Tick();
        var sent = Drain(n);
        var to3 = sent.Where(m => m.To == 3).ToList();
        Assert.NotEmpty(to3);                                    // heartbeats still go
        Assert.All(to3, m => Assert.Equal(RaftMessageType.Heartbeat, m.Type));
        Assert.Equal(2, To(sent, 2, RaftMessageType.Append).Count);  // member 2 is replicated to as before
    }

    [Fact]
    public void A_snapshot_reported_sent_is_followed_by_a_probe_after_it_once_a_heartbeat_is_answered()
    {
        var (n, snapshot) = SnapshotOut();
        n.Propose([7]);
        Drain(n);
        n.ReportSnapshot(3, succeeded: true);
        Assert.Empty(AppendsTo(n, 3));                          // waits for the follower's answer or a heartbeat answer
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 3, 1, n.Term));
        var probe = Assert.Single(AppendsTo(n, 3));
        Assert.Equal(snapshot.Index, probe.Index);               // right after the snapshot
        Assert.Equal(n.LastIndex, Last(probe));
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Index: Last(probe))); // commits [7]: an empty append tells 3
        Drain(n);
        n.Propose([8]);
        n.Propose([9]);
        Assert.Equal(2, AppendsTo(n, 3).Count);                 // replicating
    }

    [Fact]
    public void A_snapshot_reported_failed_is_probed_from_the_match_and_sent_again()
    {
        var (n, snapshot) = SnapshotOut();
        n.ReportSnapshot(3, succeeded: false);
        Assert.DoesNotContain(Drain(n), m => m.To == 3);         // not at once: after a heartbeat answer
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 3, 1, n.Term));
        var again = Assert.Single(Drain(n).Where(m => m.To == 3).ToList());
        Assert.Equal(RaftMessageType.Snapshot, again.Type);          // its entries are still compacted away
        Assert.Equal(snapshot.Index, again.Index);
        n.ReportSnapshot(3, succeeded: false);                   // the second send fails too
        n.ReportSnapshot(3, succeeded: false);                   // a repeated report changes nothing
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 3, 1, n.Term));
        Assert.Single(To(Drain(n), 3, RaftMessageType.Snapshot));
    }

    [Fact]
    public void The_followers_acknowledgement_of_the_snapshot_resumes_replication_before_any_report()
    {
        var (n, snapshot) = SnapshotOut();
        n.Propose([7]);
        Drain(n);
        var follower = new RaftNode(new RaftOptions { Id = 3, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false });
        follower.Step(snapshot);
        var ack = Assert.Single(Drain(follower));
        n.Step(ack);
        var next = Assert.Single(AppendsTo(n, 3));              // at once, with the entries after the snapshot
        Assert.Equal(snapshot.Index, next.Index);
        Assert.Equal(n.LastIndex, Last(next));
        n.ReportSnapshot(3, succeeded: true);                    // the transport's report comes late: ignored
        n.Propose([8]);
        Assert.Single(AppendsTo(n, 3));                          // still replicating: no pause, no probe
        follower.Step(next);
        Assert.Equal(n.LastIndex - 1, follower.LastIndex);
    }
}
