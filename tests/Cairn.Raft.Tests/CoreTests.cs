using static Cairn.Raft.Tests.Drive;

namespace Cairn.Raft.Tests;

/// <summary>The behaviours of the Raft paper's §5, one at a time, on a single core driven by hand.</summary>
public sealed class CoreTests
{
    // The §5 behaviours on their own: pre-vote and check-quorum off (they have their own tests below).
    private static RaftNode Node(ulong id = 1, int seed = 1, HardState state = default, IReadOnlyList<LogEntry>? log = null, bool preVote = false, bool checkQuorum = false) =>
        new(new RaftOptions { Id = id, Members = [1, 2, 3], ElectionTicks = 10, HeartbeatTicks = 1, Seed = seed, PreVote = preVote, CheckQuorum = checkQuorum }, state, log);

    private static void TickUntilCandidate(RaftNode n)
    {
        for (var i = 0; i < 40 && n.Role == Role.Follower; i++) n.Tick();
        Assert.Equal(Role.Candidate, n.Role);
    }

    private static RaftNode Leader()
    {
        var n = Node();
        TickUntilCandidate(n);
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Assert.Equal(Role.Leader, n.Role);
        return n;
    }

    [Fact]
    public void A_member_starts_as_a_follower_and_a_higher_term_makes_it_follow()
    {
        var n = Node(state: new HardState(3, 2, 0));
        Assert.Equal(Role.Follower, n.Role);
        Assert.Equal(3UL, n.Term);
        n.Step(new Message(RaftMessageType.Append, 2, 1, 5));
        Assert.Equal(5UL, n.Term);
        Assert.Equal(0UL, n.Vote);            // a new term forgets the old vote
        Assert.Equal(2UL, n.Leader);
    }

    [Fact]
    public void A_stale_term_is_rejected_with_the_current_term()
    {
        var n = Node(state: new HardState(4, 0, 0));
        n.Step(new Message(RaftMessageType.Vote, 2, 1, 3, LogTerm: 9, Index: 9));
        var reply = Assert.Single(Drain(n));
        Assert.True(reply.Reject);
        Assert.Equal(4UL, reply.Term);
        Assert.Equal(0UL, n.Vote);
    }

    [Fact]
    public void Timeouts_are_randomized_in_T_to_2T_and_an_election_asks_everyone()
    {
        var seen = new HashSet<int>();
        for (var seed = 0; seed < 30; seed++)
        {
            var n = Node(seed: seed);
            var ticks = 0;
            while (n.Role == Role.Follower) { n.Tick(); ticks++; }
            Assert.InRange(ticks, 10, 19);
            seen.Add(ticks);
            Assert.Equal(1UL, n.Term);
            Assert.Equal(1UL, n.Vote);          // votes for itself
            var requests = Drain(n).Where(m => m.Type == RaftMessageType.Vote).Select(m => m.To).Order().ToList();
            Assert.Equal([2UL, 3UL], requests);
        }
        Assert.True(seen.Count > 3, "timeouts should differ between members");
    }

    [Fact]
    public void One_vote_per_term_and_only_for_an_up_to_date_log()
    {
        var n = Node(log: [new LogEntry(1, 1, []), new LogEntry(2, 2, [])], state: new HardState(2, 0, 0));
        n.Step(new Message(RaftMessageType.Vote, 2, 1, 3, LogTerm: 1, Index: 5));   // older last term: refused
        Assert.True(Drain(n).Single().Reject);
        n.Step(new Message(RaftMessageType.Vote, 2, 1, 3, LogTerm: 2, Index: 1));   // same term, shorter: refused
        Assert.True(Drain(n).Single().Reject);
        n.Step(new Message(RaftMessageType.Vote, 2, 1, 3, LogTerm: 2, Index: 2));   // as up to date: granted
        Assert.False(Drain(n).Single().Reject);
        n.Step(new Message(RaftMessageType.Vote, 3, 1, 3, LogTerm: 9, Index: 9));   // second candidate, same term: refused
        Assert.True(Drain(n).Single().Reject);
        Assert.Equal(2UL, n.Vote);
    }

