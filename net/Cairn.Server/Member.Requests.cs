using System.Buffers.Binary;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;


namespace Cairn.Server;

/// <summary>
/// What a member does with each request (docs/protocol.md). Serializable reads, watches, status and maintenance are
/// served here; writes and linearizable reads are served by the leader — a follower forwards them over its peer link
/// and relays the answer, so a client may talk to any member.
/// </summary>
public sealed partial class Member
{
    private readonly ForwardTable _forwards = new();

    /// <summary>Handles one request frame. Runs on the connection's receive loop; never blocks on the log.</summary>
    internal void Handle(Responder r, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        Interlocked.Increment(ref Stats.Requests);
        var id = h.RequestId;
        if (_removed || _stopping.IsCancellationRequested)
        {
            Refuse(r, h.Type, id, ErrorCode.Stopping, _removed ? "this member was removed from the cluster; use another endpoint" : "this member is stopping; use another endpoint");
            return;
        }
        if ((h.Flags & FrameFlags.Response) != 0)
        {
            Refuse(r, h.Type, id, ErrorCode.Malformed, "a client sent a frame flagged as a response");
            return;
        }
        try
        {
            if (!Authorize(r, h, payload)) return;
            var reader = new PayloadReader(payload);
            switch (h.Type)
            {
                case MessageType.Range:
                {
                    var v = Messages.ReadRangeView(ref reader);
                    reader.End();
                    if ((v.Consistency == Consistency.Serializable || IsLeader) && StaleRefusal() is { } staleRead) throw new ProtocolException(ErrorCode.Corrupt, staleRead);
                    if (v.Consistency == Consistency.Serializable) ServeRangeView(r, id, v);
                    else if (IsLeader) QueueRead(new PendingRead(r, id, v.ToRequest()));
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
                    if (h.Type == MessageType.MemberPublish && r is ClientSession) throw new ProtocolException(ErrorCode.InvalidArgument, "members publish their own addresses; clients cannot");
                    if (!IsLeader)
                    {
                        // Refused here when the state machine would refuse it: a refused write never reaches the log.
                        CheckWrite(h.Type, payload);
                        Forward(r, h, payload);
                        break;
                    }
                    ProposeRequest(r, h.Type, id, ref reader);
                    break;
                case MessageType.AlarmRaise:
                    if (r is ClientSession) throw new ProtocolException(ErrorCode.InvalidArgument, "members raise their own alarms; clients cannot");
                    if (!IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    RaiseAlarmRequest(r, id, ref reader);
                    break;
                case MessageType.LeaseKeepAlive:
                case MessageType.LeaseTimeToLive:
                    if (!IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    LeaseRequest(r, h.Type, id, ref reader);
                    break;
                case MessageType.LeaseList:
                {
                    reader.End();
                    long[] ids = [.. _sm.Leases().Select(l => l.Id)]; // read before the frame begins: a damaged page must not leave half a frame
                    var w = r.Begin();
                    try
                    {
                        w.BeginFrame(h.Type, FrameFlags.Response, id);
                        Messages.WriteHeader(w, Header());
                        Messages.WriteIds(w, ids);
                        w.EndFrame();
                    }
                    finally
                    {
                        r.End();
                    }
                    break;
                }
                case MessageType.WatchCreate:
                {
                    var request = Messages.ReadWatchCreate(ref reader);
                    reader.End();
                    if (r is not ClientSession session) throw new ProtocolException(ErrorCode.InvalidArgument, "watches are served by the member a client is connected to");
                    if (StaleRefusal() is { } staleWatch) throw new ProtocolException(ErrorCode.Corrupt, $"{staleWatch}; watch from another member");
                    if (!session.Watches.Create(this, id, request)) throw new ProtocolException(ErrorCode.InvalidArgument, $"request id {id} already names a watch on this connection; use a fresh id");
                    break;
                }
                case MessageType.WatchCancel:
                {
                    var watchId = reader.U64();
                    reader.End();
                    if (r is not ClientSession session || !session.Watches.Cancel(watchId)) throw new ProtocolException(ErrorCode.WatchNotFound, $"no watch {watchId} on this connection");
                    WriteHeaderOnly(r, h.Type, id);
                    break;
                }
                case MessageType.MemberList:
                {
                    reader.End();
                    var w = r.Begin();
                    try
                    {
                        w.BeginFrame(h.Type, FrameFlags.Response, id);
                        Messages.WriteHeader(w, Header());
                        Messages.WriteMembers(w, MemberList());
                        w.EndFrame();
                    }
                    finally
                    {
                        r.End();
                    }
                    break;
                }
                case MessageType.MemberAdd:
                case MessageType.MemberRemove:
                case MessageType.MemberPromote:
                case MessageType.MoveLeader:
                    if (!IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    AdminRequest(r, h.Type, id, ref reader);
                    break;
                case MessageType.ScalingReport:
                    if (r is ClientSession) throw new ProtocolException(ErrorCode.InvalidArgument, "members report their own figures; clients cannot");
                    if (!IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    OnScalingReport(r, id, ref reader);
                    break;
                case MessageType.ScaleSet:
                    if (!IsLeader)
                    {
                        Forward(r, h, payload);
                        break;
                    }
                    ScaleSet(r, id, ref reader);
                    break;
                case MessageType.Authenticate:
                case MessageType.AuthToken:
                case MessageType.AuthStatus:
                case MessageType.AuthChange:
                case MessageType.UserList:
                case MessageType.UserGet:
                case MessageType.RoleList:
                case MessageType.RoleGet:
                    HandleAuth(r, h, ref reader);
                    break;
                case MessageType.ScaleStatus:
                {
                    reader.End();
                    var w = r.Begin();
                    try
                    {
                        w.BeginFrame(h.Type, FrameFlags.Response, id);
                        Messages.WriteHeader(w, Header());
                        w.String(ScalingStatusJson());
                        w.EndFrame();
                    }
                    finally
                    {
                        r.End();
                    }
                    break;
                }
                case MessageType.Status:
                {
                    reader.End();
                    var status = Status();
                    var w = r.Begin();
                    try
                    {
                        w.BeginFrame(h.Type, FrameFlags.Response, id);
                        Messages.WriteHeader(w, Header());
                        Messages.WriteStatus(w, status);
                        w.EndFrame();
                    }
                    finally
                    {
                        r.End();
                    }
                    break;
                }
                case MessageType.AlarmList:
                {
                    reader.End();
                    var alarms = AlarmList();
                    var w = r.Begin();
                    try
                    {
                        w.BeginFrame(h.Type, FrameFlags.Response, id);
                        Messages.WriteHeader(w, Header());
                        Messages.WriteAlarms(w, alarms);
                        w.EndFrame();
                    }
                    finally
                    {
                        r.End();
                    }
                    break;
                }
                case MessageType.Defragment:
                    reader.End();
                    StartDefragment(r, id);
                    break;
                case MessageType.Hash:
                {
                    var revision = reader.I64();
                    reader.End();
                    var (hash, rev, compact) = _sm.Hash(revision);
                    var w = r.Begin();
                    try
                    {
                        w.BeginFrame(h.Type, FrameFlags.Response, id);
                        Messages.WriteHeader(w, Header());
                        w.U64(hash);
                        w.I64(rev);
                        w.I64(compact);
                        w.EndFrame();
                    }
                    finally
                    {
                        r.End();
                    }
                    break;
                }
                case MessageType.Snapshot:
                    reader.End();
                    if (r is not ClientSession s) throw new ProtocolException(ErrorCode.InvalidArgument, "snapshots are streamed by the member a client is connected to");
                    if (StaleRefusal() is { } staleDump) throw new ProtocolException(ErrorCode.Corrupt, $"{staleDump}; save the snapshot from another member");
                    StartSnapshotStream(s, id);
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
            RefuseDamaged(r, h.Type, id, e, $"a {h.Type} request");
        }
    }

    private void Refuse(Responder r, MessageType type, ulong id, ErrorCode code, string message)
    {
        Interlocked.Increment(ref Stats.Errors);
        r.Error(type, id, code, message);
    }

    private void WriteHeaderOnly(Responder r, MessageType type, ulong id)
    {
        var w = r.Begin();
        try
        {
            w.BeginFrame(type, FrameFlags.Response, id);
            Messages.WriteHeader(w, Header());
            w.EndFrame();
        }
        finally
        {
            r.End();
        }
    }

    /// <summary>A range served from this member's applied state. A single key at the current revision takes the in-place path: no request object, no copy of the value.</summary>
    private void ServeRangeView(Responder r, ulong id, in Messages.RangeView v)
    {
        if (v.IsSimpleGet && r.BatchView(_sm) is { } view)
        {
            var found = view.TryGet(v.Key, out var e); // before the frame begins: a damaged page must not leave half a frame
            var w = r.Begin();
            try
            {
                w.BeginFrame(MessageType.Range, FrameFlags.Response, id);
                Messages.WriteHeader(w, Header(view.Revision));
                if (found)
                {
                    w.Count(1);
                    Messages.WriteKv(w, e.Key, v.KeysOnly ? [] : e.Value, e.CreateRevision, e.ModRevision, e.Version, e.Lease);
                    w.Bool(false);
                    w.I64(1);
                }
                else
                {
                    w.Count(0);
                    w.Bool(false);
                    w.I64(0);
                }
                w.EndFrame();
            }
            finally
            {
                r.End();
            }
            return;
        }
        ServeRange(r, id, v.ToRequest());
    }

    /// <summary>Serves a range from the applied state (linearizable reads come here once their read index is applied).</summary>
    internal void ServeRange(Responder r, ulong id, RangeRequest request)
    {
        if (!r.IsOpen) return;
        RangeResponse resp;
        try
        {
            resp = _sm.Range(request);
        }
        catch (Exception e) when (e is KvException or ArgumentException)
        {
            Refuse(r, MessageType.Range, id, Responder.CodeOf(e), e.Message);
            return;
        }
        catch (CorruptDatabaseException e)
        {
            RefuseDamaged(r, MessageType.Range, id, e, "a range");
            return;
        }
        var w = r.Begin();
        try
        {
            w.BeginFrame(MessageType.Range, FrameFlags.Response, id);
            Messages.WriteHeader(w, Header(resp.Header.Revision));
            Messages.WriteRangeResponse(w, resp);
            if (w.OpenPayloadLength > _options.MaxFrameBytes)
            {
                w.AbandonFrame();
                Responder.WriteError(w, id, ErrorCode.InvalidArgument, $"the answer would be {w.OpenPayloadLength} bytes, over the frame limit of {_options.MaxFrameBytes}; page through the range with --limit");
                return;
            }
            w.EndFrame();
        }
        finally
        {
            r.End();
        }
    }

    private void ProposeRequest(Responder r, MessageType type, ulong id, ref PayloadReader reader)
    {
        if (type == MessageType.Put)
        {
            // The common write: encoded straight from the frame into the entry's bytes, envelope room included.
            var key = reader.Bytes();
            var value = reader.Bytes();
            var lease = reader.I64();
            var flags = reader.U8();
            reader.End();
            CheckPut(key, value.Length);
            var proposal = Proposal.Rent(EnvelopeBytes + KvCommand.PutLength(key.Length, value.Length), r, type, id, addsData: true);
            KvCommand.WritePut(proposal.Buffer[EnvelopeBytes..], key, value, lease, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0);
            proposal.Seq = SealEnvelope(proposal.Buffer);
            if (!TryPropose(proposal))
            {
                proposal.Return();
                Refuse(r, type, id, ErrorCode.Busy, $"the leader has {_options.MaxPendingProposals} proposals queued; retry with backoff");
            }
            return;
        }
        KvCommand command;
        var adds = false;
        switch (type)
        {
            case MessageType.Put:
                var put = Messages.ReadPut(ref reader);
                CheckPut(put.Key, put.Value.Length);
                command = new KvCommand { Put = put };
                adds = true;
                break;
            case MessageType.DeleteRange:
                var delete = Messages.ReadDelete(ref reader);
                CheckDelete(delete);
                command = new KvCommand { Delete = delete };
                break;
            case MessageType.Txn:
                var txn = Messages.ReadTxn(ref reader);
                CheckTxn(txn);
                command = new KvCommand { Txn = txn };
                adds = TxnPuts(txn);
                break;
            case MessageType.Compact:
                var revision = reader.I64();
                if (revision <= 0) throw new ProtocolException(ErrorCode.InvalidArgument, "compact needs a revision above 0");
                CheckAlarms(addsData: false);
                command = new KvCommand { CompactRevision = revision };
                break;
            case MessageType.LeaseGrant:
                var ttl = reader.I64();
                var leaseId = reader.I64();
                if (ttl <= 0) throw new ProtocolException(ErrorCode.InvalidArgument, "a lease needs a TTL of at least 1 second");
                if (leaseId < 0) throw new ProtocolException(ErrorCode.InvalidArgument, "lease ids are positive (0: let the cluster choose)");
                CheckAlarms(addsData: true);
                command = new KvCommand { LeaseGrant = (leaseId == 0 ? Random.Shared.NextInt64(1, long.MaxValue) : leaseId, ttl) };
                adds = true; // a lease record: refused under NOSPACE, as the state machine would
                break;
            case MessageType.LeaseRevoke:
                var revoke = reader.I64();
                if (revoke <= 0) throw new ProtocolException(ErrorCode.LeaseNotFound, $"lease {revoke} not found");
                CheckAlarms(addsData: false);
                command = new KvCommand { LeaseRevoke = revoke };
                break;
            case MessageType.AlarmDisarm:
                var size = _sm.Storage.DataSize;
                if (size >= QuotaBytes)
                {
                    throw new ProtocolException(ErrorCode.NoSpace, $"the database holds {size} bytes against a quota of {QuotaBytes}: compact and defragment first (or add units: `cairn scale --units N`), then disarm");
                }
                DisarmCorruptAlarms();
                command = new KvCommand { NoSpaceAlarm = false };
                break;
            case MessageType.MemberPublish:
                var name = reader.String();
                var peer = reader.String();
                var client = reader.String();
                var who = reader.U64();
                command = new KvCommand { Cluster = (MemberDirectory.Key(who), MemberDirectory.Encode(name, peer, client)) };
                break;
            default:
                throw new ProtocolException(ErrorCode.Malformed, $"{type} is not a write");
        }
        reader.End();
        var data = Envelope(command.Encode(), out var seq);
        if (!TryPropose(new Proposal(data, new RequestWaiter(r, type, id)) { Seq = seq, AddsData = adds }))
        {
            Refuse(r, type, id, ErrorCode.Busy, $"the leader has {_options.MaxPendingProposals} proposals queued; retry with backoff");
        }
    }

    private void LeaseRequest(Responder r, MessageType type, ulong id, ref PayloadReader reader)
    {
        var leaseId = reader.I64();
        var keys = type == MessageType.LeaseTimeToLive && reader.Bool();
        reader.End();
        var info = _sm.Lease(leaseId, withKeys: keys);
        if (info is null) throw new ProtocolException(ErrorCode.LeaseNotFound, $"lease {leaseId} not found (it expired, was revoked, or never existed); grant a new one");
        var ttlLeft = type == MessageType.LeaseKeepAlive ? _leases.KeepAlive(leaseId, _sm) : 0; // before the frame begins
        var w = r.Begin();
        try
        {
            w.BeginFrame(type, FrameFlags.Response, id);
            Messages.WriteHeader(w, Header());
            if (type == MessageType.LeaseKeepAlive)
            {
                w.I64(leaseId);
                w.I64(ttlLeft);
            }
            else
            {
                Messages.WriteTimeToLive(w, new LeaseTimeToLiveResponse(leaseId, _leases.Remaining(leaseId), info.Ttl, keys ? info.Keys : []));
            }
            w.EndFrame();
        }
        finally
        {
            r.End();
        }
    }

    private void AdminRequest(Responder r, MessageType type, ulong id, ref PayloadReader reader)
    {
        switch (type)
        {
            case MessageType.MemberAdd:
            {
                var (name, peerUrl, learner) = Messages.ReadMemberAdd(ref reader);
                reader.End();
                if (string.IsNullOrWhiteSpace(name) || name.Contains('=') || name.Contains(',')) throw new ProtocolException(ErrorCode.InvalidArgument, $"member name '{name}' must be non-empty without '=' or ','");
                MemberOptions.ParseEndpoint(peerUrl, "--peer-urls");
                var memberId = MemberOptions.MemberId(name);
                QueueAdmin(new AdminOp.Change(new ConfigChange(learner ? ConfigChangeType.AddLearner : ConfigChangeType.AddVoter, memberId),
                    MemberDirectory.Encode(name, peerUrl, ""), r, type, id));
                break;
            }
            case MessageType.MemberRemove:
            case MessageType.MemberPromote:
            {
                var memberId = reader.U64();
                reader.End();
                QueueAdmin(new AdminOp.Change(new ConfigChange(type == MessageType.MemberRemove ? ConfigChangeType.Remove : ConfigChangeType.PromoteLearner, memberId), null, r, type, id));
                break;
            }
            case MessageType.MoveLeader:
            {
                var to = reader.U64();
                reader.End();
                QueueAdmin(new AdminOp.Transfer(to, r, id));
                break;
            }
        }
    }

    /// <summary>The members as the log says, with the names and addresses they published.</summary>
    internal List<MemberInfo> MemberList()
    {
        var v = _memberSnapshot;
        return v;
    }

    private volatile List<MemberInfo> _memberSnapshot = [];

    // Lambdas live in methods of their own: a closure over Handle's parameters would be allocated on every request.
    // A thread of its own, as for a snapshot stream: the copy of a large database takes a while, and on the thread
    // pool it would hold back the peer links' and sessions' I/O (on two cores, long enough to lose a leader).
    private void StartDefragment(Responder r, ulong id) =>
        new Thread(() => Defragment(r, id)) { IsBackground = true, Name = "cairn defragment" }.Start();

    private void StartSnapshotStream(ClientSession s, ulong id) =>
        new Thread(() => StreamSnapshot(s, id)) { IsBackground = true, Name = "cairn snapshot stream" }.Start();

    private void Defragment(Responder r, ulong id)
    {
        try
        {
            var result = _sm.Defragment();
            var w = r.Begin();
            try
            {
                w.BeginFrame(MessageType.Defragment, FrameFlags.Response, id);
                Messages.WriteHeader(w, Header());
                w.I64(result.BytesBefore);
                w.I64(result.BytesAfter);
                w.EndFrame();
            }
            finally
            {
                r.End();
            }
        }
        catch (CorruptDatabaseException e)
        {
            RefuseDamaged(r, MessageType.Defragment, id, e, "defragmentation");
        }
        catch (Exception e) when (e is IOException or Storage.StorageException or KvException)
        {
            Refuse(r, MessageType.Defragment, id, ErrorCode.Internal, $"defragmentation failed: {e.Message}");
        }
    }

    /// <summary>Streams this member's state to a client as LZ4-compressed chunks, paced by the connection; on a thread of its own (it blocks).</summary>
    private void StreamSnapshot(ClientSession s, ulong id)
    {
        try
        {
            using var chunks = new ChunkStream((chunk, last) =>
            {
                _stopping.Token.ThrowIfCancellationRequested(); // stopping: end the dump so the store can close
                var w = s.Begin();
                try
                {
                    w.BeginFrame(MessageType.Snapshot, FrameFlags.Response | (last ? FrameFlags.Last : 0), id);
                    w.Raw(chunk.Span);
                    w.EndFrame();
                }
                finally
                {
                    s.End();
                }
                s.DrainAsync(s.Closed).GetAwaiter().GetResult();
            });
            SnapshotInfo info;
            using (var lz4 = K4os.Compression.LZ4.Streams.LZ4Stream.Encode(chunks, leaveOpen: true)) info = _sm.WriteSnapshot(lz4);
            chunks.Complete();
            Log($"streamed a snapshot to a client: applied index {info.AppliedIndex}, revision {info.Revision}, {info.Bytes} bytes before compression");
        }
        catch (CorruptDatabaseException e)
        {
            OnDamage(e, "a snapshot stream");
            if (s.IsOpen) Refuse(s, MessageType.Snapshot, id, ErrorCode.Corrupt, $"snapshot failed: {CorruptAnswer(e)}");
        }
        catch (Exception e)
        {
            // On a thread of its own: whatever failed is reported to the client, never allowed to end the process.
            if (s.IsOpen) Refuse(s, MessageType.Snapshot, id, ErrorCode.Internal, $"snapshot failed: {e.Message}");
        }
    }

    // ---- forwarding ----

    /// <summary>Hands a request to the leader over the peer link; its answer comes back through <see cref="OnForwardReply"/>.</summary>
    private void Forward(Responder r, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var leader = _standing.Leader;
        if (leader == 0 || leader == Id)
        {
            Refuse(r, h.Type, h.RequestId, ErrorCode.NoLeader, "no leader is known right now (an election is under way or a quorum is unreachable); retry shortly");
            return;
        }
        var deadline = _options.Time.GetTimestamp() + (long)(_options.RequestTimeout.TotalSeconds * _options.Time.TimestampFrequency);
        var fid = _forwards.Add(r, h.Type, h.RequestId, deadline);
        Interlocked.Increment(ref Stats.Forwarded);
        if (!_peers.Forward(leader, fid, h, payload))
        {
            if (_forwards.Take(fid) is not null) Refuse(r, h.Type, h.RequestId, ErrorCode.NoLeader, "the leader is not reachable from this member right now; retry shortly or use another endpoint");
        }
    }

    /// <summary>The leader serves a request a follower forwarded; the answer goes back on the link.</summary>
    internal void OnForwarded(ulong from, ulong forwardId, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var responder = new ForwardResponder(_peers, from, forwardId);
        if (!IsLeader)
        {
            responder.Error(h.Type, h.RequestId, ErrorCode.NoLeader, "leadership moved while the request was forwarded; retry");
            return;
        }
        Handle(responder, h, payload);
    }

    /// <summary>A forwarded request's answer: relayed to the client with its own request id.</summary>
    internal void OnForwardReply(ulong forwardId, ReadOnlySpan<byte> frames)
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

    /// <summary>Sends this member's name and addresses through the log (as a forwarded request when it does not lead).</summary>
    private void Publish()
    {
        using var w = new FrameWriter(256);
        w.BeginFrame(MessageType.MemberPublish, FrameFlags.None, 0);
        w.String(Name);
        w.String(_options.PeerUrl);
        w.String(_options.ClientUrl);
        w.U64(Id);
        w.EndFrame();
        Frame.TryReadHeader(w.WrittenSpan, out var h);
        var responder = new SelfResponder(this);
        if (IsLeader)
        {
            var reader = new PayloadReader(w.WrittenSpan[Frame.HeaderSize..]);
            ProposeRequest(responder, MessageType.MemberPublish, 0, ref reader);
        }
        else
        {
            Forward(responder, h, w.WrittenSpan[Frame.HeaderSize..]);
        }
    }

    internal void RefreshMembers() => _memberSnapshot = _directory.List(_node.Voters, _node.Learners);
}
