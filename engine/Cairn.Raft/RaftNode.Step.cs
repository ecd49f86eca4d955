using System.Runtime.InteropServices;

namespace Cairn.Raft;

/// <summary>Elections and replication: how the core reacts to time, messages and proposals.</summary>
public sealed partial class RaftNode
{
    /// <summary>Advances time by one tick: followers and candidates may stand for election, a leader sends heartbeats.</summary>
    public void Tick()
    {
        if (Role == Role.Leader)
        {
            _ticks++;
            if (_transferee != 0 && ++_transferElapsed >= _options.ElectionTicks) _transferee = 0; // hand-over did not happen in time
            if (++_electionElapsed >= _options.ElectionTicks)
            {
                _electionElapsed = 0;
                // Check-quorum: a leader cut off from a quorum steps down rather than serve stale reads.
                if (_options.CheckQuorum && ActiveVoters() < Quorum)
                {
                    BecomeFollower(Term, 0);
                    return;
                }
                _recentActive.Clear();
            }
            if (++_heartbeatElapsed >= _options.HeartbeatTicks)
            {
                _heartbeatElapsed = 0;
                var round = NextRound();
                foreach (var peer in Peers()) SendHeartbeat(peer, round);
            }
            return;
        }
        if (!_voters.Contains(Id))
        {
            _electionElapsed = 0; // learners and members being added or removed never stand
            return;
        }
        if (++_electionElapsed >= _timeout)
        {
            if (!Campaigns)
            {
                // Stays a follower (and votes): the timer stays expired, so it is out of any leader's lease and grants
                // votes to others at once.
                _electionElapsed = _timeout;
                return;
            }
            if (_options.PreVote) PreCampaign();
            else Campaign();
        }
    }

    /// <summary>Voters heard from since the last quorum check, this member included (counted without a delegate: it runs every election timeout).</summary>
    private int ActiveVoters()
    {
        var n = _voters.Contains(Id) ? 1 : 0;
        foreach (var id in _recentActive) if (_voters.Contains(id)) n++;
        return n;
    }

    /// <summary>
    /// Appends a command to the log if this member leads; false otherwise (send it to <see cref="Leader"/>). The bytes
    /// are copied into the log: the caller may reuse <paramref name="data"/> as soon as this returns.
    /// </summary>
    public bool Propose(ReadOnlySpan<byte> data)
    {
        if (Role != Role.Leader || _transferee != 0) return false; // no new entries while handing over
        var uncommitted = UncommittedBytes();
        if (uncommitted + data.Length > _options.MaxUncommittedBytes && uncommitted > 0)
        {
            throw new ProposalRefusedException($"The leader holds {uncommitted} uncommitted bytes (limit {_options.MaxUncommittedBytes}); retry once the cluster catches up.");
        }
        Append(LastIndex + 1, Term, data, EntryKind.Normal);
        foreach (var peer in Peers()) SendAppend(peer);
        MaybeCommit();
        return true;
    }

    /// <summary>
    /// Appends several commands at once if this member leads, and sends each follower one append for all of them (the
    /// caller drains its queue of proposals into one call: batching). Returns how many were appended: 0 when this member
    /// does not lead or is handing over; fewer than asked when the uncommitted-bytes limit was reached (the rest are
    /// refused and should be retried later). The bytes are copied into the log, as by <see cref="Propose"/>.
    /// </summary>
    public int ProposeBatch(IReadOnlyList<ReadOnlyMemory<byte>> data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (Role != Role.Leader || _transferee != 0) return 0;
        var uncommitted = UncommittedBytes();
        var taken = 0;
        for (var i = 0; i < data.Count; i++)
        {
            var d = data[i].Span;
            if (uncommitted + d.Length > _options.MaxUncommittedBytes && uncommitted > 0) break;
            uncommitted += d.Length;
            Append(LastIndex + 1, Term, d, EntryKind.Normal);
            taken++;
        }
        if (taken == 0) return 0;
        foreach (var peer in Peers())
        {
            // A follower being replicated to takes the whole batch now, in as many appends as the window allows. Each
            // append carries entries and moves Next on, or leaves the follower in another state (a snapshot went out
            // instead), so the loop ends.
            var pr = _progress[peer];
            do SendAppend(peer);
            while (pr.State == Progress.Mode.Replicate && pr.Next <= LastIndex && pr.CanSendEntries);
        }
        MaybeCommit();
        return taken;
    }