    [Fact]
    public void A_majority_elects_a_candidate_and_a_leader_of_its_term_sends_it_back()
    {
        var n = Node();
        TickUntilCandidate(n);
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term, Reject: true));
        Assert.Equal(Role.Candidate, n.Role);
        n.Step(new Message(RaftMessageType.Append, 3, 1, n.Term));
        Assert.Equal(Role.Follower, n.Role);
        Assert.Equal(3UL, n.Leader);

        var leader = Leader();
        Assert.Equal(1UL, leader.Leader);
        // Its first entry is a no-op of its own term, sent to everyone.
        var appends = Drain(leader).Where(m => m.Type == RaftMessageType.Append).ToList();
        Assert.Contains(appends, m => m.Entries is [{ Data.Length: 0 }] && m.Entries[0].Term == leader.Term);
    }

    [Fact]
    public void A_leader_sends_heartbeats_every_heartbeat_tick()
    {
        var leader = Leader();
        Drain(leader);
        leader.Tick();
        var beats = Drain(leader).Where(m => m.Type == RaftMessageType.Heartbeat).Select(m => m.To).Order().ToList();
        Assert.Equal([2UL, 3UL], beats);
    }

    [Fact]
    public void A_follower_rejects_a_gap_truncates_a_conflict_and_reports_its_match()
    {
        var n = Node(log: [new LogEntry(1, 1, [1]), new LogEntry(2, 1, [2]), new LogEntry(3, 1, [3])], state: new HardState(2, 0, 1));
        n.Step(new Message(RaftMessageType.Append, 2, 1, 2, LogTerm: 2, Index: 5, Entries: [new LogEntry(6, 2, [])]));
        var reject = Drain(n).Single();
        Assert.True(reject.Reject);
        Assert.Equal(3UL, reject.Index);       // hint: its last index
        n.Step(new Message(RaftMessageType.Append, 2, 1, 2, LogTerm: 1, Index: 1, Entries: [new LogEntry(2, 2, [9]), new LogEntry(3, 2, [9])], Commit: 3));
        var ok = Drain(n).Single();
        Assert.False(ok.Reject);
        Assert.Equal(3UL, ok.Index);
        Assert.Equal(3UL, n.LastIndex);
        Assert.Equal(3UL, n.Commit);
    }

    /// <summary>Figure 8: an entry from an earlier term is not committed by counting replicas, only with one of the current term.</summary>
    [Fact]
    public void Old_term_entries_are_not_committed_by_counting()
    {
        // Member 1 holds entry 2 from term 2 (never committed), and now leads term 4.
        var n = Node(log: [new LogEntry(1, 1, []), new LogEntry(2, 2, [7])], state: new HardState(3, 0, 1));
        TickUntilCandidate(n);
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Assert.Equal(Role.Leader, n.Role);
        Drain(n);
        // A follower reports it holds index 2 (the old-term entry) but not the new no-op at 3.
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: 2));
        Drain(n);
        Assert.Equal(1UL, n.Commit);
        // Once the follower has the leader's own-term entry, both commit.
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: 3));
        Drain(n);
        Assert.Equal(3UL, n.Commit);
    }

    [Fact]
    public void A_new_commit_index_goes_to_followers_at_once_not_with_the_next_write_or_tick()
    {
        var leader = Leader();
        Drain(leader);
        leader.Step(new Message(RaftMessageType.AppendResponse, 2, 1, leader.Term, Index: leader.LastIndex)); // both replicate
        leader.Step(new Message(RaftMessageType.AppendResponse, 3, 1, leader.Term, Index: leader.LastIndex));
        Drain(leader);
        Assert.True(leader.Propose([7]));
        var appends = Drain(leader).Where(m => m.Type == RaftMessageType.Append).ToList();
        Assert.All(appends, m => Assert.True(m.Commit < leader.LastIndex, "the entry is not committed when it goes out"));
        // One follower acknowledges: the entry commits; no tick, no further proposal.
        leader.Step(new Message(RaftMessageType.AppendResponse, 2, 1, leader.Term, Index: leader.LastIndex));
        Assert.Equal(leader.LastIndex, leader.Commit);
        var after = Drain(leader).Where(m => m.Type == RaftMessageType.Append).ToList();
        Assert.Equal([2UL, 3UL], after.Select(m => m.To).Order());
        Assert.All(after, m =>
        {
            Assert.Equal(leader.Commit, m.Commit);
            Assert.Empty(m.Entries!);              // only the commit index: every entry is already on its way
        });
        // A follower that holds the entry applies it on that message alone.
        var follower = Node(3);
        Assert.Equal(2UL, leader.LastIndex);     // the leader's no-op, then the proposal
        follower.Step(new Message(RaftMessageType.Append, 1, 3, leader.Term, LogTerm: 0, Index: 0, Entries: [new LogEntry(1, leader.Term, []), new LogEntry(2, leader.Term, [7])], Commit: 0));
        Drain(follower);
        Assert.Equal(0UL, follower.Commit);
        follower.Step(after.Single(m => m.To == 3));
        Assert.Equal(leader.Commit, follower.Commit);
    }

    [Fact]
    public void Commit_reaches_a_majority_and_committed_entries_come_out_to_apply()
    {
        var leader = Leader();
        Drain(leader);
        Assert.True(leader.Propose([42]));
        var ready = leader.GetReady()!;
        Assert.Empty(ready.Committed);
        leader.Advance(ready);
        leader.Step(new Message(RaftMessageType.AppendResponse, 3, 1, leader.Term, Index: leader.LastIndex));
        var next = leader.GetReady()!;
        Assert.Equal(leader.LastIndex, leader.Commit);
        Assert.Contains(next.Committed, e => e.Data.Span is [42]);
        Assert.False(Node(2).Propose([1]));     // only a leader takes proposals
    }

    [Fact]
    public void With_pre_vote_a_member_cut_off_from_the_others_does_not_raise_its_term()
    {
        var n = Node(preVote: true, state: new HardState(5, 0, 0));
        for (var i = 0; i < 200; i++) n.Tick();
        Assert.Equal(5UL, n.Term);                // nobody answered: it never stood
        Assert.Equal(Role.PreCandidate, n.Role);
        var asks = Drain(n).Where(m => m.Type == RaftMessageType.PreVote).ToList();
        Assert.All(asks, m => Assert.Equal(6UL, m.Term));
        // With a quorum of pre-votes it stands for real, in term 6.
        n.Step(new Message(RaftMessageType.PreVoteResponse, 2, 1, 6));
        Assert.Equal(Role.Candidate, n.Role);
        Assert.Equal(6UL, n.Term);
    }

    [Fact]
    public void Pre_votes_and_votes_are_refused_while_a_leader_was_heard_recently()
    {
        var n = Node(2, preVote: true, checkQuorum: true, state: new HardState(3, 0, 0));
        n.Step(new Message(RaftMessageType.Append, 1, 2, 3));   // the leader of term 3
        Drain(n);
        n.Step(new Message(RaftMessageType.PreVote, 3, 2, 4, LogTerm: 9, Index: 9));
        n.Step(new Message(RaftMessageType.Vote, 3, 2, 4, LogTerm: 9, Index: 9));
        Assert.DoesNotContain(Drain(n), m => m.Type is RaftMessageType.VoteResponse or RaftMessageType.PreVoteResponse && !m.Reject);
        Assert.Equal(3UL, n.Term);                           // not unseated by a disruptive member
        for (var i = 0; i < 10; i++) n.Tick();               // an election timeout without the leader
        n.Step(new Message(RaftMessageType.PreVote, 3, 2, 4, LogTerm: 9, Index: 9));
        Assert.Contains(Drain(n), m => m.Type == RaftMessageType.PreVoteResponse && !m.Reject && m.Term == 4);
        Assert.Equal(3UL, n.Term);                           // a pre-vote changes no term
    }

    [Fact]
    public void With_check_quorum_a_leader_that_hears_from_no_quorum_steps_down()
    {
        var n = Node(checkQuorum: true);
        TickUntilCandidate(n);
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Assert.Equal(Role.Leader, n.Role);
        for (var i = 0; i < 9; i++) { n.Tick(); Drain(n); }
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term));          // one follower answers: still a quorum
        for (var i = 0; i < 10; i++) { n.Tick(); Drain(n); }
        Assert.Equal(Role.Leader, n.Role);
        for (var i = 0; i < 10; i++) { n.Tick(); Drain(n); }                       // a whole timeout of silence
        Assert.Equal(Role.Follower, n.Role);
    }
}

