namespace Cairn.Raft;

/// <summary>Membership changes, one member at a time (thesis §4.1).</summary>
public sealed partial class RaftNode
{
    /// <summary>The configuration is the options' plus every config entry in the log, in order (so truncation undoes changes).</summary>
    private void RebuildConfig()
    {
        _peersStale = true;
        _voters.Clear();
        _learners.Clear();
        foreach (var id in _snapMeta?.Voters ?? _options.Members) _voters.Add(id);
        foreach (var id in _snapMeta?.Learners ?? _options.Learners) _learners.Add(id);
        foreach (var e in _log)
        {
            if (e.Kind == EntryKind.Config) ApplyChange(ConfigChange.Decode(e.Data.Span));
        }
        if (Role == Role.Leader)
        {
            foreach (var peer in Peers())
            {
                if (!_progress.ContainsKey(peer)) _progress[peer] = new Progress(LastIndex + 1, _options.MaxInflightMessages, _options.MaxInflightBytes);
            }
            foreach (var gone in _progress.Keys.Where(k => !_voters.Contains(k) && !_learners.Contains(k)).ToList()) _progress.Remove(gone);
        }
    }

    private void ApplyChange(ConfigChange c)
    {
        ApplyChange(_voters, _learners, c);
        _peersStale = true;
    }

    private static void ApplyChange(HashSet<ulong> voters, HashSet<ulong> learners, ConfigChange c)
    {
        switch (c.Type)
        {
            case ConfigChangeType.AddVoter:
            case ConfigChangeType.PromoteLearner:
                learners.Remove(c.Member);
                voters.Add(c.Member);
                break;
            case ConfigChangeType.AddLearner:
                if (!voters.Contains(c.Member)) learners.Add(c.Member);
                break;
            case ConfigChangeType.Remove:
                voters.Remove(c.Member);
                learners.Remove(c.Member);
                break;
        }
    }

    /// <summary>
    /// Proposes one membership change (thesis §4.1: one member at a time). It takes effect on each member as soon as
    /// it is in its log. False when this member does not lead, is handing over, or a change is still uncommitted.
    /// </summary>
    /// <param name="change">The change.</param>
    /// <param name="context">Opaque bytes carried with it in the entry (see <see cref="ConfigChange.Context"/>); the core ignores them.</param>
    /// <exception cref="ArgumentException">The change does not fit the current configuration (e.g. adding a voter twice).</exception>
    public bool ProposeConfigChange(ConfigChange change, byte[]? context = null)
    {
        if (Role != Role.Leader || _transferee != 0) return false;
        for (var i = Commit + 1; i <= LastIndex; i++)
        {
            if (At(i).Kind == EntryKind.Config) return false; // one change at a time
        }
        var ok = change.Type switch
        {
            ConfigChangeType.AddVoter => !_voters.Contains(change.Member) && change.Member != 0,
            ConfigChangeType.AddLearner => !_voters.Contains(change.Member) && !_learners.Contains(change.Member) && change.Member != 0,
            ConfigChangeType.PromoteLearner => _learners.Contains(change.Member),
            ConfigChangeType.Remove => (_voters.Contains(change.Member) && _voters.Count > 1) || _learners.Contains(change.Member),
            _ => false,
        };
        if (!ok) throw new ArgumentException($"{change.Type} {change.Member} does not fit the configuration (voters {string.Join(",", _voters.Order())}, learners {string.Join(",", _learners.Order())}).");
        Append(LastIndex + 1, Term, change.Encode(context), EntryKind.Config);
        RebuildConfig();
        foreach (var peer in Peers()) SendAppend(peer);
        MaybeCommit();
        return true;
    }

    private (List<ulong> Voters, List<ulong> Learners) ConfigAt(ulong index)
    {
        var voters = new HashSet<ulong>(_snapMeta?.Voters ?? _options.Members);
        var learners = new HashSet<ulong>(_snapMeta?.Learners ?? _options.Learners);
        for (var i = _snapIndex + 1; i <= index; i++)
        {
            if (At(i).Kind == EntryKind.Config) ApplyChange(voters, learners, ConfigChange.Decode(At(i).Data.Span));
        }
        return ([.. voters.Order()], [.. learners.Order()]);
    }

    private bool PendingConfig()
    {
        for (var i = Commit + 1; i <= LastIndex; i++)
        {
            if (At(i).Kind == EntryKind.Config) return true;
        }
        return false;
    }
}
