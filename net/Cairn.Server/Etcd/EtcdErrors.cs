using Cairn.Protocol;
using Grpc.Core;

namespace Cairn.Server.Etcd;

/// <summary>
/// Cairn's refusals as etcd's gRPC errors: the status code and the exact message etcd's server sends
/// (clients such as clientv3 and dotnet-etcd recognise errors by these strings). Where etcd has no counterpart the
/// message is Cairn's own, after etcd's "etcdserver: " prefix.
/// </summary>
internal static class EtcdErrors
{
    public static RpcException EmptyKey() => Error(StatusCode.InvalidArgument, "etcdserver: key is not provided");
    public static RpcException ValueProvided() => Error(StatusCode.InvalidArgument, "etcdserver: value is provided");
    public static RpcException LeaseProvided() => Error(StatusCode.InvalidArgument, "etcdserver: lease is provided");
    public static RpcException TooManyOps() => Error(StatusCode.InvalidArgument, "etcdserver: too many operations in txn request");
    public static RpcException DuplicateKey() => Error(StatusCode.InvalidArgument, "etcdserver: duplicate key given in txn request");
    public static RpcException UserEmpty() => Error(StatusCode.InvalidArgument, "etcdserver: user name is empty");
    public static RpcException LeaseTtlTooLarge() => Error(StatusCode.OutOfRange, "etcdserver: too large lease TTL");

    public static RpcException Error(StatusCode code, string message) => new(new Status(code, message), message);

    /// <summary>The gRPC error for a Cairn refusal.</summary>
    public static RpcException From(ErrorCode code, string message) => code switch
    {
        ErrorCode.Compacted => Error(StatusCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted"),
        ErrorCode.FutureRevision => Error(StatusCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision"),
        ErrorCode.LeaseNotFound => Error(StatusCode.NotFound, "etcdserver: requested lease not found"),
        ErrorCode.LeaseExists => Error(StatusCode.FailedPrecondition, "etcdserver: lease already exists"),
        ErrorCode.NoSpace => Error(StatusCode.ResourceExhausted, "etcdserver: mvcc: database space exceeded"),
        ErrorCode.NoLeader => Error(StatusCode.Unavailable, "etcdserver: no leader"),
        ErrorCode.Busy or ErrorCode.TooManyRequests or ErrorCode.TooManyConnections => Error(StatusCode.ResourceExhausted, "etcdserver: too many requests"),
        ErrorCode.Timeout => Error(StatusCode.Unavailable, "etcdserver: request timed out"),
        ErrorCode.Stopping or ErrorCode.MemberRemoved => Error(StatusCode.Unavailable, "etcdserver: server stopped"),
        ErrorCode.Corrupt => Error(StatusCode.DataLoss, "etcdserver: corrupt cluster"),
        ErrorCode.Conflict => Error(StatusCode.InvalidArgument, "etcdserver: duplicate key given in txn request"),
        ErrorCode.FrameTooLarge => Error(StatusCode.InvalidArgument, "etcdserver: request is too large"),
        ErrorCode.AuthFailed => Error(StatusCode.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password"),
        ErrorCode.PermissionDenied => Error(StatusCode.PermissionDenied, "etcdserver: permission denied"),
        ErrorCode.InvalidAuthToken => Error(StatusCode.Unauthenticated, "etcdserver: invalid auth token"),
        ErrorCode.AuthError => Auth(message),
        ErrorCode.MemberChange => Member(message),
        ErrorCode.WatchNotFound => Error(StatusCode.NotFound, "etcdserver: " + message),
        ErrorCode.InvalidArgument or ErrorCode.Malformed => Error(StatusCode.InvalidArgument, "etcdserver: " + message),
        _ => Error(StatusCode.Internal, "etcdserver: " + message),
    };

    private static RpcException Auth(string m)
    {
        if (m.Contains("not enabled", StringComparison.Ordinal)) return Error(StatusCode.FailedPrecondition, "etcdserver: authentication is not enabled");
        if (m.Contains("needs a root user", StringComparison.Ordinal)) return Error(StatusCode.FailedPrecondition, "etcdserver: root user does not exist");
        var user = m.StartsWith("user ", StringComparison.Ordinal);
        var role = m.StartsWith("role ", StringComparison.Ordinal);
        if (m.Contains("already exists", StringComparison.Ordinal) && (user || role))
            return Error(StatusCode.FailedPrecondition, user ? "etcdserver: user name already exists" : "etcdserver: role name already exists");
        if (m.Contains("does not exist", StringComparison.Ordinal) && (user || role))
            return Error(StatusCode.FailedPrecondition, user ? "etcdserver: user name not found" : "etcdserver: role name not found");
        if (m.Contains("does not have role", StringComparison.Ordinal)) return Error(StatusCode.FailedPrecondition, "etcdserver: role is not granted to the user");
        if (m.Contains("has no permission on exactly", StringComparison.Ordinal)) return Error(StatusCode.FailedPrecondition, "etcdserver: permission is not granted to the role");
        return Error(StatusCode.FailedPrecondition, "etcdserver: " + m);
    }

    private static RpcException Member(string m)
    {
        if (m.Contains("not found", StringComparison.Ordinal) || m.Contains("no member", StringComparison.Ordinal)) return Error(StatusCode.NotFound, "etcdserver: member not found");
        if (m.Contains("not a learner", StringComparison.Ordinal)) return Error(StatusCode.FailedPrecondition, "etcdserver: can only promote a learner member");
        return Error(StatusCode.FailedPrecondition, "etcdserver: " + m);
    }
}
