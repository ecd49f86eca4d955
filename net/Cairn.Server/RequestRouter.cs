using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: the thread of whichever front door calls it (a session's receive loop, a peer link's receive loop, the
/// member's own tasks); it keeps no state but the table of requests it forwarded.
/// The request router (docs/protocol.md): every request frame enters here. It refuses what this member cannot serve,
/// checks auth, then serves it from this member (serializable reads, watches, status, maintenance), hands it to the
/// raft thread (writes, linearizable reads and admin on the leader), or forwards it to the leader over the peer link
/// and relays the answer, so a client may talk to any member.
/// </summary>
internal sealed class RequestRouter(Member member)
{
    private readonly Member _member = member;
    private readonly ForwardTable _forwards = new();

    /// <summary>Handles one request frame. Runs on the connection's receive loop; never blocks on the log.</summary>
    public void Handle(Responder r, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        Interlocked.Increment(ref _member.Stats.Requests);
        var id = h.RequestId;
        if (_member.Removed || _member.Stopping)
        {
            Refuse(r, h.Type, id, ErrorCode.Stopping, _member.Removed ? "this member was removed from the cluster; use another endpoint" : "this member is stopping; use another endpoint");
            return;
        }
        if ((h.Flags & FrameFlags.Response) != 0)
        {
            Refuse(r, h.Type, id, ErrorCode.Malformed, "a client sent a frame flagged as a response");
            return;
        }
        try
        {
            if (!_member.Authorize(r, h, payload)) return;
            var reader = new PayloadReader(payload);
            switch (h.Type)
            {
                case MessageType.Range:
                {
                    var v = Messages.ReadRangeView(ref reader);
                    reader.End();
                    if ((v.Consistency == Consistency.Serializable || _member.IsLeader) && _member.StaleRefusal() is { } staleRead) throw new ProtocolException(ErrorCode.Corrupt, staleRead);
                    if (v.Consistency == Consistency.Serializable) _member.ServeRangeView(r, id, v);
                    else if (_member.IsLeader) _member.QueueRead(new PendingRead(r, id, v.ToRequest()));
                    else Forward(r, h, payload);
                    break;
                }
                case MessageType.Put:
                case MessageType.DeleteRange:
                case MessageType.Txn:
                case MessageType.Compact:
                case MessageType.LeaseGrant:
                case MessageType.LeaseRevoke:
                case MessageType.AlarmDisarm:
                case MessageType.MemberPublish:
                    if (h.Type == MessageType.MemberPublish && r is ClientResponder) throw new ProtocolException(ErrorCode.InvalidArgument, "members publish their own addresses; clients cannot");
                    if (!_member.IsLeader)
                    {
                        // Refused here when the state machine would refuse it: a refused write never reaches the log.
                        _member.CheckWrite(h.Type, payload);
                        Forward(r, h, payload);
                        break;
                    }
                    _member.ProposeRequest(r, h.Type, id, ref reader);
                    break;
                case MessageType.AlarmRaise:
                    if (r is ClientResponder) throw new ProtocolException(ErrorCode.InvalidArgument, "members raise their own alarms; clients cannot");
                    if (!_member.IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    _member.RaiseAlarmRequest(r, id, ref reader);
                    break;
                case MessageType.LeaseKeepAlive:
                case MessageType.LeaseTimeToLive:
                    if (!_member.IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    _member.LeaseRequest(r, h.Type, id, ref reader);
                    break;
                case MessageType.LeaseList:
                {
                    reader.End();
                    long[] ids = [.. _member.Machine.Leases().Select(l => l.Id)]; // read before the frame begins: a damaged page must not leave half a frame
                    r.Answer(h.Type, id, _member.Header(), ids, static (w, ids) => Messages.WriteIds(w, ids));
                    break;
                }
                case MessageType.WatchCreate:
                {
                    var request = Messages.ReadWatchCreate(ref reader);
                    reader.End();
                    if (r is not ClientResponder session) throw new ProtocolException(ErrorCode.InvalidArgument, "watches are served by the member a client is connected to");
                    if (_member.StaleRefusal() is { } staleWatch) throw new ProtocolException(ErrorCode.Corrupt, $"{staleWatch}; watch from another member");
                    if (!session.Watches.Create(_member, id, request)) throw new ProtocolException(ErrorCode.InvalidArgument, $"request id {id} already names a watch on this connection; use a fresh id");
                    break;
                }
                case MessageType.WatchCancel:
                {
                    var watchId = reader.U64();
                    reader.End();
                    if (r is not ClientResponder session || !session.Watches.Cancel(watchId)) throw new ProtocolException(ErrorCode.WatchNotFound, $"no watch {watchId} on this connection");
                    _member.WriteHeaderOnly(r, h.Type, id);
                    break;
                }
                case MessageType.MemberList:
                {
                    reader.End();
                    r.Answer(h.Type, id, _member.Header(), _member.MemberList(), static (w, members) => Messages.WriteMembers(w, members));
                    break;
                }
                case MessageType.MemberAdd:
                case MessageType.MemberRemove:
                case MessageType.MemberPromote:
                case MessageType.MoveLeader:
                    if (!_member.IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    _member.AdminRequest(r, h.Type, id, ref reader);
                    break;
                case MessageType.ScalingReport:
                    if (r is ClientResponder) throw new ProtocolException(ErrorCode.InvalidArgument, "members report their own figures; clients cannot");
                    if (!_member.IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    _member.OnScalingReport(r, id, ref reader);
                    break;
                case MessageType.ScaleSet:
                    if (!_member.IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    _member.ScaleSet(r, id, ref reader);
                    break;
                case MessageType.Authenticate:
                case MessageType.AuthToken:
                case MessageType.AuthStatus:
                case MessageType.AuthChange:
                case MessageType.UserList:
                case MessageType.UserGet:
                case MessageType.RoleList:
                case MessageType.RoleGet:
                    _member.HandleAuth(r, h, ref reader);
                    break;
                case MessageType.ScaleStatus:
                {
                    reader.End();
                    r.Answer(h.Type, id, _member.Header(), _member.ScalingStatusJson(), static (w, json) => w.String(json));
                    break;
                }
                case MessageType.Status:
                {
                    reader.End();
                    var status = _member.Status();
                    r.Answer(h.Type, id, _member.Header(), status, static (w, status) => Messages.WriteStatus(w, status));
                    break;
                }
                case MessageType.AlarmList:
                {
                    reader.End();
                    var alarms = _member.AlarmList();
                    r.Answer(h.Type, id, _member.Header(), alarms, static (w, alarms) => Messages.WriteAlarms(w, alarms));
                    break;
                }
                case MessageType.Defragment:
                    reader.End();
                    _member.StartDefragment(r, id);
                    break;
                case MessageType.Hash:
                {
                    var revision = reader.I64();
                    reader.End();
                    var (hash, rev, compact) = _member.Machine.Hash(revision);
                    r.Answer(h.Type, id, _member.Header(), (hash, rev, compact), static (w, a) =>
                    {
                        w.U64(a.hash);
                        w.I64(a.rev);
                        w.I64(a.compact);
                    });
                    break;
                }
                case MessageType.Snapshot:
                    reader.End();
                    if (r is not ClientResponder s) throw new ProtocolException(ErrorCode.InvalidArgument, "snapshots are streamed by the member a client is connected to");
                    if (_member.StaleRefusal() is { } staleDump) throw new ProtocolException(ErrorCode.Corrupt, $"{staleDump}; save the snapshot from another member");
                    _member.StartSnapshotStream(s, id);
                    break;
                case MessageType.Hello:
                    throw new ProtocolException(ErrorCode.Malformed, "hello was already exchanged on this connection");
                default:
                    throw new ProtocolException(ErrorCode.Malformed, $"unknown request type {(ushort)h.Type}; see docs/protocol.md for the types this member serves");
            }
        }
        catch (Exception e) when (e is ProtocolException or KvException or ArgumentException or InvalidDataException)
        {
            Refuse(r, h.Type, id, Responder.CodeOf(e), e.Message);
        }
        catch (CorruptDatabaseException e)
        {
            // A page this request needed failed its tag or checksum: this request is answered, the member carries on.
            _member.RefuseDamaged(r, h.Type, id, e, $"a {h.Type} request");
        }
    }

    private void Refuse(Responder r, MessageType type, ulong id, ErrorCode code, string message)
    {
        Interlocked.Increment(ref _member.Stats.Errors);
        r.Error(type, id, code, message);
    }

    /// <summary>Hands a request to the leader over the peer link; its answer comes back through <see cref="OnForwardReply"/>.</summary>
    public void Forward(Responder r, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var leader = _member.Leader;
        if (leader == 0 || leader == _member.Id)
        {
            Refuse(r, h.Type, h.RequestId, ErrorCode.NoLeader, "no leader is known right now (an election is under way or a quorum is unreachable); retry shortly");
            return;
        }
        var deadline = _member.Options.Time.GetTimestamp() + (long)(_member.Options.RequestTimeout.TotalSeconds * _member.Options.Time.TimestampFrequency);
        var fid = _forwards.Add(r, h.Type, h.RequestId, deadline);
        Interlocked.Increment(ref _member.Stats.Forwarded);
        if (!_member.Peers.Forward(leader, fid, h, payload))
        {
            if (_forwards.Take(fid) is not null) Refuse(r, h.Type, h.RequestId, ErrorCode.NoLeader, "the leader is not reachable from this member right now; retry shortly or use another endpoint");
        }
    }

    /// <summary>The leader serves a request a follower forwarded; the answer goes back on the link.</summary>
    public void OnForwarded(ulong from, ulong forwardId, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var responder = new ForwardResponder(_member.Peers, from, forwardId);
        if (!_member.IsLeader)
        {
            responder.Error(h.Type, h.RequestId, ErrorCode.NoLeader, "leadership moved while the request was forwarded; retry");
            return;
        }
        Handle(responder, h, payload);
    }

    /// <summary>A forwarded request's answer: relayed to the client with its own request id.</summary>
    public void OnForwardReply(ulong forwardId, ReadOnlySpan<byte> frames)
    {
        if (_forwards.Take(forwardId) is not { } f || !f.Responder.IsOpen) return;
        var w = f.Responder.Begin();
        try
        {
            while (PeerCodec.TryReadFrame(ref frames, out var h, out var payload))
            {
                if (h.Type == MessageType.Error && payload.Length >= 2 && (ErrorCode)System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(payload) == ErrorCode.Stopping)
                {
                    // The leader is stopping, not this member: for the client that is "no leader right now, retry here".
                    Responder.WriteError(w, f.RequestId, ErrorCode.NoLeader, "the leader is stopping (the request was not applied); retry shortly");
                    continue;
                }
                w.BeginFrame(h.Type, h.Flags, f.RequestId);
                w.Raw(payload);
                w.EndFrame();
            }
        }
        finally
        {
            f.Responder.End();
        }
    }

    /// <summary>Forwarded requests whose deadline passed are answered with Timeout (their outcome is unknown).</summary>
    public void ExpireForwarded(long now) => _forwards.Expire(now);

    /// <summary>Answers every forwarded request still waiting with <paramref name="code"/> (leadership moved, or the member stops).</summary>
    public void FailForwarded(ErrorCode code, string message, MessageType? except = null) => _forwards.FailAll(code, message, except);
}
