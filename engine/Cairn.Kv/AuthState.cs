using System.Buffers.Binary;
using System.Text;

namespace Cairn.Kv;

/// <summary>
/// The replicated auth state (docs/kv.md, "Auth"): users, roles, whether auth is on and the cluster's token signing
/// key. It lives in the cluster records (keys under "auth/"), so it is changed only through the log and travels with
/// snapshots. Immutable: a new one is built after every applied change.
/// </summary>
public sealed class AuthState
{
    /// <summary>The user and role with every permission.</summary>
    public const string Root = "root";

    internal const string Prefix = "auth/";
    private const string EnabledKey = "auth/enabled", SigningKeyKey = "auth/signing-key", RevisionKey = "auth/revision", UserPrefix = "auth/user/", RolePrefix = "auth/role/";

    private readonly Dictionary<string, UserAccess> _access;

    private AuthState(bool enabled, byte[] signingKey, long revision, Dictionary<string, AuthUser> users, Dictionary<string, AuthRole> roles)
    {
        Enabled = enabled;
        SigningKey = signingKey;
        Revision = revision;
        Users = users;
        Roles = roles;
        _access = new Dictionary<string, UserAccess>(StringComparer.Ordinal);
        foreach (var u in users.Values)
        {
            var perms = u.Roles.Where(roles.ContainsKey).SelectMany(r => roles[r].Permissions).ToList();
            _access[u.Name] = new UserAccess(u, u.Roles.Contains(Root), UserAccess.Merge(perms, PermissionType.Read), UserAccess.Merge(perms, PermissionType.Write));
        }
    }

    /// <summary>No users, no roles, auth off.</summary>
    public static AuthState Empty { get; } = new(false, [], 0, new(StringComparer.Ordinal), new(StringComparer.Ordinal));

    /// <summary>Whether requests are checked.</summary>
    public bool Enabled { get; }

    /// <summary>The key every member signs and checks tokens with (empty until auth is first enabled).</summary>
    public byte[] SigningKey { get; }

    /// <summary>Counts auth changes applied (etcd's auth revision).</summary>
    public long Revision { get; }

    /// <summary>Users by name.</summary>
    public IReadOnlyDictionary<string, AuthUser> Users { get; }

    /// <summary>Roles by name.</summary>
    public IReadOnlyDictionary<string, AuthRole> Roles { get; }

    /// <summary>What <paramref name="user"/> may do, or null when there is no such user.</summary>
    public UserAccess? Access(string user) => _access.GetValueOrDefault(user);

    /// <summary>Builds the state from the cluster records (those outside "auth/" are ignored).</summary>
    public static AuthState Load(IEnumerable<(byte[] Key, byte[] Value)> records)
    {
        ArgumentNullException.ThrowIfNull(records);
        var enabled = false;
        byte[] signing = [];
        long revision = 0;
        var users = new Dictionary<string, AuthUser>(StringComparer.Ordinal);
        var roles = new Dictionary<string, AuthRole>(StringComparer.Ordinal);
        foreach (var (k, v) in records)
        {
            var key = Encoding.UTF8.GetString(k);
            if (!key.StartsWith(Prefix, StringComparison.Ordinal)) continue;
            if (key == EnabledKey) enabled = v is [1];
            else if (key == SigningKeyKey) signing = v;
            else if (key == RevisionKey && v.Length == 8) revision = BinaryPrimitives.ReadInt64LittleEndian(v);
            else if (key.StartsWith(UserPrefix, StringComparison.Ordinal)) users[key[UserPrefix.Length..]] = DecodeUser(key[UserPrefix.Length..], v);
            else if (key.StartsWith(RolePrefix, StringComparison.Ordinal)) roles[key[RolePrefix.Length..]] = DecodeRole(key[RolePrefix.Length..], v);
        }
        return new AuthState(enabled, signing, revision, users, roles);
    }

