using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: whichever thread found the damage reports it; the raft thread acts on it (alarm, hand-over, halt).
/// A damaged database while serving (docs/server.md, "A damaged database"). A page that fails its tag or checksum
/// answers the request that needed it with Corrupt; the member logs the page once, raises the CORRUPT alarm through
/// the log (so every member lists it and refuses client writes, as etcd does), stops standing for election and hands
/// leadership to a healthy member. If applying committed entries runs into the damage, the member stops applying —
/// it keeps its log and its vote, but serves nothing it would have to read from a state it could not bring up to date.
/// </summary>
public sealed partial class Member
{
    /// <summary>Cluster-metadata keys of CORRUPT alarms: the prefix, then the damaged member's id in 16 hex digits; the value says what was found.</summary>
    internal const string CorruptAlarmPrefix = "alarm/corrupt/";

    private readonly ConcurrentDictionary<long, string> _damagedPages = new();   // every damaged page found, each logged once
    private volatile string? _damage;          // the first damage found in this member's database (null: none known)
    private volatile string? _applyHalt;       // why apply stopped (null: it applies)
    private volatile (ulong Member, string Detail)[] _corruptAlarms = [];        // CORRUPT alarms in the applied state
    private volatile bool _noSpaceRaised;      // the NOSPACE alarm in the applied state (read on the write path without a transaction)
    private long _nextAlarmRaise;              // raft thread: when this member asks for its alarm again
    private long _nextHandOver;                // raft thread: when a damaged leader tries to hand over again
    private int _handOverAttempt;              // raft thread: which healthy voter the next attempt asks

    /// <summary>Whether this member found its database damaged (it raised the CORRUPT alarm and does not lead).</summary>
    internal bool Damaged => _damage is not null;

    /// <summary>Whether apply stopped on a damaged page.</summary>
    internal bool ApplyHalted => _applyHalt is not null;

    private string ReplaceAdvice =>
        $"Replace this member's data: `cairn member remove {Name}`, empty its --data-dir, `cairn member add {Name} --peer-urls {_options.PeerUrl}`, " +
        "start it with --initial-cluster-state existing (it receives a snapshot), then `cairn alarm disarm`";

    /// <summary>
    /// A read (of a request, of apply, of the scrub) ran into a damaged page: logs the page the first time, and marks the
    /// member damaged — the raft thread then raises the alarm and moves leadership away. Any thread.
    /// </summary>
    internal void OnDamage(CorruptDatabaseException e, string foundBy)
    {
        if (_damagedPages.TryAdd(e.PageNumber, e.Message))
        {
            Interlocked.Increment(ref Stats.DamagedPages);
            Log($"database damaged: {_sm.Storage.Path} {e.Message} (found by {foundBy}); raising the CORRUPT alarm, serving what is intact, not leading. {ReplaceAdvice}.");
        }
        if (_damage is null)
        {
            _damage = e.Message;
            _wake.Set();
        }
    }

    /// <summary>The answer to a request that ran into a damaged page.</summary>
    private string CorruptAnswer(CorruptDatabaseException e) =>
        $"member {Name}'s database is damaged: {e.Message}; the request was not served (nothing was applied). Read from another member. " +
        "The member raised the CORRUPT alarm (`cairn alarm list`): replace its data, then `cairn alarm disarm`";

    /// <summary>Answers a request that ran into a damaged page, and notes the damage.</summary>
    internal void RefuseDamaged(Responder r, MessageType type, ulong id, CorruptDatabaseException e, string foundBy)
    {
        OnDamage(e, foundBy);
        Refuse(r, type, id, ErrorCode.Corrupt, CorruptAnswer(e));
    }

    /// <summary>Why this member serves no reads from its applied state (apply stopped on damage), or null.</summary>
    internal string? StaleRefusal() => _applyHalt is { } why
        ? $"member {Name} stopped applying the log at index {_appliedIndex + 1} because its database is damaged ({why}): its data is out of date and it serves no reads. Read from another member"
        : null;

