using System.Text;

namespace Cairn.Raft.Tests;

/// <summary>
/// A deterministic simulated cluster: an in-memory network that drops, duplicates and reorders messages, partitions
/// and heals, crashes members and restarts them from what they persisted. Like a real transport, it tells the sender's
/// core how each snapshot send ended, and (on two seeds in three) which peers it could not deliver to: on the third,
/// lost appends must be found by probing alone. Checked all along: at most one leader per
/// term, logs that share an index and term are identical up to it, no two members apply different entries at one
/// index; after healing, a leader emerges and every acknowledged proposal is applied everywhere.
/// </summary>
public sealed class SimulationTests
{
    private sealed class Disk
    {
        public HardState State;
        public List<LogEntry> Log = [];
        public (SnapshotMetadata Meta, byte[] Data)? Snapshot;
    }

    /// <summary>The simulated state machine is the list of applied entries; a snapshot is that list's bytes.</summary>
    private static byte[] Encode(List<LogEntry> applied)
    {
        using var ms = new MemoryStream();
        using var w = new BinaryWriter(ms);
        w.Write(applied.Count);
        foreach (var e in applied)
        {
            w.Write(e.Index); w.Write(e.Term); w.Write((byte)e.Kind); w.Write(e.Data.Length); w.Write(e.Data.Span);
        }
        w.Flush();
        return ms.ToArray();
    }

    private static List<LogEntry> Decode(byte[] data)
    {
        using var r = new BinaryReader(new MemoryStream(data));
        var n = r.ReadInt32();
        var list = new List<LogEntry>(n);
        for (var i = 0; i < n; i++)
        {
            var index = r.ReadUInt64(); var term = r.ReadUInt64(); var kind = (EntryKind)r.ReadByte(); var len = r.ReadInt32();
            list.Add(new LogEntry(index, term, r.ReadBytes(len), kind));
        }
        return list;
    }

    private sealed class Cluster
    {
        public readonly Random Rng;
        public readonly ulong[] Ids;
        public readonly ulong[] Initial;
        public readonly Dictionary<ulong, RaftNode?> Nodes = [];
        public readonly Dictionary<ulong, Disk> Disks = [];
        public readonly Dictionary<ulong, List<LogEntry>> Applied = [];
        public readonly List<Message> Network = [];
        public readonly Dictionary<ulong, ulong> LeaderOfTerm = [];
        public readonly Dictionary<ulong, (ulong Term, string Data)> AppliedAt = [];
        public readonly HashSet<string> Acknowledged = [];
        public HashSet<ulong>? Partition; // members on one side; null = healed
        public readonly Dictionary<int, ulong> ReadAsked = [];   // read id → highest index applied anywhere when asked
        public int Reads;
        public int ReadsConfirmed;
        public readonly string Where;

        private readonly bool _guards;
        private readonly bool _reportsUnreachable;
        private readonly int _window;

        public Cluster(int seed, int size)
        {
            Rng = new Random(seed);
            _guards = seed % 2 == 0; // half the seeds run without pre-vote and check-quorum: stale leaders linger
            _reportsUnreachable = seed % 3 != 0;
            _window = seed % 5 == 0 ? 2 : 256; // a small window fills: lost appends must not stall it
            Where = $"seed {seed}, {size} members, pre-vote and check-quorum {(_guards ? "on" : "off")}, unreachable peers {(_reportsUnreachable ? "" : "not ")}reported, window {_window}";
            Ids = [.. Enumerable.Range(1, size + 1).Select(i => (ulong)i)]; // the last one starts outside the cluster
            Initial = [.. Ids.Take(size)];
            foreach (var id in Ids)
            {
                Disks[id] = new Disk();
                Applied[id] = [];
                Start(id, seed);
            }
        }

        public void Start(ulong id, int seed)
        {
            var disk = Disks[id];
            Nodes[id] = new RaftNode(new RaftOptions { Id = id, Members = Initial, ElectionTicks = 10, Seed = seed + Rng.Next(), PreVote = _guards, CheckQuorum = _guards, MaxInflightMessages = _window }, disk.State, [.. disk.Log], disk.Snapshot);
            // The state machine restarts from the snapshot, then the log replays after it.
            Applied[id].Clear();
            if (disk.Snapshot is { } snap) Applied[id].AddRange(Decode(snap.Data));
        }