    /// <summary>
    /// Hands leadership to <paramref name="to"/> (thesis §3.10): proposals stop, the target is brought up to date, then
    /// told to stand for election at once. Abandoned if it has not happened within an election timeout. False when
    /// this member does not lead or <paramref name="to"/> is not another member.
    /// </summary>
    public bool TransferLeadership(ulong to)
    {
        if (Role != Role.Leader || to == Id || !_voters.Contains(to)) return false;
        _transferee = to;
        _transferElapsed = 0;
        if (_progress[to].Match == LastIndex) Send(new Message(RaftMessageType.TimeoutNow, Id, to, Term));
        else SendAppend(to);
        return true;
    }

    /// <summary>Takes one message from another member.</summary>
    public void Step(Message m)
    {
        ArgumentNullException.ThrowIfNull(m);
        // Messages from members this one does not know of are still taken: a member that has not yet seen the change
        // adding the current leader must accept its appends to learn of it. Votes are counted only from voters.
        if (m.To != Id || m.From == Id) return;
        if (m.Term > Term)
        {
            if (m.Type is RaftMessageType.Vote or RaftMessageType.PreVote && m.Context != ForcedElection && InLease())
            {
                return; // heard from a leader within the election timeout: do not help unseat it (check-quorum)
            }
            if (m.Type == RaftMessageType.PreVote || (m.Type == RaftMessageType.PreVoteResponse && !m.Reject))
            {
                // Pre-votes speak of a term no one is in yet: they change nobody's term.
            }
            else
            {
                // A higher term always wins (§5.1): step down, and follow the sender if it is the leader.
                BecomeFollower(m.Term, m.Type is RaftMessageType.Append or RaftMessageType.Heartbeat ? m.From : 0);
            }
        }
        else if (m.Term < Term)
        {
            // Stale sender: tell it the current term so it steps down; ignore stale responses.
            if (m.Type == RaftMessageType.Vote) Send(new Message(RaftMessageType.VoteResponse, Id, m.From, Term, Reject: true));
            else if (m.Type == RaftMessageType.PreVote) Send(new Message(RaftMessageType.PreVoteResponse, Id, m.From, Term, Reject: true));
            else if (m.Type == RaftMessageType.Append) Send(new Message(RaftMessageType.AppendResponse, Id, m.From, Term, Reject: true, Index: LastIndex));
            else if (m.Type == RaftMessageType.Heartbeat) Send(new Message(RaftMessageType.HeartbeatResponse, Id, m.From, Term));
            return;
        }
        switch (m.Type)
        {
            case RaftMessageType.Vote: OnVote(m); break;
            case RaftMessageType.VoteResponse: OnVoteResponse(m); break;
            case RaftMessageType.PreVote: OnPreVote(m); break;
            case RaftMessageType.PreVoteResponse: OnPreVoteResponse(m); break;
            case RaftMessageType.Append: OnAppend(m); break;
            case RaftMessageType.AppendResponse: OnAppendResponse(m); break;
            case RaftMessageType.Heartbeat: OnHeartbeat(m); break;
            case RaftMessageType.Snapshot: OnSnapshot(m); break;
            case RaftMessageType.HeartbeatResponse: OnHeartbeatResponse(m); break;
            case RaftMessageType.TimeoutNow:
                if (Role != Role.Leader && Campaigns) Campaign(forced: true); // the leader handed over: no pre-vote, no waiting
                break;
        }
    }