public sealed class ReadIndexTests
{
    private static RaftNode Node(ulong id = 1) => new(new RaftOptions { Id = id, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 3 });

    private static RaftNode CommittedLeader()
    {
        var n = Node();
        while (n.Role != Role.Candidate) n.Tick();
        DrainWithReads(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        DrainWithReads(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex)); // its no-op commits
        DrainWithReads(n);
        Assert.Equal(n.LastIndex, n.Commit);
        return n;
    }

    [Fact]
    public void A_read_is_confirmed_by_one_quorum_round_shared_by_every_read_waiting()
    {
        var n = CommittedLeader();
        Assert.True(n.ReadIndex([1]));
        Assert.True(n.ReadIndex([2]));   // same round
        var (messages, reads) = DrainWithReads(n);
        Assert.Empty(reads);             // the leader alone is no quorum
        var round = messages.Where(m => m.Context > 0).Select(m => m.Context).Distinct().Single();
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 3, 1, n.Term, Context: round));
        (_, reads) = DrainWithReads(n);
        Assert.Equal([1, 2], reads.Select(r => (int)r.Context[0]));
        Assert.All(reads, r => Assert.Equal(n.Commit, r.Index));
    }

    [Fact]
    public void Reads_wait_for_the_leaders_first_commit_and_are_dropped_when_it_steps_down()
    {
        var n = Node();
        while (n.Role != Role.Candidate) n.Tick();
        DrainWithReads(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        DrainWithReads(n);
        Assert.True(n.ReadIndex([7]));   // postponed: nothing of its term is committed yet
        var (messages, _) = DrainWithReads(n);
        Assert.DoesNotContain(messages, m => m.Context > 0);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex));
        (messages, _) = DrainWithReads(n);
        var round = messages.Where(m => m.Context > 0).Select(m => m.Context).Distinct().Single();
        // A higher term unseats it before the round is confirmed: the read is not answered.
        n.Step(new Message(RaftMessageType.Append, 3, 1, n.Term + 1));
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term, Context: round));
        Assert.Empty(DrainWithReads(n).Reads);
        Assert.False(n.ReadIndex([8]));  // a follower does not serve reads
    }
}