    /// <summary>
    /// Why client writes are refused now, or null: this member's database is damaged, or a member's CORRUPT alarm is
    /// raised. As etcd does under CORRUPT, the whole cluster refuses them until the alarm is disarmed.
    /// </summary>
    private string? CorruptRefusal()
    {
        if (_damage is { } damage)
        {
            return $"member {Name}'s database is damaged ({damage}): client writes are refused cluster-wide while the CORRUPT alarm is raised (nothing was applied). " +
                "Replace the damaged member's data, then `cairn alarm disarm`";
        }
        var alarms = _corruptAlarms;
        if (alarms.Length == 0) return null;
        var (member, detail) = alarms[0];
        return $"the CORRUPT alarm is raised: member {_directory.Get(member)?.Name ?? member.ToString("x16", null)}'s database is damaged ({detail}); client writes are refused " +
            "cluster-wide until its data is replaced and the alarm disarmed (`cairn alarm list`, `cairn alarm disarm`); nothing was applied";
    }

    private static byte[] CorruptAlarmKey(ulong member) => Encoding.UTF8.GetBytes($"{CorruptAlarmPrefix}{member:x16}");

    /// <summary>Reads the alarms from the applied state (at start, after apply changed cluster records or an alarm, after a snapshot).</summary>
    private void RefreshAlarms()
    {
        var list = new List<(ulong, string)>();
        foreach (var (key, value) in _sm.ClusterMetadata())
        {
            var k = Encoding.UTF8.GetString(key);
            if (k.StartsWith(CorruptAlarmPrefix, StringComparison.Ordinal)
                && ulong.TryParse(k.AsSpan(CorruptAlarmPrefix.Length), System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture, out var id))
            {
                list.Add((id, Encoding.UTF8.GetString(value)));
            }
        }
        _corruptAlarms = [.. list];
        RefreshNoSpace();
    }

    private void RefreshNoSpace()
    {
        _noSpaceRaised = _sm.NoSpaceAlarm;
        if (_noSpaceRaised) _alarmProposed = false; // applied: after a disarm it may be proposed again
    }

    /// <summary>The alarms as `cairn alarm list` shows them: NOSPACE (member 0: the cluster), then each CORRUPT alarm (this member's own at once, before it is applied).</summary>
    internal List<Alarm> AlarmList()
    {
        var alarms = new List<Alarm>();
        if (_sm.NoSpaceAlarm) alarms.Add(new Alarm(0, AlarmType.NoSpace));
        foreach (var (member, _) in _corruptAlarms) alarms.Add(new Alarm(member, AlarmType.Corrupt));
        if (_damage is not null && !alarms.Exists(a => a.MemberId == Id && a.Type == AlarmType.Corrupt)) alarms.Add(new Alarm(Id, AlarmType.Corrupt));
        return alarms;
    }

    /// <summary>
    /// The leader serves an AlarmRaise (a member's own, or one a follower forwarded): proposes the alarm's record unless it
    /// is raised already, so a member that asks again and again (one whose apply stopped cannot see it applied) adds
    /// nothing to the log.
    /// </summary>
    internal void RaiseAlarmRequest(Responder r, ulong id, ref PayloadReader reader)
    {
        var member = reader.U64();
        var type = (AlarmType)reader.U8();
        var detail = reader.String();
        reader.End();
        if (type != AlarmType.Corrupt) throw new ProtocolException(ErrorCode.InvalidArgument, $"members raise CORRUPT alarms (type {(byte)AlarmType.Corrupt}) through AlarmRaise, not type {(byte)type}");
        if (Array.Exists(_corruptAlarms, a => a.Member == member))
        {
            WriteHeaderOnly(r, MessageType.AlarmRaise, id);
            return;
        }
        Log($"raising the CORRUPT alarm of member {_directory.Get(member)?.Name ?? member.ToString("x16", null)}: {detail}");
        var data = Envelope(new KvCommand { Cluster = (CorruptAlarmKey(member), Encoding.UTF8.GetBytes(detail)) }.Encode(), out var seq);
        if (!TryPropose(new Proposal(data, new RequestWaiter(r, MessageType.AlarmRaise, id)) { Seq = seq }))
        {
            Refuse(r, MessageType.AlarmRaise, id, ErrorCode.Busy, $"the leader has {_options.MaxPendingProposals} proposals queued; retry with backoff");
        }
    }

    /// <summary>
    /// Disarming clears every CORRUPT alarm too (as `etcdctl alarm disarm` does): their records are deleted through the
    /// log before the entry the client waits on. A member that still knows of damage raises its alarm again.
    /// </summary>
    private void DisarmCorruptAlarms()
    {
        foreach (var (member, _) in _corruptAlarms)
        {
            var data = Envelope(new KvCommand { Cluster = (CorruptAlarmKey(member), null) }.Encode(), out var seq);
            if (!TryPropose(new Proposal(data, null) { Seq = seq }))
            {
                throw new ProtocolException(ErrorCode.Busy, $"the leader has {_options.MaxPendingProposals} proposals queued; retry the disarm with backoff");
            }
            Log($"disarming the CORRUPT alarm of member {_directory.Get(member)?.Name ?? member.ToString("x16", null)} at a client's request");
        }
    }