    /// <summary>
    /// The transport could not deliver a message to <paramref name="peer"/> (its link dropped, or its queue was full):
    /// appends pipelined to it are probably lost, so this leader probes it again from what it is known to hold rather
    /// than wait on a window that will never be acknowledged. Ignored by members that do not lead.
    /// </summary>
    public void ReportUnreachable(ulong peer)
    {
        if (Role == Role.Leader && _progress.TryGetValue(peer, out var pr)) pr.Unreachable();
    }

    /// <summary>
    /// The transport finished sending <paramref name="peer"/> the snapshot this leader asked it to send
    /// (<paramref name="succeeded"/>), or gave up. Until this or the follower's acknowledgement, nothing else goes to
    /// that follower, and no second snapshot. Then it is probed: from after the snapshot if it was sent, from what it
    /// is known to hold if not (a new snapshot follows when the entries it needs are still compacted away).
    /// </summary>
    public void ReportSnapshot(ulong peer, bool succeeded)
    {
        if (Role == Role.Leader && _progress.TryGetValue(peer, out var pr)) pr.SnapshotDone(succeeded);
    }

    // The other members, voters first, then learners; and the other voters. Cached, as they are walked on every
    // proposal and acknowledgement, and rebuilt (new arrays: a walk in progress keeps its own) when the configuration changes.
    private ulong[] _peerIds = [];
    private ulong[] _voterPeerIds = [];
    private bool _peersStale = true;

    /// <summary>Everyone the log goes to: voters and learners but this member.</summary>
    private ulong[] Peers()
    {
        if (_peersStale) RefreshPeers();
        return _peerIds;
    }

    private ulong[] VoterPeers()
    {
        if (_peersStale) RefreshPeers();
        return _voterPeerIds;
    }

    private void RefreshPeers()
    {
        _voterPeerIds = [.. _voters.Where(id => id != Id)];
        _peerIds = [.. _voterPeerIds, .. _learners.Where(id => id != Id)];
        _peersStale = false;
    }

    private void Send(Message m) => _outbox.Add(m);

    private void ResetElectionTimer()
    {
        _electionElapsed = 0;
        _timeout = _options.ElectionTicks + _random.Next(_options.ElectionTicks);
    }

    private void BecomeFollower(ulong term, ulong leader)
    {
        _transferee = 0;
        // Reads waiting on this member's leadership cannot be confirmed any more; their callers retry.
        _pendingReads.Clear();
        _postponedReads.Clear();
        _readAcked.Clear();
        _leaseUntil = 0;
        if (term != Term) Vote = 0;
        Term = term;
        Role = Role.Follower;
        Leader = leader;
        ResetElectionTimer();
    }

    private bool InLease() => _options.CheckQuorum && Leader != 0 && _electionElapsed < _options.ElectionTicks;

    private bool UpToDate(Message m) => m.LogTerm > LastTerm || (m.LogTerm == LastTerm && m.Index >= LastIndex);

    /// <summary>Pre-vote: ask whether a quorum would vote in the next term, without raising anyone's term yet.</summary>
    private void PreCampaign()
    {
        Role = Role.PreCandidate;
        Leader = 0;
        _votes.Clear();
        _votes.Add(Id);
        ResetElectionTimer();
        if (_votes.Count >= Quorum)
        {
            Campaign();
            return;
        }
        foreach (var peer in VoterPeers()) Send(new Message(RaftMessageType.PreVote, Id, peer, Term + 1, LogTerm: LastTerm, Index: LastIndex));
    }

    private void OnPreVote(Message m)
    {
        // Granted when the log is up to date; the grant carries the proposed term, a refusal the current one.
        var grant = m.Term > Term && UpToDate(m) && _voters.Contains(m.From);
        Send(new Message(RaftMessageType.PreVoteResponse, Id, m.From, grant ? m.Term : Term, Reject: !grant));
    }

    private void OnPreVoteResponse(Message m)
    {
        if (Role != Role.PreCandidate || m.Reject || m.Term != Term + 1 || !_voters.Contains(m.From)) return;
        _votes.Add(m.From);
        if (_votes.Count >= Quorum) Campaign();
    }

