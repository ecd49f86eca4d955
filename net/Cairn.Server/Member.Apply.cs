using System.Buffers.Binary;
using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using CorruptDatabaseException = Cairn.Storage.CorruptDatabaseException;

namespace Cairn.Server;

/// <summary>
/// Owner: the raft thread.
/// Applying committed entries, on the raft thread: one storage transaction per batch, and each outcome handed to
/// whoever waits on it through a sink that makes no object per entry.
/// </summary>
public sealed partial class Member
{
    private readonly List<(ulong Index, ReadOnlyMemory<byte> Command)> _apply = [];
    private readonly List<(ulong Index, ulong Origin, ulong Seq)> _applyOrigins = [];

    private void Apply(IReadOnlyList<LogEntry> committed)
    {
        // Apply stopped on a damaged page: the entries stay in the log (a restart replays them from the database's
        // applied index), and nothing after the damage is applied out of order.
        if (_applyHalt is not null) return;
        var t0 = Stopwatch.GetTimestamp();
        _apply.Clear();
        _applyOrigins.Clear();
        var configChanged = false;
        for (var i = 0; i < committed.Count; i++) // by index: a foreach over the interface would allocate its enumerator
        {
            var e = committed[i];
            var data = e.Data.Span;
            if (e.Kind == EntryKind.Config)
            {
                if (ConfigChange.Decode(data) is { Type: ConfigChangeType.Remove } removal) _removedIds[removal.Member] = 0;
                _apply.Add((e.Index, ConfigCommand(data)));
                configChanged = true;
            }
            else if (data.Length >= 16)
            {
                _apply.Add((e.Index, e.Data[16..]));
                configChanged |= KvCommand.IsClusterCommand(data[16..]); // a member published its addresses
                _applyOrigins.Add((e.Index, BinaryPrimitives.ReadUInt64LittleEndian(data), BinaryPrimitives.ReadUInt64LittleEndian(data[8..])));
            }
            else
            {
                _apply.Add((e.Index, ReadOnlyMemory<byte>.Empty)); // a leader's no-op
            }
        }
        _applyCursor = 0;
        _alarmsApplied = false;
        try
        {
            _sm.ApplyBatch(_apply, new ApplySink(this));
        }
        catch (CorruptDatabaseException e)
        {
            HaltApply(e); // the batch's transaction was rolled back: nothing of it is applied
            return;
        }
        _appliedIndex = committed[^1].Index;
        if (_alarmsApplied && !configChanged) RefreshNoSpace();
        Interlocked.Add(ref Stats.ProposalsApplied, _applyOrigins.Count);
        Interlocked.Add(ref Stats.ApplyTicks, Stopwatch.GetTimestamp() - t0);
        if (configChanged) RefreshDirectory();
        for (var i = 0; i < _adminWaiting.Count;)
        {
            var (index, op) = _adminWaiting[i];
            if (index != 0 && index <= _appliedIndex)
            {
                op.Complete(this);
                _adminWaiting.RemoveAt(i);
            }
            else
            {
                i++;
            }
        }
    }

    private int _applyCursor;   // the next of _applyOrigins to match against an outcome (outcomes come in index order)
    private bool _alarmsApplied; // the batch applied an alarm or a cluster record: the cached alarms are read again

    /// <summary>Answers whoever waits on each applied entry; no object per entry (the sink is a struct over the member).</summary>
    private readonly struct ApplySink(Member member) : IApplySink
    {
        public void Applied(in ApplyOutcome r) => member.OnApplied(r);
    }

    private void OnApplied(in ApplyOutcome r)
    {
        var o = _applyCursor;
        while (o < _applyOrigins.Count && _applyOrigins[o].Index < r.Index) o++;
        _applyCursor = o;
        if (o < _applyOrigins.Count && _applyOrigins[o].Index == r.Index)
        {
            var (_, origin, seq) = _applyOrigins[o];
            if (origin == Id && _waiting.Remove(seq, out var p))
            {
                p.Waiter!.Complete(this, r);
                p.Return();
            }
            if (r.Error is NoSpaceException) _alarmProposed = false;
        }
        if (r.Response is ResponseHeader) _alarmsApplied = true; // an alarm raised or disarmed, or a cluster record (rare)
        if (r.Response is LeaseGrantResponse g && _node.Role == Role.Leader) _leases.Granted(g.Id, g.Ttl);
    }

    /// <summary>A config entry reaches the key space as an update of the member directory (or a no-op).</summary>
    private static ReadOnlyMemory<byte> ConfigCommand(ReadOnlySpan<byte> data)
    {
        var change = ConfigChange.Decode(data);
        var context = ConfigChange.Context(data);
        return change.Type switch
        {
            ConfigChangeType.AddVoter or ConfigChangeType.AddLearner when !context.IsEmpty =>
                new KvCommand { Cluster = (MemberDirectory.Key(change.Member), context.ToArray()) }.Encode(),
            ConfigChangeType.Remove => new KvCommand { Cluster = (MemberDirectory.Key(change.Member), null) }.Encode(),
            _ => ReadOnlyMemory<byte>.Empty,
        };
    }

}
