using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: the raft thread, once per tick. Housekeeping: the disk probe, lease expiry, progress notifications, the
/// address publication, expired forwards, and compaction of the log behind the applied index.
/// </summary>
public sealed partial class Member
{
    private long _diskFree = long.MaxValue;   // as last measured: writes are refused near a full disk
    private DriveInfo? _dataDrive;

    /// <summary>Free bytes on the data directory's file system (statvfs through DriveInfo); unknown: as if plenty.</summary>
    private long MeasureDiskFree()
    {
        try
        {
            return (_dataDrive ??= new DriveInfo(_options.DataDir)).AvailableFreeSpace; // asked of the OS at each call
        }
        catch (Exception e) when (e is IOException or ArgumentException or UnauthorizedAccessException)
        {
            return long.MaxValue;
        }
    }

    private void Housekeeping(long now)
    {
        if (_options.DiskReserveBytes > 0 && _node.Role == Role.Leader) _diskFree = MeasureDiskFree();
        // Requests that waited too long: their outcome is unknown to the client (a write may still apply).
        List<ulong>? expired = null;
        foreach (var (seq, p) in _waiting) if (p.Deadline < now) (expired ??= []).Add(seq);
        if (expired is not null)
        {
            foreach (var seq in expired)
            {
                _waiting.Remove(seq, out var p);
                p!.Waiter!.Fail(ErrorCode.Timeout, "the request was proposed but not applied in time; its outcome is unknown (it may still be applied)");
                p.Return();
            }
        }
        for (var i = 0; i < _readBatches.Count; i++)
        {
            // Reads are retried by clients freely; nothing to expire but rounds that never confirmed (handled on leader change).
        }
        for (var i = 0; i < _adminWaiting.Count;)
        {
            var (_, op) = _adminWaiting[i];
            if (op is AdminOp.Transfer t)
            {
                if (_node.Leader == t.To)
                {
                    t.Complete(this);
                    _adminWaiting.RemoveAt(i);
                    continue;
                }
                if (t.Deadline < now)
                {
                    t.Fail(ErrorCode.Timeout, $"leadership did not move to {t.To:x16} within two election timeouts; check that member is up and caught up");
                    _adminWaiting.RemoveAt(i);
                    continue;
                }
            }
            i++;
        }
        if (_handOver is { } h && (_node.Role != Role.Leader || _handOverDeadline < now))
        {
            h.Done.TrySetResult(_node.Role != Role.Leader);
            _handOver = null;
        }
        _router.ExpireForwarded(now);
        MaybeCompact();
        if (now >= _nextProgressNotify)
        {
            // Watchers that asked for progress notifications learn the revision they are synced to, as etcd does.
            _nextProgressNotify = now + (long)(_sm.Options.WatchProgressInterval.TotalSeconds * _options.Time.TimestampFrequency);
            _sm.Watches.NotifyProgress();
        }
        if (_node.Role == Role.Leader && now >= _nextLeaseCheck)
        {
            _nextLeaseCheck = now + _options.Time.TimestampFrequency / 2;
            foreach (var id in _leases.Expired(_sm))
            {
                var p = new Proposal(Envelope(new KvCommand { LeaseRevoke = id }.Encode(), out var seq), null) { Seq = seq };
                _batch.Clear();
                _batch.Add(p.Data);
                if (_node.ProposeBatch(_batch) == 1) _leases.Revoking(id);
            }
        }
        // Each member publishes its names and client address through the log once it knows a leader.
        if (!_published && _node.Leader != 0 && now >= _publishAt && !_removed)
        {
            _publishAt = now + _options.Time.TimestampFrequency * 2;
            var mine = _directory.Get(Id);
            if (mine is { } m && m.ClientUrl == _options.ClientUrl && m.PeerUrl == _options.PeerUrl && _directory.GrpcUrl(Id) == GrpcUrl && _sm.ClusterMetadata().Any(r => r.Key.AsSpan().SequenceEqual(MemberDirectory.Key(Id))))
            {
                _published = true;
            }
            else
            {
                Publish();
            }
        }
    }

    /// <summary>Entries kept after a compaction for followers a little behind (etcd's SnapshotCatchUpEntries), at most half --snapshot-count.</summary>
    private const int CatchUpEntries = 5_000;

    /// <summary>
    /// Compacts the log once --snapshot-count entries were applied past the last compaction (keeping some for followers
    /// that lag). Checked on ticks, not after every round: ticks fall at a different phase on each member, so members
    /// do not all sync their databases at the same moment and stall the quorum together.
    /// </summary>
    private void MaybeCompact()
    {
        var catchUp = (ulong)Math.Clamp(_options.SnapshotCount / 2, 1, CatchUpEntries);
        if (_appliedIndex <= _node.SnapshotIndex + (ulong)_options.SnapshotCount + catchUp) return;
        // The log may drop only what the database holds durably. Rather than force a commit and a sync of its own
        // (at high rates that was as many extra commits as the backend's own, each writing every index leaf again),
        // it asks for the backend's next commit to be durable, and compacts once that has passed its target.
        var target = _appliedIndex - catchUp;
        var durable = _sm.DurableAppliedIndex;
        if (durable < target) _sm.RequestDurableCommit();
        var to = Math.Min(target, durable);
        if (to > _node.SnapshotIndex + (ulong)_options.SnapshotCount) Compact(to);
    }

    /// <summary>Compacts the log up to <paramref name="index"/>, which the database holds durably: the snapshot record is written and old log segments go.</summary>
    private void Compact(ulong index)
    {
        _node.Compact(index, []);
        var meta = _node.SnapshotMetadata!;
        SnapshotFile.Write(_snapshotMetaPath, meta, [], _options.MasterKey);
        _wal.SaveSnapshot(meta.Index, meta.Term);
        _wal.ReleaseSegments();
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }
}