    /// <summary>
    /// The records an auth change writes (value null: delete), checked against this state: a change that cannot be
    /// made throws <see cref="AuthException"/> naming what to do, and writes nothing.
    /// </summary>
    internal List<(byte[] Key, byte[]? Value)> Changes(AuthCommand c)
    {
        var changes = new List<(byte[] Key, byte[]? Value)>();
        var name = c.Name;
        switch (c.Op)
        {
            case AuthOp.Enable:
                if (!Users.TryGetValue(Root, out var root)) throw new AuthException("auth enable needs a root user first: `cairn user add root`, then enable");
                if (!root.Roles.Contains(Root)) changes.Add(UserRecord(root with { Roles = [.. root.Roles, Root] }));
                changes.Add((Key(EnabledKey), [1]));
                if (SigningKey.Length == 0)
                {
                    if (c.SigningKey is not { Length: >= 32 }) throw new AuthException("auth enable carries no signing key (a member of an older version proposed it?)");
                    changes.Add((Key(SigningKeyKey), c.SigningKey));
                }
                break;
            case AuthOp.Disable:
                changes.Add((Key(EnabledKey), [0]));
                break;
            case AuthOp.UserAdd:
                ValidName(name, "user");
                if (Users.ContainsKey(name)) throw new AuthException($"user '{name}' already exists");
                changes.Add(UserRecord(new AuthUser(name, [], c.Password)));
                break;
            case AuthOp.UserDelete:
            {
                var u = User(name);
                if (Enabled && name == Root) throw new AuthException("the root user cannot be deleted while auth is enabled; `cairn auth disable` first");
                changes.Add((Key(UserPrefix + u.Name), null));
                break;
            }
            case AuthOp.UserPassword:
                changes.Add(UserRecord(User(name) with { Password = c.Password }));
                break;
            case AuthOp.UserGrantRole:
            {
                var u = User(name);
                if (c.Role != Root && !Roles.ContainsKey(c.Role)) throw new AuthException($"role '{c.Role}' does not exist; `cairn role add {c.Role}` first");
                if (!u.Roles.Contains(c.Role)) changes.Add(UserRecord(u with { Roles = [.. u.Roles, c.Role] }));
                break;
            }
            case AuthOp.UserRevokeRole:
            {
                var u = User(name);
                if (!u.Roles.Contains(c.Role)) throw new AuthException($"user '{name}' does not have role '{c.Role}'");
                if (Enabled && name == Root && c.Role == Root) throw new AuthException("the root user keeps the root role while auth is enabled");
                changes.Add(UserRecord(u with { Roles = [.. u.Roles.Where(r => r != c.Role)] }));
                break;
            }
            case AuthOp.RoleAdd:
                ValidName(name, "role");
                if (Roles.ContainsKey(name)) throw new AuthException($"role '{name}' already exists");
                changes.Add(RoleRecord(new AuthRole(name, [])));
                break;
            case AuthOp.RoleDelete:
            {
                var r = Role(name);
                if (Enabled && name == Root) throw new AuthException("the root role cannot be deleted while auth is enabled");
                changes.Add((Key(RolePrefix + r.Name), null));
                foreach (var u in Users.Values.Where(u => u.Roles.Contains(name))) changes.Add(UserRecord(u with { Roles = [.. u.Roles.Where(x => x != name)] }));
                break;
            }
            case AuthOp.RoleGrantPermission:
            {
                var r = Role(name);
                if (name == Root) throw new AuthException("the root role already has every permission");
                if (c.Permission is not { } p) throw new AuthException("grant-permission needs a permission");
                if (p.Type is not (PermissionType.Read or PermissionType.Write or PermissionType.ReadWrite)) throw new AuthException($"unknown permission type {p.Type}");
                var kept = r.Permissions.Where(x => !SameKeys(x, p)).ToList();
                kept.Add(p);
                changes.Add(RoleRecord(r with { Permissions = kept }));
                break;
            }
            case AuthOp.RoleRevokePermission:
            {
                var r = Role(name);
                if (c.Permission is not { } p) throw new AuthException("revoke-permission needs the permission's keys");
                if (!r.Permissions.Any(x => SameKeys(x, p))) throw new AuthException($"role '{name}' has no permission on exactly those keys (see `cairn role get {name}`)");
                changes.Add(RoleRecord(r with { Permissions = [.. r.Permissions.Where(x => !SameKeys(x, p))] }));
                break;
            }
            default:
                throw new AuthException($"unknown auth operation {c.Op}");
        }
        var rev = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(rev, Revision + 1);
        changes.Add((Key(RevisionKey), rev));
        return changes;
    }

    private AuthUser User(string name) => Users.TryGetValue(name, out var u) ? u : throw new AuthException($"user '{name}' does not exist (see `cairn user list`)");

    private AuthRole Role(string name) => Roles.TryGetValue(name, out var r) ? r : throw new AuthException($"role '{name}' does not exist (see `cairn role list`)");

    private static bool SameKeys(Permission a, Permission b) => a.Key.AsSpan().SequenceEqual(b.Key) && a.RangeEnd.AsSpan().SequenceEqual(b.RangeEnd);

    private static void ValidName(string name, string what)
    {
        if (string.IsNullOrEmpty(name) || name.Length > 128 || name.Any(char.IsControl) || name.Contains(':', StringComparison.Ordinal))
        {
            throw new AuthException($"a {what} name is 1 to 128 printable characters without ':' (got '{name}')");
        }
    }

    private static byte[] Key(string key) => Encoding.UTF8.GetBytes(key);

    private static (byte[] Key, byte[]? Value) UserRecord(AuthUser u)
    {
        var w = new FieldWriter();
        w.Int(u.Roles.Count);
        foreach (var r in u.Roles) w.String(r);
        AuthFields.WritePassword(w, u.Password);
        return (Key(UserPrefix + u.Name), w.ToArray());
    }

    private static AuthUser DecodeUser(string name, byte[] v)
    {
        var r = new FieldReader(v, $"auth record of user '{name}'");
        var roles = new List<string>();
        for (var n = r.Count(); n > 0; n--) roles.Add(r.String());
        return new AuthUser(name, roles, AuthFields.ReadPassword(ref r));
    }

    private static (byte[] Key, byte[]? Value) RoleRecord(AuthRole role)
    {
        var w = new FieldWriter();
        w.Int(role.Permissions.Count);
        foreach (var p in role.Permissions) AuthFields.WritePermission(w, p);
        return (Key(RolePrefix + role.Name), w.ToArray());
    }

    private static AuthRole DecodeRole(string name, byte[] v)
    {
        var r = new FieldReader(v, $"auth record of role '{name}'");
        var perms = new List<Permission>();
        for (var n = r.Count(); n > 0; n--) perms.Add(AuthFields.ReadPermission(ref r, optional: false)!);
        return new AuthRole(name, perms);
    }
}