        private bool Connected(ulong a, ulong b) => Partition is null || Partition.Contains(a) == Partition.Contains(b);

        public void Process(ulong id)
        {
            var node = Nodes[id];
            if (node is null) return;
            var lost = new List<Message>();
            while (node.GetReady() is { } ready)
            {
                var disk = Disks[id];
                if (ready.HardState is { } hs) disk.State = hs;
                if (ready.Snapshot is { } installed)
                {
                    disk.Snapshot = installed;
                    disk.Log.RemoveAll(x => x.Index <= installed.Meta.Index);
                    var restored = Decode(installed.Data);
                    // The snapshot's history must agree with everything applied anywhere.
                    foreach (var e in restored)
                    {
                        if (AppliedAt.TryGetValue(e.Index, out var seen)) Assert.True(seen == (e.Term, Encoding.UTF8.GetString(e.Data.Span)), $"{Where}: snapshot disagrees at index {e.Index}");
                    }
                    Applied[id].Clear();
                    Applied[id].AddRange(restored);
                }
                foreach (var e in ready.Entries)
                {
                    disk.Log.RemoveAll(x => x.Index >= e.Index);
                    disk.Log.Add(e.Detach());           // the node's entries refer to its log memory: a disk keeps its own copy
                }
                foreach (var m in ready.Messages)
                {
                    if (Rng.Next(100) < 5)
                    {
                        lost.Add(m.Detach());                       // dropped: the sender hears of it after this Ready
                        continue;
                    }
                    Network.Add(m.Detach());                        // in flight longer than the Ready: a copy (see Ready)
                    if (Rng.Next(100) < 3) Network.Add(m.Detach());  // duplicated
                }
                foreach (var r in ready.ReadStates)
                {
                    // Linearizable: the read index covers everything applied anywhere before the read was asked.
                    var asked = ReadAsked[BitConverter.ToInt32(r.Context)];
                    Assert.True(r.Index >= asked, $"{Where}: read confirmed at index {r.Index} but index {asked} was already applied when it was asked");
                    ReadsConfirmed++;
                }
                foreach (var e in ready.Committed)
                {
                    var applied = Applied[id];
                    if (e.Index <= (ulong)applied.Count) continue; // replay after restart
                    Assert.True(e.Index == (ulong)applied.Count + 1, $"{Where}: member {id} applied {e.Index} after {applied.Count}");
                    applied.Add(e.Detach());
                    var data = Encoding.UTF8.GetString(e.Data.Span);
                    if (AppliedAt.TryGetValue(e.Index, out var other))
                    {
                        Assert.True(other == (e.Term, data), $"{Where}: index {e.Index} applied as {other} and as {(e.Term, data)}");
                    }
                    else
                    {
                        AppliedAt[e.Index] = (e.Term, data);
                    }
                }
                node.Advance(ready);
                if (node.Role == Role.Leader)
                {
                    if (LeaderOfTerm.TryGetValue(node.Term, out var leader)) Assert.True(leader == id, $"{Where}: members {leader} and {id} both lead term {node.Term}");
                    else LeaderOfTerm[node.Term] = id;
                }
                foreach (var m in lost) Undelivered(m);
                lost.Clear();
            }
        }

        /// <summary>What a transport tells the sender's core when a message did not get through.</summary>
        private void Undelivered(Message m)
        {
            if (Nodes[m.From] is not { } sender) return;
            if (m.Type == RaftMessageType.Snapshot) sender.ReportSnapshot(m.To, succeeded: false);
            if (_reportsUnreachable) sender.ReportUnreachable(m.To);
        }

        /// <summary>Hands <paramref name="m"/> to its recipient, or reports it undelivered when it cannot get there.</summary>
        public void Deliver(Message m)
        {
            if (!Connected(m.From, m.To) || Nodes[m.To] is null)
            {
                Undelivered(m);
                Process(m.From);
                return;
            }
            Nodes[m.To]!.Step(m);
            Process(m.To);
            if (m.Type == RaftMessageType.Snapshot && Nodes[m.From] is { } sender)
            {
                sender.ReportSnapshot(m.To, succeeded: true); // the stream is through (whatever the recipient made of it)
                Process(m.From);
            }
        }

