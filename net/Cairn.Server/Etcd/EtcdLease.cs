using Cairn.Protocol;
using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: the gRPC request threads; a keep-alive stream runs on its call's task.
/// etcd's Lease service. As etcd's server does: a TTL below the minimum (1.5 election timeouts, in whole seconds) is
/// raised to it and one over 9·10⁹ s is refused; a keep-alive of an unknown lease answers TTL 0, and the time to live
/// of an unknown lease is TTL −1, neither an error.
/// </summary>
internal sealed class EtcdLease(EtcdGateway gateway) : Api.Lease.LeaseBase
{
    /// <summary>etcd's MaxLeaseTTL.</summary>
    public const long MaxTtl = 9_000_000_000;

    private long MinTtl => (long)Math.Ceiling(1.5 * gateway.Member.Options.ElectionTimeout.TotalSeconds);

    public override Task<Api.LeaseGrantResponse> LeaseGrant(Api.LeaseGrantRequest request, ServerCallContext context)
    {
        if (request.TTL > MaxTtl) throw EtcdErrors.LeaseTtlTooLarge();
        var ttl = Math.Max(request.TTL, MinTtl);
        return gateway.CallAsync(MessageType.LeaseGrant, (ttl, request.ID), context, static (w, q) =>
        {
            w.I64(q.ttl);
            w.I64(q.ID);
        }, static (ref PayloadReader r, Api.ResponseHeader header) => new Api.LeaseGrantResponse { Header = header, ID = r.I64(), TTL = r.I64() });
    }

    public override Task<Api.LeaseRevokeResponse> LeaseRevoke(Api.LeaseRevokeRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.LeaseRevoke, request.ID, context, static (w, id) => w.I64(id),
            static (ref PayloadReader r, Api.ResponseHeader header) => new Api.LeaseRevokeResponse { Header = header });

    public override async Task LeaseKeepAlive(IAsyncStreamReader<Api.LeaseKeepAliveRequest> requestStream, IServerStreamWriter<Api.LeaseKeepAliveResponse> responseStream, ServerCallContext context)
    {
        await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
        {
            Api.LeaseKeepAliveResponse response;
            try
            {
                response = await gateway.CallAsync(MessageType.LeaseKeepAlive, request.ID, context, static (w, id) => w.I64(id),
                    static (ref PayloadReader r, Api.ResponseHeader header) => new Api.LeaseKeepAliveResponse { Header = header, ID = r.I64(), TTL = Math.Max(r.I64(), 0) }).ConfigureAwait(false);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                response = new Api.LeaseKeepAliveResponse { Header = EtcdGateway.Header(gateway.Member.Header()), ID = request.ID, TTL = 0 };
            }
            await responseStream.WriteAsync(response, context.CancellationToken).ConfigureAwait(false);
        }
    }

    public override async Task<Api.LeaseTimeToLiveResponse> LeaseTimeToLive(Api.LeaseTimeToLiveRequest request, ServerCallContext context)
    {
        try
        {
            return await gateway.CallAsync(MessageType.LeaseTimeToLive, request, context, static (w, q) =>
            {
                w.I64(q.ID);
                w.Bool(q.Keys);
            }, static (ref PayloadReader r, Api.ResponseHeader header) =>
            {
                var response = new Api.LeaseTimeToLiveResponse { Header = header, ID = r.I64(), TTL = r.I64(), GrantedTTL = r.I64() };
                var n = r.Count(4);
                for (var i = 0; i < n; i++) response.Keys.Add(Google.Protobuf.ByteString.CopyFrom(r.Bytes()));
                return response;
            }).ConfigureAwait(false);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            return new Api.LeaseTimeToLiveResponse { Header = EtcdGateway.Header(gateway.Member.Header()), ID = request.ID, TTL = -1 };
        }
    }

    public override Task<Api.LeaseLeasesResponse> LeaseLeases(Api.LeaseLeasesRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.LeaseList, 0, context, static (_, _) => { }, static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.LeaseLeasesResponse { Header = header };
            var n = r.Count(8);
            for (var i = 0; i < n; i++) response.Leases.Add(new Api.LeaseStatus { ID = r.I64() });
            return response;
        });
}
