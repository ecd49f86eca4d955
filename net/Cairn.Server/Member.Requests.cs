using System.Buffers.Binary;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;


namespace Cairn.Server;

/// <summary>
/// Owner: the router's caller; defragmentation and snapshot streams run on threads of their own.
/// The requests a member serves once the <see cref="RequestRouter"/> has routed them here: ranges from the applied
/// state, writes turned into proposals for the raft thread, lease and admin requests, defragmentation and snapshot
/// streams (on threads of their own), and the member's publication of its own addresses.
/// </summary>
public sealed partial class Member
{
    private void Refuse(Responder r, MessageType type, ulong id, ErrorCode code, string message)
    {
        Interlocked.Increment(ref Stats.Errors);
        r.Error(type, id, code, message);
    }

    internal void WriteHeaderOnly(Responder r, MessageType type, ulong id) => r.Answer(type, id, Header());

    /// <summary>A range served from this member's applied state. A single key at the current revision takes the in-place path: no request object, no copy of the value.</summary>
    internal void ServeRangeView(Responder r, ulong id, in Messages.RangeView v)
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

    internal void ProposeRequest(Responder r, MessageType type, ulong id, ref PayloadReader reader)
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
                var grpc = reader.Remaining > 0 ? reader.String() : ""; // a member with etcd's API publishes its URL too
                command = new KvCommand { Cluster = (MemberDirectory.Key(who), MemberDirectory.Encode(name, peer, client, grpc)) };
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

    internal void LeaseRequest(Responder r, MessageType type, ulong id, ref PayloadReader reader)
    {
        var leaseId = reader.I64();
        var keys = type == MessageType.LeaseTimeToLive && reader.Bool();
        reader.End();
        var info = _sm.Lease(leaseId, withKeys: keys);
        if (info is null) throw new ProtocolException(ErrorCode.LeaseNotFound, $"lease {leaseId} not found (it expired, was revoked, or never existed); grant a new one");
        if (type == MessageType.LeaseKeepAlive)
        {
            var ttlLeft = _leases.KeepAlive(leaseId, _sm); // before the frame begins
            r.Answer(type, id, Header(), (leaseId, ttlLeft), static (w, a) =>
            {
                w.I64(a.leaseId);
                w.I64(a.ttlLeft);
            });
        }
        else
        {
            var ttl = new LeaseTimeToLiveResponse(leaseId, _leases.Remaining(leaseId), info.Ttl, keys ? info.Keys : []);
            r.Answer(type, id, Header(), ttl, static (w, ttl) => Messages.WriteTimeToLive(w, ttl));
        }
    }

    internal void AdminRequest(Responder r, MessageType type, ulong id, ref PayloadReader reader)
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
    internal void StartDefragment(Responder r, ulong id) =>
        new Thread(() => Defragment(r, id)) { IsBackground = true, Name = "cairn defragment" }.Start();

    internal void StartSnapshotStream(ClientResponder s, ulong id) =>
        new Thread(() => StreamSnapshot(s, id)) { IsBackground = true, Name = "cairn snapshot stream" }.Start();

    private void Defragment(Responder r, ulong id)
    {
        try
        {
            var result = _sm.Defragment();
            r.Answer(MessageType.Defragment, id, Header(), result, static (w, result) =>
            {
                w.I64(result.BytesBefore);
                w.I64(result.BytesAfter);
            });
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
    private void StreamSnapshot(ClientResponder s, ulong id)
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

    /// <summary>Sends this member's name and addresses through the log (as a forwarded request when it does not lead).</summary>
    private void Publish()
    {
        using var w = new FrameWriter(256);
        w.BeginFrame(MessageType.MemberPublish, FrameFlags.None, 0);
        w.String(Name);
        w.String(_options.PeerUrl);
        w.String(_options.ClientUrl);
        w.U64(Id);
        w.String(GrpcUrl ?? "");
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
            _router.Forward(responder, h, w.WrittenSpan[Frame.HeaderSize..]);
        }
    }

    internal void RefreshMembers() => _memberSnapshot = _directory.List(_node.Voters, _node.Learners);
}
