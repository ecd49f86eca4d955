using System.Net;
using System.Text;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: Kestrel's request threads.
/// etcd's JSON gateway (grpc-gateway, as etcd 3.4 serves it on its client port): POST /v3/... with a request message in
/// protobuf's JSON mapping (proto field names, bytes in base64, 64-bit integers as strings), answered the same way.
/// Each path calls the gRPC service's own method, so the two answer alike; refusals come back as
/// {"error", "message", "code"} with the HTTP status grpc-gateway gives the gRPC code. Streams (watch, lease
/// keep-alive) answer one {"result": ...} object per line. The token from /v3/auth/authenticate goes in the
/// Authorization header.
/// </summary>
internal static class EtcdJsonGateway
{
    private static readonly JsonParser Parser = new(JsonParser.Settings.Default.WithIgnoreUnknownFields(true));
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));

    public static void Map(IEndpointRouteBuilder app, EtcdGateway gateway)
    {
        var kv = new EtcdKv(gateway);
        var lease = new EtcdLease(gateway);
        var cluster = new EtcdCluster(gateway);
        var maintenance = new EtcdMaintenance(gateway);
        var auth = new EtcdAuth(gateway);
        var watch = new EtcdWatch(gateway);
        foreach (var prefix in new[] { "/v3", "/v3beta" })
        {
            Unary<Api.RangeRequest, Api.RangeResponse>(app, prefix + "/kv/range", kv.Range);
            Unary<Api.PutRequest, Api.PutResponse>(app, prefix + "/kv/put", kv.Put);
            Unary<Api.DeleteRangeRequest, Api.DeleteRangeResponse>(app, prefix + "/kv/deleterange", kv.DeleteRange);
            Unary<Api.TxnRequest, Api.TxnResponse>(app, prefix + "/kv/txn", kv.Txn);
            Unary<Api.CompactionRequest, Api.CompactionResponse>(app, prefix + "/kv/compaction", kv.Compact);
            Unary<Api.LeaseGrantRequest, Api.LeaseGrantResponse>(app, prefix + "/lease/grant", lease.LeaseGrant);
            foreach (var p in new[] { "/lease/revoke", "/kv/lease/revoke" }) Unary<Api.LeaseRevokeRequest, Api.LeaseRevokeResponse>(app, prefix + p, lease.LeaseRevoke);
            foreach (var p in new[] { "/lease/timetolive", "/kv/lease/timetolive" }) Unary<Api.LeaseTimeToLiveRequest, Api.LeaseTimeToLiveResponse>(app, prefix + p, lease.LeaseTimeToLive);
            foreach (var p in new[] { "/lease/leases", "/kv/lease/leases" }) Unary<Api.LeaseLeasesRequest, Api.LeaseLeasesResponse>(app, prefix + p, lease.LeaseLeases);
            Streaming<Api.LeaseKeepAliveRequest, Api.LeaseKeepAliveResponse>(app, prefix + "/lease/keepalive", lease.LeaseKeepAlive, untilClosed: false);
            Streaming<Api.WatchRequest, Api.WatchResponse>(app, prefix + "/watch", watch.Watch, untilClosed: true);
            Unary<Api.MemberAddRequest, Api.MemberAddResponse>(app, prefix + "/cluster/member/add", cluster.MemberAdd);
            Unary<Api.MemberRemoveRequest, Api.MemberRemoveResponse>(app, prefix + "/cluster/member/remove", cluster.MemberRemove);
            Unary<Api.MemberUpdateRequest, Api.MemberUpdateResponse>(app, prefix + "/cluster/member/update", cluster.MemberUpdate);
            Unary<Api.MemberListRequest, Api.MemberListResponse>(app, prefix + "/cluster/member/list", cluster.MemberList);
            Unary<Api.MemberPromoteRequest, Api.MemberPromoteResponse>(app, prefix + "/cluster/member/promote", cluster.MemberPromote);
            Unary<Api.AlarmRequest, Api.AlarmResponse>(app, prefix + "/maintenance/alarm", maintenance.Alarm);
            Unary<Api.StatusRequest, Api.StatusResponse>(app, prefix + "/maintenance/status", maintenance.Status);
            Unary<Api.DefragmentRequest, Api.DefragmentResponse>(app, prefix + "/maintenance/defragment", maintenance.Defragment);
            Unary<Api.HashRequest, Api.HashResponse>(app, prefix + "/maintenance/hash", maintenance.Hash);
            Unary<Api.HashKVRequest, Api.HashKVResponse>(app, prefix + "/maintenance/hashkv", maintenance.HashKV);
            Unary<Api.MoveLeaderRequest, Api.MoveLeaderResponse>(app, prefix + "/maintenance/transfer-leadership", maintenance.MoveLeader);
            Unary<Api.AuthEnableRequest, Api.AuthEnableResponse>(app, prefix + "/auth/enable", auth.AuthEnable);
            Unary<Api.AuthDisableRequest, Api.AuthDisableResponse>(app, prefix + "/auth/disable", auth.AuthDisable);
            Unary<Api.AuthStatusRequest, Api.AuthStatusResponse>(app, prefix + "/auth/status", auth.AuthStatus);
            Unary<Api.AuthenticateRequest, Api.AuthenticateResponse>(app, prefix + "/auth/authenticate", auth.Authenticate);
            Unary<Api.AuthUserAddRequest, Api.AuthUserAddResponse>(app, prefix + "/auth/user/add", auth.UserAdd);
            Unary<Api.AuthUserGetRequest, Api.AuthUserGetResponse>(app, prefix + "/auth/user/get", auth.UserGet);
            Unary<Api.AuthUserListRequest, Api.AuthUserListResponse>(app, prefix + "/auth/user/list", auth.UserList);
            Unary<Api.AuthUserDeleteRequest, Api.AuthUserDeleteResponse>(app, prefix + "/auth/user/delete", auth.UserDelete);
            Unary<Api.AuthUserChangePasswordRequest, Api.AuthUserChangePasswordResponse>(app, prefix + "/auth/user/changepw", auth.UserChangePassword);
            Unary<Api.AuthUserGrantRoleRequest, Api.AuthUserGrantRoleResponse>(app, prefix + "/auth/user/grant", auth.UserGrantRole);
            Unary<Api.AuthUserRevokeRoleRequest, Api.AuthUserRevokeRoleResponse>(app, prefix + "/auth/user/revoke", auth.UserRevokeRole);
            Unary<Api.AuthRoleAddRequest, Api.AuthRoleAddResponse>(app, prefix + "/auth/role/add", auth.RoleAdd);
            Unary<Api.AuthRoleGetRequest, Api.AuthRoleGetResponse>(app, prefix + "/auth/role/get", auth.RoleGet);
            Unary<Api.AuthRoleListRequest, Api.AuthRoleListResponse>(app, prefix + "/auth/role/list", auth.RoleList);
            Unary<Api.AuthRoleDeleteRequest, Api.AuthRoleDeleteResponse>(app, prefix + "/auth/role/delete", auth.RoleDelete);
            Unary<Api.AuthRoleGrantPermissionRequest, Api.AuthRoleGrantPermissionResponse>(app, prefix + "/auth/role/grant", auth.RoleGrantPermission);
            Unary<Api.AuthRoleRevokePermissionRequest, Api.AuthRoleRevokePermissionResponse>(app, prefix + "/auth/role/revoke", auth.RoleRevokePermission);
        }
        // What etcd answers on its client port besides the API: the version (clients choose the API's path by it) and health.
        app.MapGet("/version", static http => Json(http, 200, "{\"etcdserver\":\"3.4.0\",\"etcdcluster\":\"3.4.0\"}"));
        app.MapGet("/health", http => HealthAsync(http, gateway));
    }

    private static void Unary<TRequest, TResponse>(IEndpointRouteBuilder app, string path, Func<TRequest, ServerCallContext, Task<TResponse>> call)
        where TRequest : class, IMessage<TRequest>, new() where TResponse : IMessage =>
        app.MapPost(path, async http =>
        {
            if (await ParseAsync<TRequest>(http).ConfigureAwait(false) is not { } request) return;
            try
            {
                var response = await call(request, new JsonCallContext(http, path)).ConfigureAwait(false);
                await Json(http, 200, Formatter.Format(response)).ConfigureAwait(false);
            }
            catch (RpcException e)
            {
                await Refuse(http, e.StatusCode, e.Status.Detail).ConfigureAwait(false);
            }
        });

    /// <summary>
    /// A stream with one request (the body): each answer is written as a {"result": ...} line as it comes. A watch runs
    /// until the client disconnects; a keep-alive ends after its one answer.
    /// </summary>
    private static void Streaming<TRequest, TResponse>(IEndpointRouteBuilder app, string path,
        Func<IAsyncStreamReader<TRequest>, IServerStreamWriter<TResponse>, ServerCallContext, Task> call, bool untilClosed)
        where TRequest : class, IMessage<TRequest>, new() where TResponse : IMessage =>
        app.MapPost(path, async http =>
        {
            if (await ParseAsync<TRequest>(http).ConfigureAwait(false) is not { } request) return;
            using var done = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
            var writer = new LineWriter<TResponse>(http, untilClosed ? null : done);
            try
            {
                await call(new OneRequest<TRequest>(request, untilClosed ? http.RequestAborted : CancellationToken.None), writer, new JsonCallContext(http, path, done.Token)).ConfigureAwait(false);
            }
            catch (RpcException e) when (!writer.Started)
            {
                await Refuse(http, e.StatusCode, e.Status.Detail).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException)
            {
                // the client went away, or the one answer was written
            }
        });

    private static async Task<TRequest?> ParseAsync<TRequest>(HttpContext http) where TRequest : class, IMessage<TRequest>, new()
    {
        string body;
        using (var reader = new StreamReader(http.Request.Body, Encoding.UTF8))
            body = await reader.ReadToEndAsync(http.RequestAborted).ConfigureAwait(false);
        try
        {
            return string.IsNullOrWhiteSpace(body) ? new TRequest() : Parser.Parse<TRequest>(body);
        }
        catch (Exception e) when (e is InvalidProtocolBufferException or InvalidJsonException or FormatException)
        {
            await Refuse(http, StatusCode.InvalidArgument, $"the body is not a {typeof(TRequest).Name} in protobuf's JSON mapping: {e.Message}").ConfigureAwait(false);
            return null;
        }
    }

    private static async Task HealthAsync(HttpContext http, EtcdGateway gateway)
    {
        var serializable = http.Request.Query["serializable"] == "true";
        var healthy = gateway.Member.Leader != 0 || serializable;
        await Json(http, healthy ? 200 : 503, healthy ? "{\"health\":\"true\"}" : "{\"health\":\"false\",\"reason\":\"no leader\"}").ConfigureAwait(false);
    }

    private static Task Json(HttpContext http, int status, string json)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json";
        return http.Response.WriteAsync(json, http.RequestAborted);
    }

    /// <summary>A refusal as grpc-gateway writes it, with the HTTP status it gives the gRPC code.</summary>
    private static Task Refuse(HttpContext http, StatusCode code, string message)
    {
        var status = code switch
        {
            StatusCode.InvalidArgument or StatusCode.OutOfRange => 400,
            StatusCode.Unauthenticated => 401,
            StatusCode.PermissionDenied => 403,
            StatusCode.NotFound => 404,
            StatusCode.Cancelled => 408,
            StatusCode.AlreadyExists or StatusCode.Aborted => 409,
            StatusCode.FailedPrecondition => 412,
            StatusCode.ResourceExhausted => 429,
            StatusCode.Unimplemented => 501,
            StatusCode.Unavailable => 503,
            StatusCode.DeadlineExceeded => 504,
            _ => 500,
        };
        var escaped = System.Text.Json.JsonSerializer.Serialize(message);
        return Json(http, status, $"{{\"error\":{escaped},\"message\":{escaped},\"code\":{(int)code}}}");
    }

    private sealed class OneRequest<T>(T request, CancellationToken holdOpen) : IAsyncStreamReader<T>
    {
        private bool _given;

        public T Current => request;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!_given)
            {
                _given = true;
                return true;
            }
            // A watch's request stream stays open until the client goes away; then the stream ends.
            using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, holdOpen);
            try
            {
                await Task.Delay(Timeout.Infinite, either.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
            return false;
        }
    }

    private sealed class LineWriter<T>(HttpContext http, CancellationTokenSource? endAfterFirst) : IServerStreamWriter<T> where T : IMessage
    {
        public bool Started { get; private set; }

        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(T message) => WriteAsync(message, http.RequestAborted);

        public async Task WriteAsync(T message, CancellationToken cancellationToken)
        {
            if (!Started)
            {
                Started = true;
                http.Response.StatusCode = 200;
                http.Response.ContentType = "application/json";
            }
            await http.Response.WriteAsync("{\"result\":" + Formatter.Format(message) + "}\n", cancellationToken).ConfigureAwait(false);
            await http.Response.Body.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (endAfterFirst is not null) await endAfterFirst.CancelAsync().ConfigureAwait(false);
        }
    }
}