        public void DeliverOne()
        {
            if (Network.Count == 0) return;
            var i = Rng.Next(Network.Count);                          // any order: reordering
            var m = Network[i];
            Network.RemoveAt(i);
            Deliver(m);
        }

        public void CheckLogMatching()
        {
            foreach (var a in Ids)
            {
                foreach (var b in Ids)
                {
                    if (a >= b) continue;
                    // Compare by index: logs may start after different snapshots.
                    var la = Disks[a].Log.ToDictionary(e => e.Index);
                    var lb = Disks[b].Log.ToDictionary(e => e.Index);
                    var common = la.Keys.Where(lb.ContainsKey).OrderDescending().ToList();
                    var top = common.FirstOrDefault(i => la[i].Term == lb[i].Term);
                    foreach (var j in common)
                    {
                        if (j > top) continue;
                        Assert.True(la[j].Term == lb[j].Term && la[j].Data.Span.SequenceEqual(lb[j].Data.Span), $"{Where}: members {a} and {b} share index {top} term {la[top].Term} but differ at {j}");
                    }
                }
            }
        }

        public RaftNode? CurrentLeader() => Nodes.Values.Where(n => n is not null && n.Role == Role.Leader).OrderByDescending(n => n!.Term).FirstOrDefault();
    }

    public static TheoryData<int> Sizes => new() { 3, 5 };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Thousands_of_seeds_keep_raft_safe_and_live(int size)
    {
        var seeds = int.TryParse(Environment.GetEnvironmentVariable("CAIRN_RAFT_SEEDS"), out var s) ? s : 1_000;
        for (var seed = 1; seed <= seeds; seed++) RunSeed(seed * 7919 + size, size);
    }