public sealed class TransferTests
{
    private static RaftNode Node(ulong id, bool guards = true) => new(new RaftOptions { Id = id, Members = [1, 2, 3], ElectionTicks = 10, PreVote = guards, CheckQuorum = guards, Seed = 5 });

    private static RaftNode Leader()
    {
        var n = Node(1, guards: false);
        while (n.Role != Role.Candidate) n.Tick();
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Drain(n);
        return n;
    }

    [Fact]
    public void A_leader_brings_the_target_up_to_date_then_tells_it_to_stand_and_takes_no_proposals_meanwhile()
    {
        var leader = Leader();
        Assert.False(leader.TransferLeadership(1));
        Assert.False(leader.TransferLeadership(9));
        Assert.True(leader.TransferLeadership(2));
        Assert.Equal(2UL, leader.Transferee);
        Assert.False(leader.Propose([1]));
        var first = Drain(leader);
        Assert.DoesNotContain(first, m => m.Type == RaftMessageType.TimeoutNow); // member 2 has not caught up yet
        leader.Step(new Message(RaftMessageType.AppendResponse, 2, 1, leader.Term, Index: leader.LastIndex));
        Assert.Contains(Drain(leader), m => m.Type == RaftMessageType.TimeoutNow && m.To == 2);
    }

    [Fact]
    public void The_target_stands_at_once_and_voters_that_just_heard_the_leader_still_answer()
    {
        var target = Node(2);
        target.Step(new Message(RaftMessageType.Append, 1, 2, 1));            // follows leader 1 in term 1
        Drain(target);
        target.Step(new Message(RaftMessageType.TimeoutNow, 1, 2, 1));
        Assert.Equal(Role.Candidate, target.Role);                         // no pre-vote, no waiting
        var votes = Drain(target).Where(m => m.Type == RaftMessageType.Vote).ToList();
        Assert.Equal(2, votes.Count);
        var voter = Node(3);
        voter.Step(new Message(RaftMessageType.Append, 1, 3, 1));             // in the old leader's lease
        Drain(voter);
        voter.Step(votes.Single(v => v.To == 3));
        Assert.Contains(Drain(voter), m => m.Type == RaftMessageType.VoteResponse && !m.Reject);
        // An ordinary vote request in the lease is ignored.
        var other = Node(3);
        other.Step(new Message(RaftMessageType.Append, 1, 3, 1));
        Drain(other);
        other.Step(votes.Single(v => v.To == 3) with { Context = 0 });
        Assert.DoesNotContain(Drain(other), m => m.Type == RaftMessageType.VoteResponse && !m.Reject);
    }