    /// <summary>§5.2: a new term, a vote for itself, and vote requests to everyone.</summary>
    private void Campaign(bool forced = false)
    {
        Term++;
        Role = Role.Candidate;
        Vote = Id;
        Leader = 0;
        _votes.Clear();
        _votes.Add(Id);
        ResetElectionTimer();
        if (_votes.Count >= Quorum)
        {
            BecomeLeader();
            return;
        }
        foreach (var peer in VoterPeers()) Send(new Message(RaftMessageType.Vote, Id, peer, Term, LogTerm: LastTerm, Index: LastIndex, Context: forced ? ForcedElection : 0));
    }

    /// <summary>§5.2 and §5.4.1: one vote per term, only for a candidate whose log is at least as up to date.</summary>
    private void OnVote(Message m)
    {
        var grant = (Vote == 0 || Vote == m.From) && (Leader == 0 || m.Context == ForcedElection) && UpToDate(m) && _voters.Contains(m.From);
        if (grant)
        {
            Vote = m.From;
            ResetElectionTimer();
        }
        Send(new Message(RaftMessageType.VoteResponse, Id, m.From, Term, Reject: !grant));
    }

    private void OnVoteResponse(Message m)
    {
        if (Role != Role.Candidate || m.Reject || !_voters.Contains(m.From)) return;
        _votes.Add(m.From);
        if (_votes.Count >= Quorum) BecomeLeader();
    }

    private void BecomeLeader()
    {
        Role = Role.Leader;
        Leader = Id;
        _heartbeatElapsed = 0;
        _electionElapsed = 0;
        _recentActive.Clear();
        _transferee = 0;
        _progress.Clear();
        foreach (var peer in Peers()) _progress[peer] = new Progress(LastIndex + 1, _options.MaxInflightMessages, _options.MaxInflightBytes);
        // An entry of its own term lets the leader commit what earlier terms left (§5.4.2, §8).
        Append(LastIndex + 1, Term, [], EntryKind.Normal);
        foreach (var peer in Peers()) SendAppend(peer);
        MaybeCommit();
    }

    /// <summary>Sends the next entries to <paramref name="peer"/>, as far as its progress allows (one probe, or the pipelining window).</summary>
    private void SendAppend(ulong peer)
    {
        var pr = _progress[peer];
        if (!pr.CanSend) return;
        if (pr.Next <= _snapIndex)
        {
            // The entries this follower needs are gone from the log: send the snapshot, and nothing more until the
            // follower acknowledges it or the transport reports how the send went (ReportSnapshot).
            Send(new Message(RaftMessageType.Snapshot, Id, peer, Term, LogTerm: _snapTerm, Index: _snapIndex, Commit: Commit, Snapshot: _snapMeta, SnapshotData: _snapData));
            pr.SnapshotSent(_snapIndex);
            return;
        }
        var prev = pr.Next - 1;
        var count = 0;
        long bytes = 0;
        var max = pr.CanSendEntries ? _options.MaxEntriesPerMessage : 0; // a full window lets out only an empty append
        for (var i = pr.Next; i <= LastIndex && count < max; i++)
        {
            var size = At(i).Data.Length;
            if (count > 0 && bytes + size > _options.MaxBytesPerMessage) break;
            bytes += size;
            count++;
        }
        var entries = count > 0 ? _log.GetRange(Offset(prev + 1), count) : [];
        Send(new Message(RaftMessageType.Append, Id, peer, Term, LogTerm: TermAt(prev), Index: prev, Entries: entries, Commit: Commit));
        pr.Sent(prev + (ulong)count, bytes, count);
    }

    /// <summary>A heartbeat carries only the commit index the follower is known to hold entries for, and a read round.</summary>
    private void SendHeartbeat(ulong peer, ulong round) =>
        Send(new Message(RaftMessageType.Heartbeat, Id, peer, Term, Commit: Math.Min(Commit, _progress[peer].Match), Context: round));

    private void OnHeartbeat(Message m)
    {
        Role = Role.Follower;
        Leader = m.From;
        ResetElectionTimer();
        if (m.Commit > Commit && m.Commit <= LastIndex) Commit = m.Commit;
        Send(new Message(RaftMessageType.HeartbeatResponse, Id, m.From, Term, Context: m.Context));
    }

