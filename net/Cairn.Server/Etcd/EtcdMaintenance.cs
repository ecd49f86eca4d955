using Cairn.Protocol;
using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: the gRPC request threads.
/// etcd's Maintenance service. Hashes are Cairn's (the same on every member at one revision, not etcd's values);
/// alarms are listed and disarmed as etcd's are, and raised only by members themselves.
/// </summary>
internal sealed class EtcdMaintenance(EtcdGateway gateway) : Api.Maintenance.MaintenanceBase
{
    public override Task<Api.StatusResponse> Status(Api.StatusRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.Status, 0, context, static (_, _) => { }, static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var s = Messages.ReadStatus(ref r);
            var response = new Api.StatusResponse
            {
                Header = header, Version = s.Version, DbSize = s.DbSize, DbSizeInUse = s.DbSizeInUse, Leader = s.Leader, RaftIndex = s.RaftIndex,
                RaftTerm = s.RaftTerm, RaftAppliedIndex = s.AppliedIndex, IsLearner = s.IsLearner,
            };
            response.Errors.AddRange(s.Errors);
            return response;
        });

    public override Task<Api.AlarmResponse> Alarm(Api.AlarmRequest request, ServerCallContext context)
    {
        var type = request.Action switch
        {
            Api.AlarmRequest.Types.AlarmAction.Get => MessageType.AlarmList,
            Api.AlarmRequest.Types.AlarmAction.Deactivate => MessageType.AlarmDisarm,
            _ => throw EtcdErrors.Error(StatusCode.InvalidArgument, "etcdserver: alarms are raised by members themselves; clients list and disarm them"),
        };
        return gateway.CallAsync(type, 0, context, static (_, _) => { }, static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.AlarmResponse { Header = header };
            foreach (var a in Messages.ReadAlarms(ref r)) response.Alarms.Add(new Api.AlarmMember { MemberID = a.MemberId, Alarm = (Api.AlarmType)(int)a.Type });
            return response;
        });
    }

    public override Task<Api.DefragmentResponse> Defragment(Api.DefragmentRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.Defragment, 0, context, static (_, _) => { }, static (ref PayloadReader r, Api.ResponseHeader header) => new Api.DefragmentResponse { Header = header });

    public override Task<Api.HashResponse> Hash(Api.HashRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.Hash, 0L, context, static (w, rev) => w.I64(rev), static (ref PayloadReader r, Api.ResponseHeader header) =>
            new Api.HashResponse { Header = header, Hash = Fold(r.U64()) });

    public override Task<Api.HashKVResponse> HashKV(Api.HashKVRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.Hash, Math.Max(request.Revision, 0), context, static (w, rev) => w.I64(rev), static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var hash = Fold(r.U64());
            r.I64(); // the revision hashed (the header's revision is the member's)
            return new Api.HashKVResponse { Header = header, Hash = hash, CompactRevision = r.I64() };
        });

    /// <summary>
    /// Streams this member's state as etcd's Snapshot does: the bytes are Cairn's LZ4-compressed snapshot, which
    /// <c>cairn snapshot restore</c> and <c>cairn snapshot status</c> read (etcd's own restore reads only etcd's files).
    /// </summary>
    public override async Task Snapshot(Api.SnapshotRequest request, IServerStreamWriter<Api.SnapshotResponse> responseStream, ServerCallContext context)
    {
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        using var stream = new EtcdSnapshotStream(gateway.Authenticate(context, out _), EtcdGateway.Remote(context), gateway.Member.Id, closed.Token);
        using (var w = new Protocol.FrameWriter(64))
        {
            w.BeginFrame(MessageType.Snapshot, 0, 1);
            w.EndFrame();
            Frame.TryReadHeader(w.WrittenSpan, out var h);
            gateway.Member.Router.Handle(stream, h, w.WrittenSpan[Frame.HeaderSize..]);
        }
        try
        {
            await foreach (var chunk in stream.Chunks.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
                await responseStream.WriteAsync(chunk, context.CancellationToken).ConfigureAwait(false);
        }
        finally
        {
            await closed.CancelAsync().ConfigureAwait(false); // a dump still running ends at its next chunk
        }
    }

    public override Task<Api.MoveLeaderResponse> MoveLeader(Api.MoveLeaderRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.MoveLeader, request.TargetID, context, static (w, id) => w.U64(id), static (ref PayloadReader r, Api.ResponseHeader header) => new Api.MoveLeaderResponse { Header = header });

    /// <summary>etcd's hashes are 32 bits: Cairn's 64-bit hash folded.</summary>
    private static uint Fold(ulong h) => (uint)(h ^ (h >> 32));
}