    [Fact]
    public void A_member_that_does_not_campaign_never_stands_yet_votes_at_once_and_ignores_a_hand_over()
    {
        var n = Node(2);                                                  // pre-vote and check-quorum on
        n.Campaigns = false;
        n.Step(new Message(RaftMessageType.Append, 1, 2, 1));                 // follows leader 1 in term 1
        Drain(n);
        for (var i = 0; i < 100; i++) n.Tick();                           // many election timeouts without a leader
        Assert.Equal(Role.Follower, n.Role);
        Assert.Equal(1UL, n.Term);
        Assert.DoesNotContain(Drain(n), m => m.Type is RaftMessageType.Vote or RaftMessageType.PreVote);
        n.Step(new Message(RaftMessageType.TimeoutNow, 1, 2, 1));              // a hand-over to it
        Assert.Equal(Role.Follower, n.Role);
        // Its timer ran out, so it is out of the old leader's lease: a candidate gets its vote (the others keep their quorum).
        n.Step(new Message(RaftMessageType.Vote, 3, 2, 2, LogTerm: 0, Index: 0));
        Assert.Contains(Drain(n), m => m.Type == RaftMessageType.VoteResponse && m.To == 3 && !m.Reject);
        n.Campaigns = true;
        for (var i = 0; i < 40 && n.Role == Role.Follower; i++) n.Tick();
        Assert.Equal(Role.PreCandidate, n.Role);                           // stands again once allowed
    }

    [Fact]
    public void A_hand_over_that_does_not_happen_within_an_election_timeout_is_abandoned()
    {
        var leader = Leader();
        Assert.True(leader.TransferLeadership(3));
        for (var i = 0; i < 10; i++) { leader.Tick(); Drain(leader); }
        Assert.Equal(0UL, leader.Transferee);
        Assert.True(leader.Propose([1]));
    }
}

public sealed class FlowControlTests
{
    private static RaftNode Leader(int inflight = 3, long bytesPerMessage = 1 << 20, long uncommitted = 64L << 20)
    {
        var n = new RaftNode(new RaftOptions
        {
            Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 9,
            MaxInflightMessages = inflight, MaxBytesPerMessage = bytesPerMessage, MaxInflightBytes = 64L << 20, MaxUncommittedBytes = uncommitted,
        });
        while (n.Role != Role.Candidate) n.Tick();
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Drain(n);
        return n;
    }

    private static List<Message> AppendsTo(List<Message> messages, ulong to) => [.. messages.Where(m => m.Type == RaftMessageType.Append && m.To == to)];