/// <summary>A gRPC call context for a request that came through the JSON gateway: its headers, peer and cancellation.</summary>
internal sealed class JsonCallContext(HttpContext http, string method, CancellationToken? cancellation = null) : ServerCallContext
{
    private readonly Metadata _headers = Headers(http);

    public IPAddress? Remote => http.Connection.RemoteIpAddress;

    private static Metadata Headers(HttpContext http)
    {
        var m = new Metadata();
        // etcd's gateway passes the Authorization header on as the call's token.
        if (http.Request.Headers.Authorization is { Count: > 0 } a && !string.IsNullOrEmpty(a[0])) m.Add("token", a[0]!);
        return m;
    }

    protected override string MethodCore => method;
    protected override string HostCore => http.Request.Host.Value ?? "";
    protected override string PeerCore => http.Connection.RemoteIpAddress?.ToString() ?? "";
    protected override DateTime DeadlineCore => DateTime.MaxValue;
    protected override Metadata RequestHeadersCore => _headers;
    protected override CancellationToken CancellationTokenCore => cancellation ?? http.RequestAborted;
    protected override Metadata ResponseTrailersCore { get; } = [];
    protected override Status StatusCore { get; set; }
    protected override WriteOptions? WriteOptionsCore { get; set; }
    protected override AuthContext AuthContextCore => new(null, []);
    protected override ContextPropagationToken CreatePropagationTokenCore(ContextPropagationOptions? options) => throw new NotSupportedException();
    protected override Task WriteResponseHeadersAsyncCore(Metadata responseHeaders) => Task.CompletedTask;
}