    private void OnHeartbeatResponse(Message m)
    {
        if (Role != Role.Leader || !_progress.TryGetValue(m.From, out var pr)) return;
        _recentActive.Add(m.From);
        OnReadAck(m.From, m.Context);
        pr.Heard();
        // A probe goes out even to a follower that holds everything: its answer moves it back to replicate.
        if (pr.Match < LastIndex || pr.State == Progress.Mode.Probe) SendAppend(m.From);
    }

    private long UncommittedBytes()
    {
        long sum = 0;
        for (var i = Commit + 1; i <= LastIndex; i++) sum += At(i).Data.Length;
        return sum;
    }

    /// <summary>§5.3: accept entries that follow a matching entry, replacing a conflicting suffix; report the match.</summary>
    private void OnAppend(Message m)
    {
        Role = Role.Follower;
        Leader = m.From;
        ResetElectionTimer();
        if (m.Index < Commit)
        {
            // Everything up to the commit index matches already (and may be compacted): report that.
            Send(new Message(RaftMessageType.AppendResponse, Id, m.From, Term, Index: Commit));
            return;
        }
        if (m.Index > LastIndex || TermAt(m.Index) != m.LogTerm)
        {
            // No match: hint the leader to back up to what this log can check. (It still acknowledges a read round:
            // it accepts this leader for this term.)
            Send(new Message(RaftMessageType.AppendResponse, Id, m.From, Term, Reject: true, Index: Math.Min(m.Index == 0 ? 0 : m.Index - 1, LastIndex), Context: m.Context));
            return;
        }
        var entries = m.Entries ?? [];
        var configChanged = false;
        for (var k = 0; k < entries.Count; k++)
        {
            var e = entries[k];
            if (e.Index <= LastIndex)
            {
                if (TermAt(e.Index) == e.Term) continue;
                if (e.Index <= Commit) throw new InvalidOperationException($"Member {Id}: a leader asked to replace committed entry {e.Index} (a safety violation).");
                for (var i = e.Index; i <= LastIndex; i++) configChanged |= At(i).Kind == EntryKind.Config;
                _log.RemoveRange(Offset(e.Index), (int)(LastIndex - e.Index + 1));
                _stable = Math.Min(_stable, e.Index - 1);
            }
            Append(e.Index, e.Term, e.Data.Span, e.Kind);   // the message's bytes are the caller's: the log keeps a copy
            configChanged |= e.Kind == EntryKind.Config;
        }
        if (configChanged) RebuildConfig();
        var matched = m.Index + (ulong)entries.Count;
        if (m.Commit > Commit) Commit = Math.Min(m.Commit, matched);
        Send(new Message(RaftMessageType.AppendResponse, Id, m.From, Term, Index: matched, Context: m.Context));
    }

    private void OnAppendResponse(Message m)
    {
        if (Role != Role.Leader || !_progress.TryGetValue(m.From, out var pr)) return;
        _recentActive.Add(m.From);
        if (m.Reject)
        {
            pr.Rejected(m.Index);
            SendAppend(m.From);
            return;
        }
        pr.Acknowledged(m.Index);
        MaybeCommit();
        if (m.From == _transferee && pr.Match == LastIndex) Send(new Message(RaftMessageType.TimeoutNow, Id, m.From, Term));
        else if (pr.Next <= LastIndex) SendAppend(m.From);
    }

    private readonly List<ulong> _matches = [];

