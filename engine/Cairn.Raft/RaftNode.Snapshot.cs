namespace Cairn.Raft;

/// <summary>Snapshots: compacting the log, and installing a leader's snapshot.</summary>
public sealed partial class RaftNode
{
    /// <summary>Installs a leader's snapshot: the log up to its index is replaced by it (a matching suffix is kept).</summary>
    private void OnSnapshot(Message m)
    {
        Role = Role.Follower;
        Leader = m.From;
        ResetElectionTimer();
        if (m.Snapshot is not { } meta || m.SnapshotData is null || meta.Index <= Commit)
        {
            Send(new Message(RaftMessageType.AppendResponse, Id, m.From, Term, Index: Commit));
            return;
        }
        if (TermAt(meta.Index) == meta.Term && meta.Index <= LastIndex)
        {
            _log.RemoveRange(0, Offset(meta.Index) + 1);
            _arena.Release(meta.Index);
        }
        else
        {
            _log.Clear();
            _arena.ReleaseAll();
        }
        _snapIndex = meta.Index;
        _snapTerm = meta.Term;
        _snapMeta = meta;
        _snapData = m.SnapshotData;
        _toInstall = (meta, m.SnapshotData);
        Commit = meta.Index;
        _applied = meta.Index;
        _stable = Math.Max(_stable, meta.Index);
        if (_stable > LastIndex) _stable = LastIndex;
        RebuildConfig();
        Send(new Message(RaftMessageType.AppendResponse, Id, m.From, Term, Index: meta.Index));
    }

    /// <summary>
    /// The state machine has applied up to <paramref name="index"/> and captured its state as <paramref name="data"/>:
    /// the log up to there is dropped (a follower that needs those entries later gets the snapshot instead).
    /// </summary>
    public void Compact(ulong index, byte[] data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (index <= _snapIndex) return;
        if (index > _applied) throw new ArgumentException($"Index {index} is past what was applied ({_applied}); snapshot only applied state.", nameof(index));
        var (voters, learners) = ConfigAt(index);
        _snapTerm = TermAt(index);
        _log.RemoveRange(0, Offset(index) + 1);
        _arena.Release(index);
        _snapIndex = index;
        _snapMeta = new SnapshotMetadata(index, _snapTerm, voters, learners);
        _snapData = data;
    }
}