    [Fact]
    public void A_probing_follower_gets_one_append_at_a_time_then_a_pipeline_up_to_the_window()
    {
        var n = Leader(inflight: 3);
        // Member 2 is probing: its no-op append is out; more proposals do not send more to it.
        n.Propose([1]);
        n.Propose([2]);
        Assert.Empty(AppendsTo(Drain(n), 2));
        // Its answer moves it to replicate: the rest goes out, and later proposals stream without waiting.
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: 1));
        Assert.Single(AppendsTo(Drain(n), 2));
        n.Propose([3]);
        n.Propose([4]);
        n.Propose([5]);
        var sent = AppendsTo(Drain(n), 2);
        Assert.Equal(2, sent.Count);              // window of 3: one in flight already, two more
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: sent[^1].Index + (ulong)sent[^1].Entries!.Count));
        Assert.NotEmpty(AppendsTo(Drain(n), 2)); // acknowledgements open the window again
    }

    [Fact]
    public void Messages_stay_under_the_byte_bound_and_a_rejection_returns_to_probing()
    {
        var n = Leader(bytesPerMessage: 100);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: 1));
        Drain(n);
        for (var i = 0; i < 5; i++) n.Propose(new byte[60]);
        var sent = AppendsTo(Drain(n), 2);
        Assert.All(sent, m => Assert.True(m.Entries!.Sum(e => e.Data.Length) <= 100, "an append over the byte bound"));
        Assert.True(sent.Count >= 3);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Reject: true, Index: 1));
        var retry = AppendsTo(Drain(n), 2);
        Assert.Single(retry);                     // probing again: one at a time, from after the hint
        Assert.Equal(1UL, retry[0].Index);
    }

    [Fact]
    public void Proposals_are_refused_past_the_uncommitted_bound()
    {
        var n = Leader(uncommitted: 1000);
        n.Propose(new byte[600]);
        var e = Assert.Throws<ProposalRefusedException>(() => n.Propose(new byte[600]));
        Assert.Contains("uncommitted", e.Message);
        Drain(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex));  // all committed
        Drain(n);
        Assert.True(n.Propose(new byte[600]));
    }
}

public sealed class MembershipTests
{
    private static RaftNode Leader()
    {
        var n = new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 2 });
        while (n.Role != Role.Candidate) n.Tick();
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Drain(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex));
        Drain(n);
        return n;
    }

    [Fact]
    public void A_learner_gets_the_log_without_voting_then_is_promoted_one_change_at_a_time()
    {
        var n = Leader();
        Assert.True(n.ProposeConfigChange(new ConfigChange(ConfigChangeType.AddLearner, 4)));
        Assert.Equal([4UL], n.Learners);
        Assert.False(n.ProposeConfigChange(new ConfigChange(ConfigChangeType.PromoteLearner, 4))); // the first is uncommitted
        Assert.Contains(Drain(n), m => m.Type == RaftMessageType.Append && m.To == 4);
        // The learner's acknowledgement does not count towards a quorum: with 2 and 3 silent, nothing commits.
        n.Step(new Message(RaftMessageType.AppendResponse, 4, 1, n.Term, Index: n.LastIndex));
        Drain(n);
        Assert.True(n.Commit < n.LastIndex);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex));
        Drain(n);
        Assert.Equal(n.LastIndex, n.Commit);
        Assert.True(n.ProposeConfigChange(new ConfigChange(ConfigChangeType.PromoteLearner, 4)));
        Assert.Equal([1UL, 2UL, 3UL, 4UL], n.Voters.Order());
        Assert.Throws<ArgumentException>(() => Leader().ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, 2)));
        Assert.Throws<ArgumentException>(() => Leader().ProposeConfigChange(new ConfigChange(ConfigChangeType.PromoteLearner, 7)));
    }

    [Fact]
    public void A_follower_adopts_a_change_when_it_is_in_its_log_and_drops_it_if_the_entry_is_replaced()
    {
        var f = new RaftNode(new RaftOptions { Id = 2, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false });
        var change = new LogEntry(1, 1, new ConfigChange(ConfigChangeType.Remove, 3).Encode(), EntryKind.Config);
        f.Step(new Message(RaftMessageType.Append, 1, 2, 1, Index: 0, Entries: [change]));
        Assert.Equal([1UL, 2UL], f.Voters.Order());          // in effect before it commits
        // A new leader's log replaces the uncommitted change: the configuration goes back.
        f.Step(new Message(RaftMessageType.Append, 1, 2, 2, Index: 0, Entries: [new LogEntry(1, 2, [])]));
        Assert.Equal([1UL, 2UL, 3UL], f.Voters.Order());
    }

    [Fact]
    public void A_leader_that_removes_itself_steps_down_once_the_change_commits()
    {
        var n = Leader();
        Assert.True(n.ProposeConfigChange(new ConfigChange(ConfigChangeType.Remove, 1)));
        Assert.Equal(Role.Leader, n.Role);
        Drain(n);
        // 2 and 3 now make the quorum (the leader no longer counts).
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex));
        Drain(n);
        Assert.Equal(Role.Leader, n.Role);
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Index: n.LastIndex));
        Drain(n);
        Assert.Equal(Role.Follower, n.Role);
        for (var i = 0; i < 50; i++) n.Tick();
        Assert.Equal(Role.Follower, n.Role);                  // never stands again
    }
}

