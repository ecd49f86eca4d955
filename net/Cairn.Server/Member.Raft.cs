using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: the raft thread; other threads only enqueue (Deliver, TryPropose, QueueRead, QueueAdmin) and wake it.
/// The raft thread: the only thread that touches the consensus core and the log. Each round it ticks when due, steps
/// the messages that arrived, drains every queued proposal into one append, starts one ReadIndex round for every read
/// waiting, then carries out the core's <see cref="Ready"/> — persist (one fsync for the batch), send, apply the
/// committed entries in one storage transaction — and answers the clients waiting on them.
/// </summary>
public sealed partial class Member
{
    private readonly AutoResetEvent _wake = new(false);
    private readonly ConcurrentQueue<(Message Message, string? SnapshotPath, ReceivedMessage? Holder)> _inbox = new();
    private readonly ConcurrentQueue<Proposal> _proposals = new();
    private readonly ConcurrentQueue<PendingRead> _reads = new();
    private readonly ConcurrentQueue<AdminOp> _admin = new();
    private readonly ConcurrentQueue<(ulong Peer, ulong Term, PeerReport Report)> _peerReports = new();
    private int _pendingProposals;
    private ulong _nextSeq;

    // Owned by the raft thread.
    private readonly Dictionary<ulong, Proposal> _waiting = [];                      // seq → proposal of this member, proposed
    private readonly List<(ulong Index, AdminOp Op)> _adminWaiting = [];             // config changes awaiting apply
    private AdminOp.HandOver? _handOver;
    private long _handOverDeadline;
    private readonly List<ReadOnlyMemory<byte>> _batch = [];
    private readonly List<Proposal> _batchProposals = [];
    private MemberDirectory _directory;
    private ulong _lastLeader;
    private ulong _lastKnownLeader;   // the last leader that was not "none"
    private volatile bool _published;
    private long _publishAt;
    private readonly LeaseClocks _leases;          // on the member's clock (made in the constructor)
    private long _nextLeaseCheck;
    private long _nextProgressNotify;             // a timestamp of the member's clock; 0: at the first housekeeping

    /// <summary>A message from a peer, for the raft thread (with the pooled memory its entries lie in, released once stepped).</summary>
    internal void Deliver(Message m, string? snapshotPath = null) => Deliver(m, null, snapshotPath);

    internal void Deliver(Message m, ReceivedMessage? holder, string? snapshotPath = null)
    {
        _inbox.Enqueue((m, snapshotPath, holder));
        _wake.Set();
    }

    private enum PeerReport : byte
    {
        Unreachable,
        SnapshotSent,
        SnapshotFailed,
    }

    /// <summary>
    /// The transport could not deliver to <paramref name="peer"/> (its link dropped, or its queue was full), for the raft
    /// thread to tell the core (<see cref="RaftNode.ReportUnreachable"/>). It does not wake the thread: nothing goes
    /// to that peer before its next heartbeat answer anyway.
    /// </summary>
    internal void ReportUnreachable(ulong peer) => _peerReports.Enqueue((peer, 0, PeerReport.Unreachable));

    /// <summary>A snapshot this member sent as leader of <paramref name="term"/> reached <paramref name="peer"/>, or did not (<see cref="RaftNode.ReportSnapshot"/>).</summary>
    internal void ReportSnapshot(ulong peer, ulong term, bool succeeded) =>
        _peerReports.Enqueue((peer, term, succeeded ? PeerReport.SnapshotSent : PeerReport.SnapshotFailed));

    /// <summary>Queues a command for the log; false (busy) when the queue is full.</summary>
    internal bool TryPropose(Proposal p)
    {
        if (Interlocked.Increment(ref _pendingProposals) > _options.MaxPendingProposals)
        {
            Interlocked.Decrement(ref _pendingProposals);
            Interlocked.Increment(ref Stats.ProposalsRefused);
            return false;
        }
        p.Deadline = _options.Time.GetTimestamp() + (long)(_options.RequestTimeout.TotalSeconds * _options.Time.TimestampFrequency);
        _proposals.Enqueue(p);
        _wake.Set();
        return true;
    }

    internal void QueueRead(PendingRead r)
    {
        r.Deadline = _options.Time.GetTimestamp() + (long)(_options.RequestTimeout.TotalSeconds * _options.Time.TimestampFrequency);
        _reads.Enqueue(r);
        _wake.Set();
    }