    /// <summary>
    /// Raft thread, each tick: a damaged member does not stand for election (when another voter could lead), hands
    /// leadership to a healthy voter when it leads, and asks the leader to raise its CORRUPT alarm until it is applied.
    /// </summary>
    private void TendDamage(long now)
    {
        if (_damage is not { } damage) return;
        var others = _node.Voters.Count > 1;
        _node.Campaigns = !others;
        if (_node.Role == Role.Leader && others && _node.Transferee == 0 && _handOver is null && now >= _nextHandOver)
        {
            _nextHandOver = now + (long)(_options.ElectionTimeout.TotalSeconds * 2 * _options.Time.TimestampFrequency);
            var healthy = _node.Voters.Where(v => v != Id && !Array.Exists(_corruptAlarms, a => a.Member == v)).Order().ToList();
            if (healthy.Count > 0)
            {
                var target = healthy[_handOverAttempt++ % healthy.Count];
                if (_node.TransferLeadership(target)) Log($"handing leadership to {_directory.Get(target)?.Name ?? target.ToString("x16", null)}: this member's database is damaged");
            }
        }
        if (Array.Exists(_corruptAlarms, a => a.Member == Id) || now < _nextAlarmRaise || _node.Leader == 0) return;
        _nextAlarmRaise = now + _options.Time.TimestampFrequency * 2;
        using var w = new FrameWriter(256);
        w.BeginFrame(MessageType.AlarmRaise, FrameFlags.None, 0);
        w.U64(Id);
        w.U8((byte)AlarmType.Corrupt);
        w.String(damage); // "page N: what failed" (the record's key names the member)
        w.EndFrame();
        Frame.TryReadHeader(w.WrittenSpan, out var h);
        var responder = new SelfResponder(this, _ => { });
        if (IsLeader)
        {
            var reader = new PayloadReader(w.WrittenSpan[Frame.HeaderSize..]);
            RaiseAlarmRequest(responder, 0, ref reader);
        }
        else
        {
            _router.Forward(responder, h, w.WrittenSpan[Frame.HeaderSize..]);
        }
    }

    /// <summary>
    /// Applying committed entries ran into a damaged page (raft thread). The batch was rolled back; applying more would
    /// diverge from the others, so this member stops applying: it keeps persisting the log and voting (the quorum
    /// holds), but answers the proposals waiting on it with Timeout (they are in the log: the healthy members apply
    /// them), serves no reads and ends its watches. A restart replays the log and stops at the same page.
    /// </summary>
    private void HaltApply(CorruptDatabaseException e)
    {
        try
        {
            // After a restart the core hands out entries from its snapshot on, and the store skips what it holds: the
            // batch that failed may have begun below the store's own applied index.
            _appliedIndex = Math.Max(_appliedIndex, _sm.AppliedIndex);
        }
        catch (CorruptDatabaseException)
        {
            // the record of the applied index is damaged too: keep what this process applied
        }
        _applyHalt = e.Message;
        OnDamage(e, $"apply, at index {_appliedIndex + 1}");
        Log($"stopped applying the log at index {_appliedIndex + 1}: {e.Message}. This member keeps its log and its vote but serves no reads and acknowledges no writes. {ReplaceAdvice}.");
        const string unknown = "the write is in the log, but this member's database is damaged and it could not apply it; its outcome is unknown here (the healthy members apply it): read it back from another member";
        foreach (var p in _waiting.Values)
        {
            p.Waiter?.Fail(ErrorCode.Timeout, unknown);
            p.Return();
        }
        _waiting.Clear();
        foreach (var (_, reads) in _readBatches) foreach (var r in reads) r.Fail(ErrorCode.Corrupt, StaleRefusal()!);
        _readBatches.Clear();
        foreach (var (_, op) in _adminWaiting) op.Fail(ErrorCode.Timeout, unknown);
        _adminWaiting.Clear();
        foreach (var s in _clients.Sessions) s.Watches.FailAll(ErrorCode.Corrupt, $"{StaleRefusal()}; watch from another member");
    }
}