    private static void RunSeed(int seed, int size)
    {
        var c = new Cluster(seed, size);
        var proposal = 0;
        for (var step = 0; step < 3_000; step++)
        {
            var roll = c.Rng.Next(100);
            if (roll < 45) c.DeliverOne();
            else if (roll < 75)
            {
                var id = c.Ids[c.Rng.Next(c.Ids.Length)];
                c.Nodes[id]?.Tick();
                c.Process(id);
            }
            else if (roll < 84)
            {
                // Any member that believes it leads, stale ones included: they must not answer from an old commit.
                var leaders = c.Nodes.Values.Where(n => n is { Role: Role.Leader }).ToList();
                if (leaders.Count > 0 && leaders[c.Rng.Next(leaders.Count)] is { } reader)
                {
                    var id = c.Reads++;
                    c.ReadAsked[id] = c.AppliedAt.Count == 0 ? 0 : c.AppliedAt.Keys.Max();
                    if (reader.ReadIndex(BitConverter.GetBytes(id))) c.Process(reader.Id);
                }
            }
            else if (roll < 90)
            {
                if (c.CurrentLeader() is { } current)
                {
                    var data = $"p{proposal++}";
                    if (current.Propose(Encoding.UTF8.GetBytes(data))) c.Process(current.Id);
                }
            }
            else if (roll < 93)
            {
                // Crash a member (losing nothing it persisted), or restart one.
                var id = c.Ids[c.Rng.Next(c.Ids.Length)];
                if (c.Nodes[id] is null) c.Start(id, seed);
                else if (c.Nodes.Values.Count(n => n is null) < (size - 1) / 2) c.Nodes[id] = null;
            }
            else if (roll < 94)
            {
                if (c.CurrentLeader() is { } current)
                {
                    if (c.Rng.Next(2) == 0) current.TransferLeadership(c.Ids[c.Rng.Next(c.Ids.Length)]);
                    else
                    {
                        // One membership change: the spare member joins as a learner, is promoted, or someone leaves.
                        var spare = c.Ids[^1];
                        ConfigChange change = current.Learners.Contains(spare) ? new(ConfigChangeType.PromoteLearner, spare)
                            : !current.Voters.Contains(spare) ? new(ConfigChangeType.AddLearner, spare)
                            : new(ConfigChangeType.Remove, spare);
                        try { current.ProposeConfigChange(change); } catch (ArgumentException) { }
                    }
                    c.Process(current.Id);
                }
            }
            else if (roll < 96)
            {
                c.Partition = c.Rng.Next(2) == 0 ? null : [.. c.Ids.Where(_ => c.Rng.Next(2) == 0)];
            }
            if (c.Rng.Next(50) == 0)
            {
                // A member snapshots what it applied and drops that part of its log.
                var id = c.Ids[c.Rng.Next(c.Ids.Length)];
                if (c.Nodes[id] is { } node && c.Applied[id].Count > 0 && (ulong)c.Applied[id].Count > node.SnapshotIndex)
                {
                    var upTo = (ulong)c.Applied[id].Count;
                    var data = Encode(c.Applied[id]);
                    node.Compact(upTo, data);
                    var disk = c.Disks[id];
                    disk.Snapshot = (node.SnapshotMetadata!, data);
                    disk.Log.RemoveAll(e => e.Index <= upTo);
                }
            }
            if (step % 100 == 0) c.CheckLogMatching();
            foreach (var (id, applied) in c.Applied)
            {
                if (c.Nodes[id] is { Role: Role.Leader })
                {
                    foreach (var e in applied)
                    {
                        if (e.Kind == EntryKind.Normal && e.Data.Length > 0) c.Acknowledged.Add(Encoding.UTF8.GetString(e.Data.Span));
                    }
                }
            }
        }

        // Heal: everyone up, no partition, no loss; a leader must emerge and everyone must apply everything acknowledged.
        c.Partition = null;
        foreach (var id in c.Ids) if (c.Nodes[id] is null) c.Start(id, seed);
        for (var round = 0; round < 4_000; round++)
        {
            foreach (var id in c.Ids)
            {
                c.Nodes[id]!.Tick();
                c.Process(id);
            }
            while (c.Network.Count > 0)
            {
                var m = c.Network[0];
                c.Network.RemoveAt(0);
                c.Deliver(m);
            }
            if (c.CurrentLeader() is { } l && round > 50 && l.Voters.Concat(l.Learners).All(id => c.Applied[id].Count == c.Applied[l.Id].Count && c.Nodes[id]!.Commit == l.Commit && l.Commit == l.LastIndex)) break;
        }
        var leader = c.CurrentLeader();
        Assert.True(leader is not null, $"{c.Where}: no leader after healing");
        c.CheckLogMatching();
        // Every member of the final configuration (a member removed along the way need not catch up).
        foreach (var id in leader!.Voters.Concat(leader.Learners))
        {
            var applied = c.Applied[id].Select(e => Encoding.UTF8.GetString(e.Data.Span)).ToHashSet();
            foreach (var ack in c.Acknowledged) Assert.True(applied.Contains(ack), $"{c.Where}: acknowledged {ack} not applied on member {id}; leader {leader.Id} term {leader.Term} commit {leader.Commit} last {leader.LastIndex} voters {string.Join(",", leader.Voters)} learners {string.Join(",", leader.Learners)}; member {id}: role {c.Nodes[id]!.Role} term {c.Nodes[id]!.Term} commit {c.Nodes[id]!.Commit} last {c.Nodes[id]!.LastIndex} voters {string.Join(",", c.Nodes[id]!.Voters)} applied {c.Applied[id].Count}");
        }
    }

    [Fact]
    public void A_lone_member_leads_itself_and_commits()
    {
        var node = new RaftNode(new RaftOptions { Id = 1, Members = [1] });
        for (var i = 0; i < 25 && node.Role != Role.Leader; i++) node.Tick();
        Assert.Equal(Role.Leader, node.Role);
        Assert.True(node.Propose("x"u8.ToArray()));
        var ready = node.GetReady()!;
        node.Advance(ready);
        var again = node.GetReady();
        Assert.NotNull(again);
        Assert.Contains(again!.Committed, e => e.Data.Span.SequenceEqual("x"u8));
    }

    [Fact]
    public void Options_refuse_unsafe_settings()
    {
        Assert.Throws<ArgumentException>(() => new RaftNode(new RaftOptions { Id = 0, Members = [0] }));
        Assert.Throws<ArgumentException>(() => new RaftNode(new RaftOptions { Id = 4, Members = [1, 2, 3], Learners = [3] }));
        var e = Assert.Throws<ArgumentException>(() => new RaftNode(new RaftOptions { Id = 1, Members = [1, 2, 3], HeartbeatTicks = 5, ElectionTicks = 5 }));
        Assert.Contains("must exceed HeartbeatTicks", e.Message);
    }
}
