using Cairn.Kv;
using Cairn.Protocol;
using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: the gRPC request threads.
/// etcd's Auth service over Cairn's users and roles. Authenticate answers a token that every member accepts; a
/// client sends it back in the <c>token</c> metadata of each call, as etcd's clients do.
/// </summary>
internal sealed class EtcdAuth(EtcdGateway gateway) : Api.Auth.AuthBase
{
    private Task<T> Change<T>(AuthChangeRequest change, ServerCallContext context) where T : Google.Protobuf.IMessage<T>, new() =>
        gateway.CallAsync(MessageType.AuthChange, change, context, static (w, c) => AuthMessages.WriteChange(w, c), static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new T();
            // Every change answer of etcd's Auth service has its header as field 1.
            response.Descriptor.FindFieldByNumber(1).Accessor.SetValue(response, header);
            return response;
        });

    public override Task<Api.AuthEnableResponse> AuthEnable(Api.AuthEnableRequest request, ServerCallContext context) =>
        Change<Api.AuthEnableResponse>(new AuthChangeRequest(AuthOp.Enable), context);

    public override Task<Api.AuthDisableResponse> AuthDisable(Api.AuthDisableRequest request, ServerCallContext context) =>
        Change<Api.AuthDisableResponse>(new AuthChangeRequest(AuthOp.Disable), context);

    public override Task<Api.AuthStatusResponse> AuthStatus(Api.AuthStatusRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.AuthStatus, 0, context, static (_, _) => { }, static (ref PayloadReader r, Api.ResponseHeader header) =>
            new Api.AuthStatusResponse { Header = header, Enabled = r.Bool(), AuthRevision = (ulong)r.I64() });

    public override Task<Api.AuthenticateResponse> Authenticate(Api.AuthenticateRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.Authenticate, request, context, static (w, q) => AuthMessages.WriteAuthenticate(w, q.Name, q.Password),
            static (ref PayloadReader r, Api.ResponseHeader header) => new Api.AuthenticateResponse { Header = header, Token = r.String() });

    public override Task<Api.AuthUserAddResponse> UserAdd(Api.AuthUserAddRequest request, ServerCallContext context)
    {
        if (string.IsNullOrEmpty(request.Name)) throw EtcdErrors.UserEmpty();
        var noPassword = request.Options?.NoPassword == true;
        return Change<Api.AuthUserAddResponse>(new AuthChangeRequest(AuthOp.UserAdd) { Name = request.Name, Password = noPassword ? null : request.Password }, context);
    }

    public override Task<Api.AuthUserDeleteResponse> UserDelete(Api.AuthUserDeleteRequest request, ServerCallContext context) =>
        Change<Api.AuthUserDeleteResponse>(new AuthChangeRequest(AuthOp.UserDelete) { Name = request.Name }, context);

    public override Task<Api.AuthUserChangePasswordResponse> UserChangePassword(Api.AuthUserChangePasswordRequest request, ServerCallContext context) =>
        Change<Api.AuthUserChangePasswordResponse>(new AuthChangeRequest(AuthOp.UserPassword) { Name = request.Name, Password = request.Password }, context);

    public override Task<Api.AuthUserGrantRoleResponse> UserGrantRole(Api.AuthUserGrantRoleRequest request, ServerCallContext context) =>
        Change<Api.AuthUserGrantRoleResponse>(new AuthChangeRequest(AuthOp.UserGrantRole) { Name = request.User, Role = request.Role }, context);

    public override Task<Api.AuthUserRevokeRoleResponse> UserRevokeRole(Api.AuthUserRevokeRoleRequest request, ServerCallContext context) =>
        Change<Api.AuthUserRevokeRoleResponse>(new AuthChangeRequest(AuthOp.UserRevokeRole) { Name = request.Name, Role = request.Role }, context);

    public override Task<Api.AuthRoleAddResponse> RoleAdd(Api.AuthRoleAddRequest request, ServerCallContext context) =>
        Change<Api.AuthRoleAddResponse>(new AuthChangeRequest(AuthOp.RoleAdd) { Name = request.Name }, context);

    public override Task<Api.AuthRoleDeleteResponse> RoleDelete(Api.AuthRoleDeleteRequest request, ServerCallContext context) =>
        Change<Api.AuthRoleDeleteResponse>(new AuthChangeRequest(AuthOp.RoleDelete) { Name = request.Role }, context);

    public override Task<Api.AuthRoleGrantPermissionResponse> RoleGrantPermission(Api.AuthRoleGrantPermissionRequest request, ServerCallContext context)
    {
        var p = request.Perm ?? throw EtcdErrors.Error(StatusCode.InvalidArgument, "etcdserver: permission is not provided");
        var type = p.PermType switch
        {
            Api.Permission.Types.Type.Read => PermissionType.Read,
            Api.Permission.Types.Type.Write => PermissionType.Write,
            _ => PermissionType.ReadWrite,
        };
        return Change<Api.AuthRoleGrantPermissionResponse>(new AuthChangeRequest(AuthOp.RoleGrantPermission)
        {
            Name = request.Name, Permission = new Permission(type, p.Key.ToByteArray(), p.RangeEnd.ToByteArray()),
        }, context);
    }

    public override Task<Api.AuthRoleRevokePermissionResponse> RoleRevokePermission(Api.AuthRoleRevokePermissionRequest request, ServerCallContext context) =>
        Change<Api.AuthRoleRevokePermissionResponse>(new AuthChangeRequest(AuthOp.RoleRevokePermission)
        {
            Name = request.Role, Permission = new Permission(PermissionType.Read, request.Key.ToByteArray(), request.RangeEnd.ToByteArray()),
        }, context);

    public override Task<Api.AuthUserGetResponse> UserGet(Api.AuthUserGetRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.UserGet, request.Name, context, static (w, n) => w.String(n), static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.AuthUserGetResponse { Header = header };
            response.Roles.AddRange(AuthMessages.ReadNames(ref r));
            return response;
        });

    public override Task<Api.AuthUserListResponse> UserList(Api.AuthUserListRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.UserList, 0, context, static (_, _) => { }, static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.AuthUserListResponse { Header = header };
            response.Users.AddRange(AuthMessages.ReadNames(ref r));
            return response;
        });

    public override Task<Api.AuthRoleListResponse> RoleList(Api.AuthRoleListRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.RoleList, 0, context, static (_, _) => { }, static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.AuthRoleListResponse { Header = header };
            response.Roles.AddRange(AuthMessages.ReadNames(ref r));
            return response;
        });

    public override Task<Api.AuthRoleGetResponse> RoleGet(Api.AuthRoleGetRequest request, ServerCallContext context) =>
        gateway.CallAsync(MessageType.RoleGet, request.Role, context, static (w, n) => w.String(n), static (ref PayloadReader r, Api.ResponseHeader header) =>
        {
            var response = new Api.AuthRoleGetResponse { Header = header };
            foreach (var p in AuthMessages.ReadPermissions(ref r))
            {
                response.Perm.Add(new Api.Permission
                {
                    PermType = p.Type switch { PermissionType.Read => Api.Permission.Types.Type.Read, PermissionType.Write => Api.Permission.Types.Type.Write, _ => Api.Permission.Types.Type.Readwrite },
                    Key = Google.Protobuf.ByteString.CopyFrom(p.Key), RangeEnd = Google.Protobuf.ByteString.CopyFrom(p.RangeEnd),
                });
            }
            return response;
        });
}
