using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>A connection's authenticated user: its name, when its token ends, and its access as of an auth revision.</summary>
internal sealed record SessionAuth(string User, long ExpiresUtcTicks, long Stamp, long Revision, UserAccess Access, bool FromCertificate = false);

/// <summary>
/// Users, roles and tokens (docs/server.md, "Auth"). The auth state is replicated (<see cref="KvStateMachine.Auth"/>),
/// so every member checks requests, and tokens are signed with the cluster's key from that state: a token from one
/// member is good on every other, and survives a change of leader. A connection authenticates once (a password, or a
/// token from another connection); after that each request costs a permission check that allocates nothing.
/// </summary>
public sealed partial class Member
{
    private readonly ConcurrentDictionary<(string User, IPAddress? From), (int Failures, long NotBefore)> _loginFailures = new();
    private const int MaxTrackedFailures = 10_000;
    private static readonly TimeSpan MaxLoginDelay = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Checks a client's request against its user's permissions when auth is on. False when refused (the answer is
    /// written). Requests from peers were checked by the member the client is connected to.
    /// </summary>
    internal bool Authorize(Responder r, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var state = _sm.Auth;
        if (!state.Enabled || r is not ClientResponder session) return true;
        if (h.Type is MessageType.Authenticate or MessageType.AuthToken or MessageType.AuthStatus) return true;
        var auth = session.Auth;
        if (auth is null && session.CertificateUser is { } cn && state.Access(cn) is { } byCertificate)
        {
            // Mutual TLS named the user (its certificate's common name), as etcd's --client-cert-auth does: no password,
            // no token; the connection is that user for as long as it lasts.
            auth = new SessionAuth(cn, long.MaxValue, 0, state.Revision, byCertificate, FromCertificate: true);
            session.Auth = auth;
        }
        string? refusal = null;
        if (auth is null) refusal = "auth is enabled: authenticate first (cairn --user NAME, or the client's Credentials option)";
        else if (auth.ExpiresUtcTicks < _options.Time.GetUtcNow().UtcTicks) refusal = "the auth token has expired; authenticate again";
        else if (auth.Revision != state.Revision)
        {
            auth = Refresh(session, auth, state);
            if (auth is null) refusal = "the user was deleted or its password changed since this connection authenticated; authenticate again";
        }
        if (auth is null || refusal is not null)
        {
            Refuse(r, h.Type, h.RequestId, ErrorCode.InvalidAuthToken, refusal ?? "authenticate first");
            return false;
        }
        var access = auth.Access;
        if (access.IsRoot) return true;
        var reader = new PayloadReader(payload);
        try
        {
            switch (h.Type)
            {
                case MessageType.Range:
                {
                    var v = Messages.ReadRangeView(ref reader);
                    return Need(r, h, access, PermissionType.Read, v.Key, v.RangeEnd, "range");
                }
                case MessageType.Put:
                    return Need(r, h, access, PermissionType.Write, reader.Bytes(), [], "put");
                case MessageType.DeleteRange:
                {
                    var d = Messages.ReadDelete(ref reader);
                    return Need(r, h, access, d.PrevKv ? PermissionType.ReadWrite : PermissionType.Write, d.Key, d.RangeEnd, "delete");
                }
                case MessageType.Txn:
                    return NeedTxn(r, h, access, Messages.ReadTxn(ref reader));
                case MessageType.WatchCreate:
                {
                    var w = Messages.ReadWatchCreate(ref reader);
                    return Need(r, h, access, PermissionType.Read, w.Key, w.RangeEnd, "watch");
                }
                case MessageType.LeaseRevoke:
                {
                    // Revoking deletes the lease's keys: the user must be allowed to delete each (as etcd checks).
                    var info = _sm.Lease(reader.I64(), withKeys: true);
                    if (info is null) return true; // answered "not found" by the revoke itself
                    foreach (var key in info.Keys) if (!Need(r, h, access, PermissionType.Write, key, [], "lease revoke")) return false;
                    return true;
                }
                case MessageType.LeaseGrant:
                case MessageType.LeaseKeepAlive:
                case MessageType.LeaseTimeToLive:
                case MessageType.LeaseList:
                case MessageType.WatchCancel:
                case MessageType.Status:
                case MessageType.MemberList:
                case MessageType.AlarmList:
                case MessageType.ScaleStatus:
                    return true;
                default:
                    // Compaction, maintenance, membership, scaling and the auth changes and listings: root only.
                    Refuse(r, h.Type, h.RequestId, ErrorCode.PermissionDenied, $"user '{auth.User}' may not {h.Type}: it needs the root role");
                    return false;
            }
        }
        catch (ProtocolException)
        {
            return true; // malformed: the handler answers it
        }
    }

    private bool NeedTxn(Responder r, in FrameHeader h, UserAccess access, TxnRequest t)
    {
        foreach (var c in t.Compares) if (!Need(r, h, access, PermissionType.Read, c.Key, c.RangeEnd, "txn compare")) return false;
        foreach (var ops in (IReadOnlyList<TxnOp>[])[t.Success, t.Failure])
        {
            foreach (var op in ops)
            {
                if (op.Range is { } q && !Need(r, h, access, PermissionType.Read, q.Key, q.RangeEnd, "txn range")) return false;
                if (op.Put is { } p && !Need(r, h, access, p.PrevKv ? PermissionType.ReadWrite : PermissionType.Write, p.Key, [], "txn put")) return false;
                if (op.Delete is { } d && !Need(r, h, access, d.PrevKv ? PermissionType.ReadWrite : PermissionType.Write, d.Key, d.RangeEnd, "txn delete")) return false;
                if (op.Txn is { } inner && !NeedTxn(r, h, access, inner)) return false;
            }
        }
        return true;
    }

    private bool Need(Responder r, in FrameHeader h, UserAccess access, PermissionType need, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, string what)
    {
        if (access.Permits(need, key, rangeEnd)) return true;
        Interlocked.Increment(ref Stats.PermissionDenied);
        var keys = rangeEnd.IsEmpty ? $"key {Show(key)}" : rangeEnd is [0] ? $"keys from {Show(key)} on" : $"keys [{Show(key)}, {Show(rangeEnd)})";
        var kind = need switch { PermissionType.Read => "read", PermissionType.Write => "write", _ => "read and write" };
        Refuse(r, h.Type, h.RequestId, ErrorCode.PermissionDenied, $"user '{access.User.Name}' may not {what} {keys}: no role grants it {kind} permission there");
        return false;
    }

    private static string Show(ReadOnlySpan<byte> key)
    {
        foreach (var b in key) if (b < 0x20 || b > 0x7e) return "0x" + Convert.ToHexString(key);
        return "'" + Encoding.UTF8.GetString(key) + "'";
    }

    /// <summary>The session's access under a newer auth state, or null when its user is gone or its password changed.</summary>
    private static SessionAuth? Refresh(ClientResponder session, SessionAuth auth, AuthState state)
    {
        var access = state.Access(auth.User);
        if (access is null || (!auth.FromCertificate && Stamp(access.User) != auth.Stamp))
        {
            session.Auth = null;
            return null;
        }
        var fresh = auth with { Revision = state.Revision, Access = access };
        session.Auth = fresh;
        return fresh;
    }

    /// <summary>Changes when the user's password does (a token names the password it was issued under).</summary>
    private static long Stamp(AuthUser user) => user.Password is { } p ? BinaryPrimitives.ReadInt64LittleEndian(p.Hash) : 0;

    // ---------------- requests ----------------

    internal void HandleAuth(Responder r, in FrameHeader h, ref PayloadReader reader)
    {
        var id = h.RequestId;
        switch (h.Type)
        {
            case MessageType.Authenticate:
            {
                var name = reader.String();
                var password = reader.String();
                reader.End();
                if (r is not ClientResponder session) throw new ProtocolException(ErrorCode.InvalidArgument, "authenticate on a client connection");
                _ = LoginAsync(session, id, name, password); // PBKDF2 is slow on purpose: not on the receive loop
                break;
            }
            case MessageType.AuthToken:
            {
                var token = reader.String();
                reader.End();
                if (r is not ClientResponder session) throw new ProtocolException(ErrorCode.InvalidArgument, "tokens are given on a client connection");
                var auth = VerifyToken(token, out var why) ?? throw new ProtocolException(ErrorCode.InvalidAuthToken, why!);
                session.Auth = auth;
                WriteAnswer(r, h.Type, id, w => w.String(auth.User));
                break;
            }
            case MessageType.AuthStatus:
            {
                reader.End();
                var state = _sm.Auth;
                WriteAnswer(r, h.Type, id, w =>
                {
                    w.Bool(state.Enabled);
                    w.I64(state.Revision);
                });
                break;
            }
            case MessageType.UserList:
                reader.End();
                WriteAnswer(r, h.Type, id, w => AuthMessages.WriteNames(w, _sm.Auth.Users.Keys.Order(StringComparer.Ordinal)));
                break;
            case MessageType.RoleList:
                reader.End();
                WriteAnswer(r, h.Type, id, w => AuthMessages.WriteNames(w, _sm.Auth.Roles.Keys.Append(AuthState.Root).Distinct().Order(StringComparer.Ordinal)));
                break;
            case MessageType.UserGet:
            {
                var name = reader.String();
                reader.End();
                var user = _sm.Auth.Users.GetValueOrDefault(name) ?? throw new ProtocolException(ErrorCode.AuthError, $"user '{name}' does not exist (see `cairn user list`)");
                WriteAnswer(r, h.Type, id, w => AuthMessages.WriteNames(w, user.Roles));
                break;
            }
            case MessageType.RoleGet:
            {
                var name = reader.String();
                reader.End();
                var state = _sm.Auth;
                var role = state.Roles.GetValueOrDefault(name) ?? (name == AuthState.Root ? new AuthRole(AuthState.Root, []) : null)
                    ?? throw new ProtocolException(ErrorCode.AuthError, $"role '{name}' does not exist (see `cairn role list`)");
                WriteAnswer(r, h.Type, id, w => AuthMessages.WritePermissions(w, role.Permissions));
                break;
            }
            case MessageType.AuthChange:
            {
                var change = AuthMessages.ReadChange(ref reader);
                if (r is ClientResponder && (change.Hash is not null || change.SigningKey is not null))
                {
                    throw new ProtocolException(ErrorCode.InvalidArgument, "clients send passwords, not hashes or keys; members hash them");
                }
                if (change.Op is AuthOp.UserAdd or AuthOp.UserPassword && change.Password is not null)
                {
                    _ = HashThenChangeAsync(r, h, change); // slow on purpose: not on the receive loop
                    break;
                }
                if (change.Op == AuthOp.UserPassword && change.Hash is null) throw new ProtocolException(ErrorCode.InvalidArgument, "a password change needs the new password");
                Change(r, h, change);
                break;
            }
        }
    }

    private async Task HashThenChangeAsync(Responder r, FrameHeader h, AuthChangeRequest change)
    {
        await Task.Yield();
        var hashed = change with { Password = null, Hash = PasswordHash.Create(change.Password!, _options.PasswordIterations) };
        try
        {
            Change(r, h, hashed);
        }
        catch (ProtocolException e)
        {
            Refuse(r, h.Type, h.RequestId, e.Code, e.Message);
        }
    }

    /// <summary>Proposes an auth change on the leader, or forwards it (hashed already) to the leader.</summary>
    private void Change(Responder r, in FrameHeader h, AuthChangeRequest change)
    {
        if (!IsLeader)
        {
            using var w = new FrameWriter(256);
            AuthMessages.WriteChange(w, change);
            _router.Forward(r, h, w.WrittenSpan);
            return;
        }
        if (change.Op == AuthOp.Enable && _sm.Auth.SigningKey.Length == 0) change = change with { SigningKey = RandomNumberGenerator.GetBytes(32) };
        var data = Envelope(new KvCommand { Auth = new AuthCommand(change.Op) { Name = change.Name, Role = change.Role, Password = change.Hash, Permission = change.Permission, SigningKey = change.SigningKey } }.Encode(), out var seq);
        if (!TryPropose(new Proposal(data, new RequestWaiter(r, h.Type, h.RequestId)) { Seq = seq }))
        {
            Refuse(r, h.Type, h.RequestId, ErrorCode.Busy, $"the leader has {_options.MaxPendingProposals} proposals queued; retry with backoff");
        }
    }

    private async Task LoginAsync(ClientResponder session, ulong id, string name, string password)
    {
        await Task.Yield();
        try
        {
            var state = _sm.Auth;
            if (!state.Enabled) throw new ProtocolException(ErrorCode.AuthError, "auth is not enabled (`cairn auth enable`); requests need no credentials");
            // Failed attempts for this user from this address are answered more and more slowly; other addresses (and
            // the right password from anywhere) are not locked out, only this address's guessing is slowed.
            var key = (name, session.RemoteAddress);
            if (_loginFailures.TryGetValue(key, out var f))
            {
                var wait = f.NotBefore - _options.Time.GetUtcNow().UtcTicks;
                if (wait > 0) await Task.Delay(TimeSpan.FromTicks(wait), _options.Time, session.Closed).ConfigureAwait(false);
            }
            var user = state.Users.GetValueOrDefault(name);
            var ok = user?.Password is { } hash ? hash.Verify(password) : DummyVerify(password);
            if (!ok)
            {
                NoteFailure(key);
                Interlocked.Increment(ref Stats.AuthFailures);
                throw new ProtocolException(ErrorCode.AuthFailed, "wrong user name or password");
            }
            _loginFailures.TryRemove(key, out _);
            var access = state.Access(name)!;
            var expires = _options.Time.GetUtcNow().UtcDateTime + _options.AuthTokenTtl;
            var auth = new SessionAuth(name, expires.Ticks, Stamp(user!), state.Revision, access);
            session.Auth = auth;
            var token = IssueToken(state, auth);
            WriteAnswer(session, MessageType.Authenticate, id, w => w.String(token));
        }
        catch (ProtocolException e)
        {
            Refuse(session, MessageType.Authenticate, id, e.Code, e.Message);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Costs what a real check costs, so a missing user cannot be told from a wrong password by the time taken.</summary>
    private bool DummyVerify(string password)
    {
        _dummyHash ??= PasswordHash.Create("no such user", _options.PasswordIterations);
        _dummyHash.Verify(password);
        return false;
    }

    private PasswordHash? _dummyHash;

    private void NoteFailure((string, IPAddress?) key)
    {
        if (_loginFailures.Count > MaxTrackedFailures) _loginFailures.Clear(); // bounded memory; an attacker gains a reset at most
        _loginFailures.AddOrUpdate(key, _ => (1, _options.Time.GetUtcNow().UtcTicks + Delay(1).Ticks), (_, f) => (f.Failures + 1, _options.Time.GetUtcNow().UtcTicks + Delay(f.Failures + 1).Ticks));
    }

    /// <summary>No wait after the first failure, then 100 ms doubling up to 5 s.</summary>
    private static TimeSpan Delay(int failures) =>
        failures <= 1 ? TimeSpan.Zero : TimeSpan.FromMilliseconds(Math.Min(MaxLoginDelay.TotalMilliseconds, 100 * Math.Pow(2, Math.Min(failures - 2, 10))));

    // ---------------- tokens ----------------
    // cairn1.<payload>.<mac>, base64url: payload = cluster id u64 | expiry (UTC ticks) i64 | password stamp i64 | user name;
    // mac = HMAC-SHA256 over the payload with the cluster's signing key.

    private string IssueToken(AuthState state, SessionAuth auth)
    {
        var name = Encoding.UTF8.GetBytes(auth.User);
        var payload = new byte[24 + name.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, ClusterId);
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(8), auth.ExpiresUtcTicks);
        BinaryPrimitives.WriteInt64LittleEndian(payload.AsSpan(16), auth.Stamp);
        name.CopyTo(payload.AsSpan(24));
        var mac = HMACSHA256.HashData(state.SigningKey, payload);
        return "cairn1." + Base64Url(payload) + "." + Base64Url(mac);
    }

    /// <summary>Whether auth is on (the replicated auth state says so).</summary>
    internal bool AuthEnabled => _sm.Auth.Enabled;

    internal SessionAuth? VerifyToken(string token, out string? why)
    {
        var state = _sm.Auth;
        why = null;
        if (!state.Enabled)
        {
            why = "auth is not enabled; requests need no token";
            return null;
        }
        var parts = token.Split('.');
        byte[] payload, mac;
        try
        {
            if (parts.Length != 3 || parts[0] != "cairn1") throw new FormatException();
            payload = System.Buffers.Text.Base64Url.DecodeFromChars(parts[1]);
            mac = System.Buffers.Text.Base64Url.DecodeFromChars(parts[2]);
        }
        catch (FormatException)
        {
            why = "not a Cairn auth token; authenticate with a user name and password";
            return null;
        }
        if (payload.Length < 24 || !CryptographicOperations.FixedTimeEquals(mac, HMACSHA256.HashData(state.SigningKey, payload)))
        {
            why = "the token's signature does not match this cluster's key (a token of another cluster, or altered); authenticate again";
            return null;
        }
        if (BinaryPrimitives.ReadUInt64LittleEndian(payload) != ClusterId)
        {
            why = "the token was issued by another cluster; authenticate with this one";
            return null;
        }
        var expires = BinaryPrimitives.ReadInt64LittleEndian(payload.AsSpan(8));
        if (expires < _options.Time.GetUtcNow().UtcTicks)
        {
            why = "the token has expired; authenticate again";
            return null;
        }
        var name = Encoding.UTF8.GetString(payload.AsSpan(24));
        var access = state.Access(name);
        var stamp = BinaryPrimitives.ReadInt64LittleEndian(payload.AsSpan(16));
        if (access is null || Stamp(access.User) != stamp)
        {
            why = "the token's user was deleted or its password changed; authenticate again";
            return null;
        }
        return new SessionAuth(name, expires, stamp, state.Revision, access);
    }

    private static string Base64Url(byte[] b) => System.Buffers.Text.Base64Url.EncodeToString(b);

    private void WriteAnswer(Responder r, MessageType type, ulong id, Action<FrameWriter> body) =>
        r.Answer(type, id, Header(), body, static (w, body) => body(w));
}
