using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// Owner: the raft thread, on the leader.
/// The strict reconfiguration check (etcd's --strict-reconfig-check, always on): a membership change that would
/// leave the cluster without a quorum of started, reachable voters is refused before it is proposed, with what to do
/// instead. Runs on the raft thread, on the leader.
/// </summary>
public sealed partial class Member
{
    /// <summary>Why <paramref name="c"/> would stop the cluster, or null when it is safe to propose.</summary>
    private string? ReconfigurationRefusal(ConfigChange c)
    {
        var voters = _node.Voters;
        string Name(ulong id) => _directory.Get(id)?.Name ?? id.ToString("x16", null);
        bool Reachable(ulong id) => id == Id || _peers.IsConnected(id);
        // Started: it published its client address (a member does once it has joined), or a link to it is up now.
        bool Started(ulong id) => Reachable(id) || !string.IsNullOrEmpty(_directory.Get(id)?.ClientUrl);
        switch (c.Type)
        {
            case ConfigChangeType.AddVoter:
            {
                var after = voters.Count + 1;
                var started = voters.Count(Started);   // the new member has not started: it is being added
                if (started < Quorum(after))
                {
                    return $"adding {Name(c.Member)} as a voter would leave {started} of {after} voters started, short of the quorum of {Quorum(after)}: " +
                        $"the cluster would stop until it starts. Add it with --learner, start it, then `cairn member promote {Name(c.Member)}`" +
                        (started < voters.Count ? $"; or first start {string.Join(", ", voters.Where(v => !Started(v)).Select(Name))}" : "");
                }
                var down = voters.Where(v => !Reachable(v)).ToList();
                if (down.Count > 0) return $"{string.Join(", ", down.Select(Name))} cannot be reached; bring every voter up before adding one (or add it with --learner)";
                return null;
            }
            case ConfigChangeType.PromoteLearner:
            {
                if (!Started(c.Member)) return $"{Name(c.Member)} has not started yet; start it with --initial-cluster-state existing, let it catch up, then promote it";
                if (!Reachable(c.Member)) return $"{Name(c.Member)} cannot be reached; promote it once it is up";
                var after = voters.Count + 1;
                var reachable = voters.Count(v => Started(v) && Reachable(v)) + 1;
                return reachable < Quorum(after)
                    ? $"promoting {Name(c.Member)} would leave {reachable} of {after} voters reachable, short of the quorum of {Quorum(after)}; bring {string.Join(", ", voters.Where(v => !Reachable(v)).Select(Name))} up first"
                    : null;
            }
            case ConfigChangeType.Remove when voters.Contains(c.Member):
            {
                var after = voters.Count - 1;
                var reachable = voters.Count(v => v != c.Member && Started(v) && Reachable(v));
                return after > 0 && reachable < Quorum(after)
                    ? $"removing {Name(c.Member)} would leave {reachable} of {after} voters reachable, short of the quorum of {Quorum(after)}; bring {string.Join(", ", voters.Where(v => v != c.Member && !Reachable(v)).Select(Name))} up first, " +
                      "or recover from lost quorum with `cairn serve --force-new-cluster` (docs/operations.md)"
                    : null;
            }
            default:
                return null;   // adding a learner or removing one never changes the quorum
        }
    }

    private static int Quorum(int voters) => voters / 2 + 1;

    /// <summary>
    /// `--force-new-cluster` (as etcd's): this member's data becomes a one-member cluster, to recover from a lost quorum.
    /// Entries after the commit index are discarded (they may never have been committed); then removals of every other
    /// voter and learner are appended as committed config entries and synced, so the member elects itself and applies
    /// them like any removal (the member directory forgets the others). Every key and revision is kept.
    /// </summary>
    /// <returns>The log to start the core with, and a line to log saying what was done.</returns>
    internal static (IReadOnlyList<LogEntry> Log, string Note) ForceNewCluster(RaftOptions raft, Wal wal, (SnapshotMetadata Meta, byte[] Data)? snapshot, ulong applied, Func<ulong, string?> nameOf)
    {
        var hs = wal.HardState;
        var snapIndex = snapshot?.Meta.Index ?? 0;
        // What was applied was committed, even where the commit index on disk lags (it is saved without a sync).
        var commit = Math.Max(Math.Max(hs.Commit, applied), snapIndex);
        var kept = new List<LogEntry>();
        ulong term = hs.Term;
        foreach (var e in wal.Entries)
        {
            if (e.Index > commit) break;
            kept.Add(e);
            term = Math.Max(term, e.Term);
        }
        var lastKept = kept.Count > 0 ? Math.Max(kept[^1].Index, snapIndex) : snapIndex;
        var probe = new RaftNode(raft, new HardState(term, hs.Vote, lastKept), kept, snapshot);
        string Name(ulong id) => nameOf(id) ?? id.ToString("x16", null);
        var entries = new List<LogEntry>();
        var next = lastKept + 1;
        if (!probe.Voters.Contains(raft.Id))
        {
            if (!probe.Learners.Contains(raft.Id))
            {
                throw new MemberStartException($"--force-new-cluster: this member is not in its cluster's configuration at index {lastKept} (it was removed); restore the cluster from a snapshot instead (docs/operations.md)");
            }
            entries.Add(new LogEntry(next++, term, new ConfigChange(ConfigChangeType.PromoteLearner, raft.Id).Encode(), EntryKind.Config));
        }
        var others = probe.Voters.Concat(probe.Learners).Where(id => id != raft.Id).Distinct().Order().ToList();
        foreach (var id in others) entries.Add(new LogEntry(next++, term, new ConfigChange(ConfigChangeType.Remove, id).Encode(), EntryKind.Config));
        var discarded = wal.LastIndex > lastKept ? wal.LastIndex - lastKept : 0;
        // An empty entry (a leader's no-op) replaces a discarded tail when there is nothing else to write.
        if (entries.Count == 0 && discarded > 0) entries.Add(new LogEntry(next++, term, Array.Empty<byte>()));
        if (entries.Count > 0) wal.Save(new HardState(term, hs.Vote, entries[^1].Index), entries);
        kept.AddRange(entries);
        var note = others.Count == 0
            ? "--force-new-cluster: already a one-member cluster"
            : $"--force-new-cluster: now a one-member cluster; removed {string.Join(", ", others.Select(Name).Order(StringComparer.Ordinal))} at index {lastKept + 1}";
        if (discarded > 0) note += $"; discarded {discarded} uncommitted log entr{(discarded == 1 ? "y" : "ies")} after index {lastKept}";
        return (kept, note + ". Add members back with `cairn member add`, one at a time, and start them with empty data directories.");
    }
}