    /// <summary>§5.3, §5.4.2: commit the highest index a quorum has persisted, if it is from this term.</summary>
    private void MaybeCommit()
    {
        var matches = _matches;   // reused: this runs on every acknowledgement
        matches.Clear();
        if (_voters.Contains(Id)) matches.Add(_stable);
        foreach (var peer in VoterPeers()) matches.Add(_progress[peer].Match);
        matches.Sort();
        var n = matches[matches.Count - Quorum];
        var advanced = false;
        if (n > Commit && TermAt(n) == Term)
        {
            Commit = n;
            advanced = true;
        }
        if (!_voters.Contains(Id) && TermAt(Commit) == Term && !PendingConfig())
        {
            BecomeFollower(Term, 0); // the change removing this leader is committed: it steps down
            return;
        }
        if (advanced)
        {
            // Followers learn the new commit index now, not with the next append or heartbeat: a follower whose
            // entries are all on their way gets an empty append carrying it (as etcd's leader does), so its apply —
            // and the watchers and serializable reads it serves — do not wait for the next write or tick.
            foreach (var peer in Peers())
            {
                var pr = _progress[peer];
                if (pr.State != Progress.Mode.Replicate || pr.Next <= LastIndex) continue; // a probe, or an append with entries follows anyway
                var prev = pr.Next - 1;
                Send(new Message(RaftMessageType.Append, Id, peer, Term, LogTerm: TermAt(prev), Index: prev, Entries: [], Commit: Commit));
            }
        }
        if (TermAt(Commit) == Term && _postponedReads.Count > 0)
        {
            var reads = _postponedReads.ToList();
            _postponedReads.Clear();
            foreach (var (_, context) in reads) StartRead(context);
        }
    }

    /// <summary>
    /// The work to do now, or null when there is none. The node hands out the same <see cref="Ready"/> object each
    /// time, refilled: it is valid until the next call (carry it out, then <see cref="Advance"/>, then ask again).
    /// </summary>
    public Ready? GetReady()
    {
        var hs = new HardState(Term, Vote, Commit);
        var unstable = _stable < LastIndex ? (int)(LastIndex - _stable) : 0;
        var applyTo = Math.Min(Commit, LastIndex);
        // Only what is persisted (or persisted by this Ready) is applied.
        var committed = applyTo > _applied ? (int)(applyTo - _applied) : 0;
        if (hs == _persisted && unstable == 0 && _outbox.Count == 0 && committed == 0 && _readStates.Count == 0 && _toInstall is null) return null;
        // One Ready, refilled each time: its lists keep their capacity, and the outbox and read states trade places
        // with the Ready's (the previous Ready is spent once this one is asked for).
        var ready = _ready;
        ready.Snapshot = _toInstall;
        ready.HardState = hs == _persisted ? null : hs;
        ready.EntryList.Clear();
        if (unstable > 0) ready.EntryList.AddRange(CollectionsMarshal.AsSpan(_log).Slice(Offset(_stable + 1), unstable));
        ready.CommittedList.Clear();
        if (committed > 0) ready.CommittedList.AddRange(CollectionsMarshal.AsSpan(_log).Slice(Offset(_applied + 1), committed));
        (ready.MessageList, _outbox) = (_outbox, ready.MessageList);
        _outbox.Clear();
        (ready.ReadStateList, _readStates) = (_readStates, ready.ReadStateList);
        _readStates.Clear();
        _roundOpen = false;
        _toInstall = null;
        return ready;
    }

    /// <summary>Tells the core that a <see cref="Ready"/> was carried out: persisted, sent and applied.</summary>
    public void Advance(Ready ready)
    {
        ArgumentNullException.ThrowIfNull(ready);
        if (ready.HardState is { } hs) _persisted = hs;
        if (ready.Entries.Count > 0 && ready.Entries[^1].Index <= LastIndex && TermAt(ready.Entries[^1].Index) == ready.Entries[^1].Term)
        {
            _stable = Math.Max(_stable, ready.Entries[^1].Index);
        }
        if (ready.Committed.Count > 0) _applied = Math.Max(_applied, ready.Committed[^1].Index);
        _arena.EndRound(); // nothing handed out before this point is in use any more: compacted slabs may be reused
        if (Role == Role.Leader) MaybeCommit();
    }

    /// <summary>Appends an entry to the log, its bytes copied into the log's arena.</summary>
    private void Append(ulong index, ulong term, ReadOnlySpan<byte> data, EntryKind kind) =>
        _log.Add(new LogEntry(index, term, _arena.Copy(data, index), kind));
}