public sealed class SnapshotTests
{

    [Fact]
    public void A_follower_behind_the_leaders_snapshot_receives_it_installs_it_and_catches_up_after_it()
    {
        var leader = new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 8 });
        while (leader.Role != Role.Candidate) leader.Tick();
        Drain(leader);
        leader.Step(new Message(RaftMessageType.VoteResponse, 2, 1, leader.Term));
        Drain(leader);
        for (var i = 0; i < 5; i++) leader.Propose([(byte)i]);
        Drain(leader);
        leader.Step(new Message(RaftMessageType.AppendResponse, 2, 1, leader.Term, Index: leader.LastIndex));
        Drain(leader);
        Assert.Equal(leader.LastIndex, leader.Commit);
        Assert.Throws<ArgumentException>(() => leader.Compact(leader.LastIndex + 1, [9]));
        leader.Compact(leader.Commit, [42]);
        Assert.Equal(leader.Commit, leader.SnapshotIndex);
        leader.Propose([7]);
        var toThree = Drain(leader).Where(m => m.To == 3).ToList();
        Assert.DoesNotContain(toThree, m => m.Type == RaftMessageType.Snapshot); // still probing from its start index
        // Member 3 says it has nothing: its next entry is compacted away, so the snapshot goes out.
        leader.Step(new Message(RaftMessageType.AppendResponse, 3, 1, leader.Term, Reject: true, Index: 0));
        var snapshot = Drain(leader).Single(m => m.To == 3 && m.Type == RaftMessageType.Snapshot);
        Assert.Equal(leader.SnapshotIndex, snapshot.Index);
        Assert.Equal([1UL, 2UL, 3UL], snapshot.Snapshot!.Voters);

        var follower = new RaftNode(new RaftOptions { Id = 3, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false });
        follower.Step(snapshot);
        var snapshots = new List<(SnapshotMetadata Meta, byte[] Data)>();
        var reply = Drain(follower, snapshots).Single();
        var installed = Assert.Single(snapshots);
        Assert.Equal([42], installed.Data);
        Assert.Equal(snapshot.Index, reply.Index);
        Assert.Equal(snapshot.Index, follower.Commit);
        // The leader continues after the snapshot.
        leader.Step(reply);
        var next = Drain(leader).Single(m => m.To == 3 && m.Type == RaftMessageType.Append);
        Assert.Equal(snapshot.Index, next.Index);
        follower.Step(next);
        Assert.Equal(leader.LastIndex, follower.LastIndex);
    }
}

public sealed class LeaseReadTests
{
    [Fact]
    public void Lease_reads_need_check_quorum_and_are_served_without_a_round_while_a_quorum_was_heard()
    {
        var e = Assert.Throws<ArgumentException>(() => new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], LeaseReads = true, CheckQuorum = false }));
        Assert.Contains("needs CheckQuorum", e.Message);

        var n = new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = true, LeaseReads = true, Seed = 4 });
        while (n.Role != Role.Candidate) n.Tick();
        DrainWithReads(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        DrainWithReads(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex)); // commits the no-op
        DrainWithReads(n);
        // No lease yet: nobody has answered a heartbeat round, so the read takes a round.
        Assert.True(n.ReadIndex([4]));
        var round = DrainWithReads(n).Messages.First(m => m.Context > 0).Context;
        n.Step(new Message(RaftMessageType.HeartbeatResponse, 2, 1, n.Term, Context: round));
        Assert.Equal([4], DrainWithReads(n).Reads.Single().Context);
        // Now a quorum answered a round sent at this tick: for an election timeout, reads need no round.
        Assert.True(n.ReadIndex([5]));
        var (messages, reads) = DrainWithReads(n);
        Assert.Equal([5], reads.Single().Context);                // answered at once
        Assert.DoesNotContain(messages, m => m.Context > 0);      // no heartbeat round
        for (var i = 0; i < 10; i++) n.Tick();                   // the lease runs out (and answers to new rounds are missing)
        DrainWithReads(n);
        Assert.True(n.ReadIndex([6]));
        Assert.Empty(DrainWithReads(n).Reads);
    }

}