    internal void QueueAdmin(AdminOp op)
    {
        _admin.Enqueue(op);
        _wake.Set();
    }

    /// <summary>The entry bytes for a command: this member's id and a sequence number (so the proposer can find its waiter when it applies), then the command.</summary>
    internal byte[] Envelope(ReadOnlySpan<byte> command, out ulong seq)
    {
        var data = new byte[EnvelopeBytes + command.Length];
        command.CopyTo(data.AsSpan(EnvelopeBytes));
        seq = SealEnvelope(data);
        return data;
    }

    /// <summary>Bytes before the command in every entry this member proposes: its id and a sequence number.</summary>
    internal const int EnvelopeBytes = 16;

    /// <summary>Writes the envelope into the first <see cref="EnvelopeBytes"/> of <paramref name="entry"/>; returns its sequence number.</summary>
    internal ulong SealEnvelope(Span<byte> entry)
    {
        var seq = Interlocked.Increment(ref _nextSeq);
        BinaryPrimitives.WriteUInt64LittleEndian(entry, Id);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[8..], seq);
        return seq;
    }

    private void RaftLoop()
    {
        var tick = (long)(_options.HeartbeatInterval.TotalSeconds * Stopwatch.Frequency);
        var nextTick = Stopwatch.GetTimestamp() + tick;
        try
        {
            while (!_stopping.IsCancellationRequested)
            {
                var now = Stopwatch.GetTimestamp();
                if (now < nextTick) _wake.WaitOne(TimeSpan.FromSeconds((nextTick - now) / (double)Stopwatch.Frequency));
                now = Stopwatch.GetTimestamp();
                var ticked = false;
                if (now >= nextTick)
                {
                    _node.Tick();
                    ticked = true;
                    nextTick = now - nextTick > 5 * tick ? now + tick : nextTick + tick; // after a long stall, do not burst
                }
                while (_inbox.TryDequeue(out var item))
                {
                    try
                    {
                        Step(item.Message, item.SnapshotPath);
                    }
                    finally
                    {
                        item.Holder?.Release();   // the core copied what it keeps into its own log
                    }
                }
                while (_peerReports.TryDequeue(out var report))
                {
                    if (report.Report == PeerReport.Unreachable) _node.ReportUnreachable(report.Peer);
                    else if (report.Term == _node.Term) _node.ReportSnapshot(report.Peer, report.Report == PeerReport.SnapshotSent); // not one from an earlier leadership
                }
                ProposeQueued();
                StartReads();
                RunAdmin();
                while (_node.GetReady() is { } ready) Carry(ready);
                ServeReads();
                if (ticked)
                {
                    Housekeeping(_options.Time.GetTimestamp()); // paced by real ticks, deadlines on the member's clock
                    TendDamage(_options.Time.GetTimestamp());
                }
                if (_sm.CommitFailure is not null) _sm.ThrowIfCommitFailed(); // a background backend commit failed: stop, as for a failed write here
                PublishView();
                Volatile.Write(ref Stats.RaftThreadAllocatedBytes, GC.GetAllocatedBytesForCurrentThread());
            }
        }
        catch (Exception e)
        {
            // The disk failed under the log or the database (or a bug surfaced): nothing more can be made durable
            // safely. Stop this member rather than acknowledge what might not survive; the process stays up.
            Failed = true;
            Log($"fatal: {e}; stopping this member");
            _ = Task.Run(() => StopAsync(handOver: false));
        }
    }

    private void Step(Message m, string? snapshotPath)
    {
        if (m.Type == RaftMessageType.Snapshot && snapshotPath is not null)
        {
            _node.Step(m);
            var ready = _node.GetReady();
            if (ready?.Snapshot is { } snap && snap.Meta.Index == m.Snapshot!.Index)
            {
                InstallSnapshot(snap.Meta, snapshotPath);
            }
            else
            {
                TryDelete(snapshotPath);
            }
            if (ready is not null) Carry(ready, snapshotInstalled: true);
            return;
        }
        _node.Step(m);
    }

    private void InstallSnapshot(SnapshotMetadata meta, string path)
    {
        SnapshotInfo info;
        try
        {
            info = _sm.InstallSnapshot(path);
        }
        catch (ArgumentException e)
        {
            // The store already holds more of the same committed log than the dump (it installed a later dump
            // before): keep it; the entries after the snapshot index are skipped up to what it holds.
            Log($"kept the local state over a snapshot at index {meta.Index}: {e.Message}");
            TryDelete(path);
            info = new SnapshotInfo(_sm.AppliedIndex, _sm.Revision, 0);
        }
        _appliedIndex = meta.Index; // the core hands out entries after it again; the store skips what it already holds
        SnapshotFile.Write(_snapshotMetaPath, meta, [], _options.MasterKey);
        _wal.SaveSnapshot(meta.Index, meta.Term);
        _wal.ReleaseSegments();
        RefreshDirectory(fromSnapshot: true);
        Interlocked.Increment(ref Stats.SnapshotsInstalled);
        Log($"installed a snapshot at index {meta.Index} (state applied to {info.AppliedIndex}, revision {info.Revision})");
    }

    private void ProposeQueued()
    {
        if (_proposals.IsEmpty) return;
        _batch.Clear();
        _batchProposals.Clear();
        var leader = _node.Role == Role.Leader && _node.Transferee == 0;
        while (_proposals.TryDequeue(out var p))
        {
            Interlocked.Decrement(ref _pendingProposals);
            if (!leader)
            {
                p.Waiter?.Fail(ErrorCode.NoLeader, "this member stopped leading before the request was proposed (it was not applied); retry");
                p.Return();
                continue;
            }
            if (_options.DiskReserveBytes > 0 && p.Waiter is RequestWaiter && (p.AddsData ? _diskFree < _options.DiskReserveBytes : _diskFree < _options.DiskReserveBytes / 4))
            {
                // The disk is nearly full: refuse before proposing (a write that reached the log but not the disk would
                // stop the member). Nothing was proposed: the client may retry once space is freed.
                Interlocked.Increment(ref Stats.DiskFullRefusals);
                p.Waiter.Fail(ErrorCode.NoSpace, $"the leader's disk is nearly full ({_diskFree} bytes free under {_options.DataDir}, keeping {_options.DiskReserveBytes} in reserve; --disk-reserve-bytes): free space there; the write was not applied");
                p.Return();
                continue;
            }
            if (p.AddsData && (_noSpaceRaised || _sm.Storage.DataSize + 2L * p.Data.Length > QuotaBytes))
            {
                // The space check is made where writes are proposed; the alarm itself goes through the log so every member
                // raises it at the same index. The write that finds the quota reached is refused here, before the log, as
                // is every write that adds data while the alarm is raised: a refused write never becomes an entry.
                if (!_noSpaceRaised && !_alarmProposed)
                {
                    _batch.Add(Envelope(new KvCommand { NoSpaceAlarm = true }.Encode(), out _));
                    _batchProposals.Add(new Proposal([], null));
                    _alarmProposed = true;
                    Log($"storage quota reached ({_sm.Storage.DataSize} bytes in use of {QuotaBytes}): raising the NOSPACE alarm");
                }
                Interlocked.Increment(ref Stats.ProposalsRefused);
                p.Waiter?.Fail(ErrorCode.NoSpace, $"database space exceeded (NOSPACE alarm: {_sm.Storage.DataSize} bytes in use of a quota of {QuotaBytes}): the write was refused before it reached the log (nothing was applied); deletes, compaction and defragmentation still work — free space, then `cairn alarm disarm` (or add units: `cairn scale --units N`)");
                p.Return();
                continue;
            }
            _batch.Add(p.Data);
            _batchProposals.Add(p);
        }
        if (_batch.Count == 0) return;
        int taken;
        try
        {
            taken = _node.ProposeBatch(_batch);
        }
        catch (ProposalRefusedException e)
        {
            taken = 0;
            foreach (var p in _batchProposals)
            {
                p.Waiter?.Fail(ErrorCode.Busy, e.Message);
                p.Return();
            }
            return;
        }
        for (var i = 0; i < _batchProposals.Count; i++)
        {
            var p = _batchProposals[i];
            if (i < taken)
            {
                if (p.Waiter is not null) _waiting[p.Seq] = p;
            }
            else
            {
                Interlocked.Increment(ref Stats.ProposalsRefused);
                p.Waiter?.Fail(ErrorCode.Busy, "the leader holds too many uncommitted entries (a follower is slow or down); retry with backoff");
                p.Return();
            }
        }
    }

    private bool _alarmProposed;
    private ulong _appliedIndex;

    private void RunAdmin()
    {
        while (_admin.TryDequeue(out var op))
        {
            switch (op)
            {
                case AdminOp.Change c:
                    try
                    {
                        if (_node.Role == Role.Leader && ReconfigurationRefusal(c.ChangeToMake) is { } refusal)
                        {
                            c.Fail(ErrorCode.MemberChange, refusal);
                            break;
                        }
                        if (!_node.ProposeConfigChange(c.ChangeToMake, c.Context))
                        {
                            c.Fail(_node.Role == Role.Leader ? ErrorCode.MemberChange : ErrorCode.NoLeader,
                                _node.Role == Role.Leader ? "another membership change is still in progress; retry when it has committed" : "this member is not the leader; retry");
                            break;
                        }
                        _adminWaiting.Add((_node.LastIndex, c));
                    }
                    catch (ArgumentException e)
                    {
                        c.Fail(ErrorCode.MemberChange, e.Message);
                    }
                    break;
                case AdminOp.Transfer t when t.To == Id && _node.Role == Role.Leader:
                    t.Complete(this); // already leads
                    break;
                case AdminOp.Transfer t:
                    if (!_node.TransferLeadership(t.To))
                    {
                        t.Fail(_node.Role == Role.Leader ? ErrorCode.MemberChange : ErrorCode.NoLeader,
                            _node.Role == Role.Leader ? $"member {t.To:x16} is not a voter of this cluster" : "this member is not the leader; retry");
                        break;
                    }
                    _adminWaiting.Add((0, t));
                    t.Deadline = _options.Time.GetTimestamp() + (long)(_options.ElectionTimeout.TotalSeconds * 2 * _options.Time.TimestampFrequency);
                    break;
                case AdminOp.HandOver h:
                    var target = _node.Voters.Where(v => v != Id).OrderBy(v => v).FirstOrDefault();
                    if (target == 0 || !_node.TransferLeadership(target))
                    {
                        h.Done.TrySetResult(false);
                        break;
                    }
                    h.Target = target;
                    _handOver = h;
                    _handOverDeadline = _options.Time.GetTimestamp() + (long)(_options.ElectionTimeout.TotalSeconds * 2 * _options.Time.TimestampFrequency);
                    break;
            }
        }
    }

    /// <summary>Carries out a Ready: persist, send, apply, in that order (the core's contract), then advance.</summary>
    private void Carry(Ready ready, bool snapshotInstalled = false)
    {
        Interlocked.Increment(ref Stats.ReadyBatches);
        if (ready.Snapshot is { } snap && !snapshotInstalled)
        {
            // Only a snapshot message delivered with its data file yields one; anything else is a protocol slip.
            Log($"ignoring a snapshot at index {snap.Meta.Index} that arrived without its data");
        }
        // A leader's appends and heartbeats promise nothing about its own disk (it counts its own log towards a commit
        // only once persisted), so they leave before its fsync and the followers persist in parallel (thesis §10.2.1).
        // Everything else — votes, acknowledgements — waits for the state it promises to be on disk.
        var early = _node.Role == Role.Leader && ready.Messages.Count > 0 && AllLeaderMessages(ready.Messages);
        if (early) _peers.Send(ready.Messages);
        if (ready.HardState is not null || ready.Entries.Count > 0)
        {
            // Term, vote and entries are promises that must be on disk; a new commit index alone is not (after a crash
            // it is learnt again from the leader), so it is written without waiting for the disk, as etcd does.
            var saved = _wal.HardState;
            var mustSync = ready.Entries.Count > 0 || ready.HardState is not { } hs || hs.Term != saved.Term || hs.Vote != saved.Vote;
            var t0 = Stopwatch.GetTimestamp();
            _wal.Save(ready.HardState, ready.Entries, mustSync);
            Interlocked.Add(ref Stats.WalSyncTicks, Stopwatch.GetTimestamp() - t0);
        }
        if (!early && ready.Messages.Count > 0) _peers.Send(ready.Messages);
        if (ready.Committed.Count > 0) Apply(ready.Committed);
        for (var i = 0; i < ready.ReadStates.Count; i++)
        {
            var rs = ready.ReadStates[i];
            var context = BinaryPrimitives.ReadUInt64LittleEndian(rs.Context);
            if (_readRounds.Remove(context, out var reads)) _readBatches.Add((rs.Index, reads));
        }
        _node.Advance(ready);
        var leader = _node.Leader;
        if (leader != _lastLeader)
        {
            _lastLeader = leader;
            Interlocked.Increment(ref Stats.LeaderChanges);
            if (leader == Id)
            {
                try
                {
                    _leases.Reset(_sm.Leases());
                }
                catch (CorruptDatabaseException e)
                {
                    OnDamage(e, "reading the leases on becoming leader"); // it hands leadership over at the next tick
                }
                _alarmProposed = false;
            }
            if (leader != 0 && _lastKnownLeader != 0 && leader != _lastKnownLeader)
            {
                // Requests forwarded to the old leader will not be answered by it: their outcome is unknown now, not
                // after the request timeout. (A blip — no leader, then the same one again — changes nothing.)
                _router.FailForwarded(ErrorCode.Timeout, "leadership changed while the request was with the old leader; its outcome is unknown (it may have been applied)",
                    except: Protocol.MessageType.MoveLeader); // a move's answer comes once leadership has moved
            }
            if (leader != 0) _lastKnownLeader = leader;
            Log(leader == 0 ? "no leader" : leader == Id ? $"leading in term {_node.Term}" : $"following {_directory.Get(leader)?.Name ?? leader.ToString("x16", null)} in term {_node.Term}");
        }
        if (_node.Role != Role.Leader && _readRounds.Count > 0)
        {
            foreach (var reads in _readRounds.Values) foreach (var r in reads) r.Fail(ErrorCode.NoLeader, "leadership changed before the read was confirmed; retry");
            _readRounds.Clear();
        }
    }

    private static bool AllLeaderMessages(IReadOnlyList<Message> messages)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            if (messages[i].Type is not (RaftMessageType.Append or RaftMessageType.Heartbeat or RaftMessageType.Snapshot or RaftMessageType.TimeoutNow)) return false;
        }
        return true;
    }

    /// <summary>Publishes the figures other threads read: the counters in place, and a new standing record only when an election or a membership change moved it (an idle loop, and a batch, allocate nothing).</summary>
    private void PublishView()
    {
        var s = _standing;
        var learner = _node.Learners.Contains(Id);
        if (s.Role != _node.Role || s.Leader != _node.Leader || s.Term != _node.Term || s.Voters != _node.Voters.Count || s.IsLearner != learner || s.Removed != _removed)
        {
            _standing = new Standing(_node.Role, _node.Leader, _node.Term, _node.Voters.Count, learner, _removed);
        }
        Volatile.Write(ref _publishedLastIndex, (long)_node.LastIndex);
        Volatile.Write(ref _publishedCommit, (long)_node.Commit);
        Volatile.Write(ref _publishedApplied, (long)_appliedIndex);
        Volatile.Write(ref _publishedRevision, _sm.Watches.PublishedRevision);
    }

    /// <summary>
    /// Answers everyone still waiting when the member stops. What was never proposed gets <paramref name="code"/> (safe
    /// to retry); what is in the log, or was forwarded, may still commit under the next leader: its outcome is unknown.
    /// </summary>
    private void FailAllWaiters(ErrorCode code, string message)
    {
        const string unknown = "the member stopped before the request applied; its outcome is unknown (it may still be applied by the next leader)";
        foreach (var p in _waiting.Values) p.Waiter?.Fail(ErrorCode.Timeout, unknown);
        _waiting.Clear();
        while (_proposals.TryDequeue(out var p)) p.Waiter?.Fail(code, message);
        while (_reads.TryDequeue(out var r)) r.Fail(code, message);
        foreach (var reads in _readRounds.Values) foreach (var r in reads) r.Fail(code, message);
        foreach (var (_, reads) in _readBatches) foreach (var r in reads) r.Fail(code, message);
        foreach (var (_, op) in _adminWaiting) op.Fail(ErrorCode.Timeout, unknown);
        _router.FailForwarded(ErrorCode.Timeout, unknown);
    }

}
