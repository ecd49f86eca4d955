using Cairn.Protocol;
using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: the gRPC request threads.
/// etcd's Cluster service. etcd adds a member by its peer URLs alone; a Cairn member is known by its name, so a member
/// added here is named after its peer URL's host:port, and starts with <c>cairn serve --name HOST:PORT</c>
/// (docs/etcd-compat.md). MemberUpdate is not supported: Cairn members publish their own addresses when they start.
/// </summary>
internal sealed class EtcdCluster(EtcdGateway gateway) : Api.Cluster.ClusterBase
{
    public override Task<Api.MemberListResponse> MemberList(Api.MemberListRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.MemberList, gateway, context, static (_, _) => { }, (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.MemberListResponse { Header = header };
            ReadMembers(ref r, response.Members);
            return response;
        });

    public override async Task<Api.MemberAddResponse> MemberAdd(Api.MemberAddRequest request, ServerCallContext context)
    {
        if (request.PeerURLs.Count != 1) throw EtcdErrors.Error(StatusCode.InvalidArgument, "etcdserver: given member URLs are invalid (Cairn members have one peer URL)");
        var peer = request.PeerURLs[0];
        var hostPort = Uri.TryCreate(peer, UriKind.Absolute, out var uri) && uri.Port > 0 ? $"{uri.Host}:{uri.Port}" : peer;
        var answer = await gateway.CallAsync(MessageType.MemberAdd, (hostPort, request.IsLearner), context, static (w, q) => Messages.WriteMemberAdd(w, q.hostPort, q.hostPort, q.IsLearner),
            (ref PayloadReader r, Api.ResponseHeader header) =>
            {
                var response = new Api.MemberAddResponse { Header = header };
                var id = r.U64();
                ReadMembers(ref r, response.Members);
                response.Member = response.Members.FirstOrDefault(m => m.ID == id) ?? new Api.Member { ID = id, IsLearner = request.IsLearner };
                if (response.Member.PeerURLs.Count == 0) response.Member.PeerURLs.Add(peer);
                return response;
            }).ConfigureAwait(false);
        return answer;
    }

    public override Task<Api.MemberRemoveResponse> MemberRemove(Api.MemberRemoveRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.MemberRemove, request.ID, context, static (w, id) => w.U64(id), (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.MemberRemoveResponse { Header = header };
            r.U64();
            ReadMembers(ref r, response.Members);
            return response;
        });

    public override Task<Api.MemberPromoteResponse> MemberPromote(Api.MemberPromoteRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.MemberPromote, request.ID, context, static (w, id) => w.U64(id), (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.MemberPromoteResponse { Header = header };
            r.U64();
            ReadMembers(ref r, response.Members);
            return response;
        });

    public override Task<Api.MemberUpdateResponse> MemberUpdate(Api.MemberUpdateRequest request, ServerCallContext context) =>
        throw EtcdErrors.Error(StatusCode.Unimplemented, "etcdserver: member update is not supported by Cairn; a member publishes its own addresses when it starts (restart it with the new --advertise-peer)");

    /// <summary>Reads the raw protocol's member list. Client URLs are the etcd API URLs the members published (empty for one that serves none).</summary>
    private void ReadMembers(ref PayloadReader r, Google.Protobuf.Collections.RepeatedField<Api.Member> into)
    {
        var n = r.Count(21);
        for (var i = 0; i < n; i++)
        {
            var m = new Api.Member { ID = r.U64(), Name = r.String() };
            var peerUrl = r.String();
            r.String(); // the raw protocol's client address
            m.IsLearner = r.Bool();
            if (peerUrl.Length > 0) m.PeerURLs.Add(Url(peerUrl));
            if (gateway.Member.GrpcUrlOf(m.ID) is { } grpc) m.ClientURLs.Add(grpc);
            into.Add(m);
        }
    }

    private static string Url(string address) => address.Contains("://", StringComparison.Ordinal) ? address : "http://" + address;
}