public sealed class BatchTests
{
    private static RaftNode Leader()
    {
        var n = new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 4, MaxInflightMessages = 8 });
        while (n.Role != Role.Candidate) n.Tick();
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        return n;
    }

    private static RaftNode Node() => new(new RaftOptions { Id = 1, Members = [1, 2, 3] });

    [Fact]
    public void A_batch_of_proposals_goes_to_a_replicating_follower_in_as_many_appends_as_it_needs_and_a_follower_takes_none()
    {
        Assert.Equal(0, Node().ProposeBatch([new byte[] { 1 }, new byte[] { 2 }]));
        var n = Leader();
        Drain(n);
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex)); // 2 now replicating
        Drain(n);
        var first = n.LastIndex + 1;
        var batch = Enumerable.Range(0, 600).Select(i => BitConverter.GetBytes(i)).ToList();
        Assert.Equal(600, n.ProposeBatch(batch.Select(b => (ReadOnlyMemory<byte>)b).ToList()));
        var appends = Drain(n).Where(m => m.Type == RaftMessageType.Append && m.To == 2).ToList();
        Assert.Equal(3, appends.Count);                        // 256 + 256 + 88: the window holds them all
        var sent = appends.SelectMany(m => m.Entries!).ToList();
        Assert.Equal(Enumerable.Range(0, 600).Select(i => first + (ulong)i), sent.Select(e => e.Index));
        Assert.Equal(batch.Select(b => BitConverter.ToInt32(b)), sent.Select(e => BitConverter.ToInt32(e.Data.Span)));
    }

    [Fact]
    public void A_config_change_carries_an_opaque_context_the_core_ignores()
    {
        var n = Leader();
        Drain(n);
        Assert.True(n.ProposeConfigChange(new ConfigChange(ConfigChangeType.AddLearner, 9), [7, 8, 9]));
        Assert.Contains(9UL, n.Learners);
        var ready = n.GetReady()!;
        var entry = ready.Entries.Last(e => e.Kind == EntryKind.Config);  // as persisted and sent
        Assert.Equal(new ConfigChange(ConfigChangeType.AddLearner, 9), ConfigChange.Decode(entry.Data.Span));
        Assert.Equal([7, 8, 9], ConfigChange.Context(entry.Data.Span).ToArray());
        Assert.True(ConfigChange.Context(new ConfigChange(ConfigChangeType.Remove, 3).Encode()).IsEmpty);
    }

    [Fact]
    public void A_batch_for_a_replicating_follower_whose_next_entry_was_compacted_sends_one_snapshot_and_returns()
    {
        // Regression: ProposeBatch kept sending while the follower's progress did not move (a snapshot instead of
        // entries leaves Next where it is), looping for ever on the raft thread.
        var n = new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], ElectionTicks = 10, PreVote = false, CheckQuorum = false, Seed = 4, MaxInflightMessages = 2 });
        while (n.Role != Role.Candidate) n.Tick();
        Drain(n);
        n.Step(new Message(RaftMessageType.VoteResponse, 2, 1, n.Term));
        Drain(n);
        var noop = n.LastIndex;
        n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: noop));
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Index: noop));   // both replicating
        Drain(n);
        for (var i = 0; i < 10; i++) Assert.True(n.Propose([(byte)i]));             // 3's window fills after two
        Drain(n);
        var firstTo3 = noop + 1;
        while (n.Commit < n.LastIndex)
        {
            n.Step(new Message(RaftMessageType.AppendResponse, 2, 1, n.Term, Index: n.LastIndex)); // 2 catches up: commits
            Drain(n);
        }
        n.Compact(n.LastIndex, []);                                                  // 3's next entries are gone
        n.Step(new Message(RaftMessageType.AppendResponse, 3, 1, n.Term, Index: firstTo3)); // frees 3's window
        Drain(n);
        Assert.Equal(1, n.ProposeBatch([new byte[] { 42 }]));                                     // returns (it used to spin)
        var to3 = Drain(n).Where(m => m.To == 3).ToList();
        Assert.True(to3.Count(m => m.Type == RaftMessageType.Snapshot) <= 1);
    }
}
