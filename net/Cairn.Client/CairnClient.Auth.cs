using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>Auth: logging in, and managing users, roles and auth itself (root only once auth is enabled) — as etcd's auth API.</summary>
public sealed partial class CairnClient
{
    private volatile string? _token;   // the last token a member issued for the credentials; shared by every connection

    /// <summary>Opens a connection and, with credentials, authenticates it before anyone uses it.</summary>
    private async Task<Connection> OpenAsync(string endpoint)
    {
        var c = await Connection.OpenAsync(endpoint, _options.ConnectTimeout, _options.MaxResponseFrameBytes, _tls, _disposed.Token).ConfigureAwait(false);
        if (_options.Credentials is null && _options.Token is null) return c;
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_disposed.Token);
            timeout.CancelAfter(_options.RequestTimeout);
            if (_options.Credentials is not null) await AuthenticateConnectionAsync(c, withPassword: false, timeout.Token).ConfigureAwait(false);
            else await SendOnAsync(c, MessageType.AuthToken, w => w.String(_options.Token!), static (ref PayloadReader r, in WireHeader _) => r.String(), timeout.Token).ConfigureAwait(false);
            return c;
        }
        catch
        {
            await c.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>
    /// Authenticates one connection: with the shared token when there is one (and <paramref name="withPassword"/> is
    /// false), else — or when the token is refused — with the password, keeping the new token. A cluster without auth
    /// enabled answers AuthError: nothing to do.
    /// </summary>
    private async Task AuthenticateConnectionAsync(Connection c, bool withPassword, CancellationToken cancellationToken)
    {
        var credentials = _options.Credentials!;
        if (!withPassword && _token is { } token)
        {
            try
            {
                await SendOnAsync(c, MessageType.AuthToken, w => w.String(token), static (ref PayloadReader r, in WireHeader _) => r.String(), cancellationToken).ConfigureAwait(false);
                return;
            }
            catch (CairnAuthException e) when (e.Code == ErrorCode.InvalidAuthToken)
            {
                // expired or from before a password change: log in with the password below
            }
        }
        try
        {
            _token = await SendOnAsync(c, MessageType.Authenticate, w => AuthMessages.WriteAuthenticate(w, credentials.User, credentials.Password),
                static (ref PayloadReader r, in WireHeader _) => r.String(), cancellationToken).ConfigureAwait(false);
        }
        catch (CairnAuthException e) when (e.Code == ErrorCode.AuthError)
        {
            // auth is not enabled on the cluster: requests need no token
        }
    }

    /// <summary>One request on one given connection (no retry): for the auth exchange as a connection opens.</summary>
    private async Task<T> SendOnAsync<T>(Connection c, MessageType type, Action<FrameWriter> body, BodyParser<T> parse, CancellationToken cancellationToken)
    {
        var op = new UnaryOp<T>(type, NextId(), parse);
        if (!c.TryStart(op, body)) throw new CairnUnavailableException([(c.Endpoint, "the connection closed while authenticating")]);
        try
        {
            return (await op.Task.WaitAsync(cancellationToken).ConfigureAwait(false)).Body;
        }
        catch (OperationCanceledException)
        {
            c.Forget(op);
            throw;
        }
        catch (ConnectionLostException e)
        {
            throw new CairnUnavailableException([(c.Endpoint, e.Reason)], e);
        }
    }

    /// <summary>Logs in with a user name and password and returns the token (valid on every member until it expires). The client's own connections use <see cref="CairnClientOptions.Credentials"/> instead.</summary>
    public Task<Answer<string>> AuthenticateAsync(string user, string password, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(user);
        ArgumentNullException.ThrowIfNull(password);
        return CallAsync(MessageType.Authenticate, w => AuthMessages.WriteAuthenticate(w, user, password), static (ref PayloadReader r, in WireHeader _) => r.String(), idempotent: true, null, cancellationToken);
    }

    /// <summary>Whether auth is enabled, and the auth revision (it counts auth changes).</summary>
    public Task<Answer<(bool Enabled, long Revision)>> AuthStatusAsync(CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.AuthStatus, null, static (ref PayloadReader r, in WireHeader _) => (r.Bool(), r.I64()), idempotent: true, null, cancellationToken);

    /// <summary>Turns auth on; refused until a root user exists (it gets the root role if it lacks it).</summary>
    public Task<WireHeader> AuthEnableAsync(CancellationToken cancellationToken = default) => ChangeAsync(new AuthChangeRequest(AuthOp.Enable), cancellationToken);

    /// <summary>Turns auth off (root only); users and roles are kept.</summary>
    public Task<WireHeader> AuthDisableAsync(CancellationToken cancellationToken = default) => ChangeAsync(new AuthChangeRequest(AuthOp.Disable), cancellationToken);

    /// <summary>Adds a user; with a null password it can only be named by a client certificate.</summary>
    public Task<WireHeader> UserAddAsync(string name, string? password, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.UserAdd) { Name = name, Password = password }, cancellationToken);

    /// <summary>Deletes a user (not root while auth is enabled).</summary>
    public Task<WireHeader> UserDeleteAsync(string name, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.UserDelete) { Name = name }, cancellationToken);

    /// <summary>Changes a user's password; the user's tokens stop working.</summary>
    public Task<WireHeader> UserChangePasswordAsync(string name, string password, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(password);
        return ChangeAsync(new AuthChangeRequest(AuthOp.UserPassword) { Name = name, Password = password }, cancellationToken);
    }

    /// <summary>Grants a role to a user.</summary>
    public Task<WireHeader> UserGrantRoleAsync(string name, string role, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.UserGrantRole) { Name = name, Role = role }, cancellationToken);

    /// <summary>Revokes a role from a user.</summary>
    public Task<WireHeader> UserRevokeRoleAsync(string name, string role, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.UserRevokeRole) { Name = name, Role = role }, cancellationToken);

    /// <summary>Every user name.</summary>
    public Task<Answer<string[]>> UserListAsync(CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.UserList, null, static (ref PayloadReader r, in WireHeader _) => AuthMessages.ReadNames(ref r), idempotent: true, null, cancellationToken);

    /// <summary>A user's roles.</summary>
    public Task<Answer<string[]>> UserGetAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        return CallAsync(MessageType.UserGet, w => w.String(name), static (ref PayloadReader r, in WireHeader _) => AuthMessages.ReadNames(ref r), idempotent: true, null, cancellationToken);
    }

    /// <summary>Adds a role (without permissions).</summary>
    public Task<WireHeader> RoleAddAsync(string name, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.RoleAdd) { Name = name }, cancellationToken);

    /// <summary>Deletes a role and takes it from every user.</summary>
    public Task<WireHeader> RoleDeleteAsync(string name, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.RoleDelete) { Name = name }, cancellationToken);

    /// <summary>Every role name (root included).</summary>
    public Task<Answer<string[]>> RoleListAsync(CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.RoleList, null, static (ref PayloadReader r, in WireHeader _) => AuthMessages.ReadNames(ref r), idempotent: true, null, cancellationToken);

    /// <summary>A role's permissions.</summary>
    public Task<Answer<Permission[]>> RoleGetAsync(string name, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        return CallAsync(MessageType.RoleGet, w => w.String(name), static (ref PayloadReader r, in WireHeader _) => AuthMessages.ReadPermissions(ref r), idempotent: true, null, cancellationToken);
    }

    /// <summary>
    /// Grants <paramref name="type"/> on one key (<paramref name="rangeEnd"/> empty), a range [key, rangeEnd), or every
    /// key from key on (rangeEnd = [0]); for a prefix use <see cref="RangeRequest.Prefix"/> as the range end. Replaces a permission on the same keys.
    /// </summary>
    public Task<WireHeader> RoleGrantPermissionAsync(string role, PermissionType type, byte[] key, byte[]? rangeEnd = null, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.RoleGrantPermission) { Name = role, Permission = new Permission(type, key, rangeEnd ?? []) }, cancellationToken);

    /// <summary>Revokes the permission on exactly these keys.</summary>
    public Task<WireHeader> RoleRevokePermissionAsync(string role, byte[] key, byte[]? rangeEnd = null, CancellationToken cancellationToken = default) =>
        ChangeAsync(new AuthChangeRequest(AuthOp.RoleRevokePermission) { Name = role, Permission = new Permission(PermissionType.Read, key, rangeEnd ?? []) }, cancellationToken);

    private async Task<WireHeader> ChangeAsync(AuthChangeRequest change, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(change.Name);
        // Auth changes are idempotent in effect only sometimes (a repeated user add fails); like other writes they are
        // retried only when provably not applied.
        var answer = await CallAsync(MessageType.AuthChange, w => AuthMessages.WriteChange(w, change), Parsers.None, idempotent: false, null, cancellationToken).ConfigureAwait(false);
        return answer.Header;
    }
}
