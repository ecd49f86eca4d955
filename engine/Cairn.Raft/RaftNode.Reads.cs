namespace Cairn.Raft;

/// <summary>ReadIndex (§6.4) and lease reads.</summary>
public sealed partial class RaftNode
{
    /// <summary>
    /// Asks for a linearizable read (§6.4, ReadIndex): the leader notes its commit index and confirms with one heartbeat
    /// round that it still leads; every read waiting at that moment shares the round. The answer comes out as a
    /// <see cref="ReadState"/>. False when this member does not lead (ask <see cref="Leader"/>).
    /// </summary>
    public bool ReadIndex(byte[] context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (Role != Role.Leader) return false;
        if (TermAt(Commit) != Term)
        {
            // Until an entry of its own term commits, the leader does not know the commit index is current.
            _postponedReads.Add((0, context));
            return true;
        }
        StartRead(context);
        return true;
    }

    private void StartRead(byte[] context)
    {
        // A lease read: a quorum answered within this election timeout, and check-quorum guarantees no other leader
        // can have been elected meanwhile (the others ignore votes while they hear from this leader).
        if (Quorum == 1 || (_options.LeaseReads && _ticks < _leaseUntil))
        {
            _readStates.Add(new ReadState(Commit, context));
            return;
        }
        // Reads asked before the caller takes the next Ready share one heartbeat round.
        var sendRound = !_roundOpen;
        var round = NextRound();
        _pendingReads.Add((round, Commit, context));
        if (sendRound)
        {
            foreach (var peer in Peers()) SendHeartbeat(peer, round);
        }
    }

    /// <summary>The open heartbeat round, or a new one stamped with the lease clock.</summary>
    private ulong NextRound()
    {
        if (_roundOpen) return _readRound;
        _readRound++;
        _roundOpen = true;
        _roundSentAt[_readRound] = _ticks;
        if (_roundSentAt.Count > 1024)
        {
            foreach (var old in _roundSentAt.Keys.Where(k => k + 512 < _readRound).ToList()) _roundSentAt.Remove(old);
        }
        return _readRound;
    }

    private void OnReadAck(ulong from, ulong round)
    {
        if (round == 0) return;
        _readAcked[from] = Math.Max(_readAcked.GetValueOrDefault(from), round);
        // The newest round a quorum (the leader included) has answered confirms every read up to it.
        var rounds = new List<ulong>(_voters.Count);
        if (_voters.Contains(Id)) rounds.Add(_readRound);
        foreach (var peer in VoterPeers()) rounds.Add(_readAcked.GetValueOrDefault(peer));
        rounds.Sort();
        var confirmed = rounds[rounds.Count - Quorum];
        // The lease: a quorum heard this leader no earlier than the round went out, and ignores votes for an election timeout.
        if (confirmed > 0 && _roundSentAt.TryGetValue(confirmed, out var sentAt)) _leaseUntil = Math.Max(_leaseUntil, sentAt + _options.ElectionTicks);
        var released = 0;
        foreach (var (r, index, context) in _pendingReads)
        {
            if (r > confirmed) break;
            _readStates.Add(new ReadState(index, context));
            released++;
        }
        _pendingReads.RemoveRange(0, released);
    }
}
