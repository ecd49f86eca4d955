using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using static Cairn.Kv.AuthWriter;

namespace Cairn.Kv;

/// <summary>What a permission allows on its keys.</summary>
public enum PermissionType : byte
{
    /// <summary>Range and watch.</summary>
    Read = 1,
    /// <summary>Put and delete.</summary>
    Write = 2,
    /// <summary>Both.</summary>
    ReadWrite = 3,
}

/// <summary>
/// A role's permission on one key (<see cref="RangeEnd"/> empty), a range [Key, RangeEnd), or every key from Key on
/// (<see cref="RangeEnd"/> = [0]) — the same encoding as a range request, so a prefix is Key and its prefix end.
/// </summary>
public sealed record Permission(PermissionType Type, byte[] Key, byte[] RangeEnd);

/// <summary>A password as stored: PBKDF2-HMAC-SHA256 of the password with a random salt.</summary>
public sealed record PasswordHash(byte[] Salt, int Iterations, byte[] Hash)
{
    /// <summary>Salt and hash sizes.</summary>
    public const int SaltBytes = 16, HashBytes = 32;

    /// <summary>Hashes <paramref name="password"/> with a fresh salt (slow on purpose: run it off latency-critical threads).</summary>
    public static PasswordHash Create(string password, int iterations)
    {
        ArgumentNullException.ThrowIfNull(password);
        ArgumentOutOfRangeException.ThrowIfLessThan(iterations, 1);
        var salt = RandomNumberGenerator.GetBytes(SaltBytes);
        return new PasswordHash(salt, iterations, Rfc2898DeriveBytes.Pbkdf2(password, salt, iterations, HashAlgorithmName.SHA256, HashBytes));
    }

    /// <summary>Whether <paramref name="password"/> is this one (constant time in the comparison).</summary>
    public bool Verify(string password)
    {
        ArgumentNullException.ThrowIfNull(password);
        var h = Rfc2898DeriveBytes.Pbkdf2(password, Salt, Iterations, HashAlgorithmName.SHA256, HashBytes);
        return CryptographicOperations.FixedTimeEquals(h, Hash);
    }
}

/// <summary>A user: its roles, and its password hash (null: the user can only be named by a client certificate).</summary>
public sealed record AuthUser(string Name, IReadOnlyList<string> Roles, PasswordHash? Password);

/// <summary>A role and its permissions.</summary>
public sealed record AuthRole(string Name, IReadOnlyList<Permission> Permissions);

/// <summary>The auth changes that go through the log.</summary>
public enum AuthOp : byte
{
    /// <summary>Turn auth on (needs a root user; carries the cluster's token signing key).</summary>
    Enable = 1,
    /// <summary>Turn auth off.</summary>
    Disable = 2,
    /// <summary>Add a user (with <see cref="AuthCommand.Password"/>, or none).</summary>
    UserAdd = 3,
    /// <summary>Delete a user.</summary>
    UserDelete = 4,
    /// <summary>Change a user's password.</summary>
    UserPassword = 5,
    /// <summary>Grant a role to a user.</summary>
    UserGrantRole = 6,
    /// <summary>Revoke a role from a user.</summary>
    UserRevokeRole = 7,
    /// <summary>Add a role.</summary>
    RoleAdd = 8,
    /// <summary>Delete a role (and take it from every user).</summary>
    RoleDelete = 9,
    /// <summary>Grant a permission to a role (a permission on the same keys is replaced).</summary>
    RoleGrantPermission = 10,
    /// <summary>Revoke the permission on exactly these keys from a role.</summary>
    RoleRevokePermission = 11,
}

/// <summary>One auth change as it travels through the log (encoded inside a <see cref="KvCommand"/>).</summary>
public sealed record AuthCommand(AuthOp Op)
{
    /// <summary>The user (user operations) or role (role operations).</summary>
    public string Name { get; init; } = "";

    /// <summary>The role granted or revoked (<see cref="AuthOp.UserGrantRole"/>, <see cref="AuthOp.UserRevokeRole"/>).</summary>
    public string Role { get; init; } = "";

    /// <summary>The hashed password (<see cref="AuthOp.UserAdd"/>, <see cref="AuthOp.UserPassword"/>); never the password itself.</summary>
    public PasswordHash? Password { get; init; }

    /// <summary>The permission granted or revoked.</summary>
    public Permission? Permission { get; init; }

    /// <summary>The token signing key chosen by the leader that proposed <see cref="AuthOp.Enable"/> (kept from the first enable on).</summary>
    public byte[]? SigningKey { get; init; }

    internal void Write(List<byte> w)
    {
        w.Add((byte)Op);
        WriteBytes(w, Encoding.UTF8.GetBytes(Name));
        WriteBytes(w, Encoding.UTF8.GetBytes(Role));
        if (Password is { } p)
        {
            w.Add(1);
            WriteBytes(w, p.Salt);
            WriteInt(w, p.Iterations);
            WriteBytes(w, p.Hash);
        }
        else
        {
            w.Add(0);
        }
        if (Permission is { } perm)
        {
            w.Add((byte)perm.Type);
            WriteBytes(w, perm.Key);
            WriteBytes(w, perm.RangeEnd);
        }
        else
        {
            w.Add(0);
        }
        WriteBytes(w, SigningKey ?? []);
    }

    internal static AuthCommand Read(ref AuthReader r)
    {
        var op = r.Byte();
        if (op is < (byte)AuthOp.Enable or > (byte)AuthOp.RoleRevokePermission) throw new InvalidDataException($"unknown auth operation {op}");
        var name = r.String();
        var role = r.String();
        PasswordHash? password = null;
        switch (r.Byte())
        {
            case 0: break;
            case 1:
                var salt = r.Bytes();
                var iterations = r.Int();
                var hash = r.Bytes();
                if (iterations < 1 || salt.Length == 0 || hash.Length == 0) throw new InvalidDataException("bad password hash");
                password = new PasswordHash(salt, iterations, hash);
                break;
            default: throw new InvalidDataException("bad password flag");
        }
        Permission? permission = null;
        var type = r.Byte();
        if (type != 0)
        {
            if (type > (byte)PermissionType.ReadWrite) throw new InvalidDataException($"unknown permission type {type}");
            permission = new Permission((PermissionType)type, r.Bytes(), r.Bytes());
        }
        var key = r.Bytes();
        return new AuthCommand((AuthOp)op) { Name = name, Role = role, Password = password, Permission = permission, SigningKey = key.Length == 0 ? null : key };
    }
}

/// <summary>Little-endian length-prefixed fields of auth records and commands (read back by <see cref="AuthReader"/>).</summary>
internal static class AuthWriter
{
    public static void WriteInt(List<byte> w, int v)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, v);
        foreach (var x in b) w.Add(x);
    }

    public static void WriteBytes(List<byte> w, byte[] bytes)
    {
        WriteInt(w, bytes.Length);
        w.AddRange(bytes);
    }
}

/// <summary>A bounds-checked reader for auth records and commands.</summary>
internal ref struct AuthReader(ReadOnlySpan<byte> data)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _at;

    public readonly bool AtEnd => _at == _data.Length;

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _data.Length - _at < n) throw new InvalidDataException("auth record is truncated");
        var s = _data.Slice(_at, n);
        _at += n;
        return s;
    }

    public byte Byte() => Take(1)[0];
    public int Int() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
    public byte[] Bytes() => Take(Int()).ToArray();
    public string String() => Encoding.UTF8.GetString(Take(Int()));
}

/// <summary>
/// What one user may do, with its permissions merged into sorted, disjoint key intervals per kind, so a check is a
/// binary search and two byte comparisons: no allocation.
/// </summary>
public sealed class UserAccess
{
    private readonly Interval[] _read;
    private readonly Interval[] _write;

    internal UserAccess(AuthUser user, bool root, Interval[] read, Interval[] write)
    {
        User = user;
        IsRoot = root;
        _read = read;
        _write = write;
    }

    /// <summary>The user.</summary>
    public AuthUser User { get; }

    /// <summary>Holds the root role: every key and every administrative operation.</summary>
    public bool IsRoot { get; }

    /// <summary>
    /// Whether every key of the request range is covered: <paramref name="rangeEnd"/> empty for one key, [0] for every
    /// key from <paramref name="key"/> on, else [key, rangeEnd). Read and write are checked separately (ReadWrite: both).
    /// </summary>
    public bool Permits(PermissionType need, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd)
    {
        if (IsRoot) return true;
        if ((need & PermissionType.Read) != 0 && !Covers(_read, key, rangeEnd)) return false;
        if ((need & PermissionType.Write) != 0 && !Covers(_write, key, rangeEnd)) return false;
        return true;
    }

    private static bool Covers(Interval[] intervals, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd)
    {
        // The last interval starting at or before the key is the only one that can cover it (they are disjoint).
        int lo = 0, hi = intervals.Length - 1, found = -1;
        while (lo <= hi)
        {
            var mid = (lo + hi) >>> 1;
            if (intervals[mid].Start.AsSpan().SequenceCompareTo(key) <= 0)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        if (found < 0) return false;
        var end = intervals[found].End;
        if (end is null) return true;                                     // open to the end of the key space
        if (rangeEnd.IsEmpty) return end.AsSpan().SequenceCompareTo(key) > 0;  // one key: [key, key\0) is covered when end > key
        if (rangeEnd is [0]) return false;                                // to the end of the key space: only an open interval covers it
        if (rangeEnd.SequenceCompareTo(key) <= 0) return end.AsSpan().SequenceCompareTo(key) > 0; // an empty range: treat as the key alone
        return end.AsSpan().SequenceCompareTo(rangeEnd) >= 0;
    }

    /// <summary>A half-open key interval; <see cref="End"/> null is the end of the key space.</summary>
    internal readonly record struct Interval(byte[] Start, byte[]? End);

    internal static Interval[] Merge(IEnumerable<Permission> permissions, PermissionType kind)
    {
        var list = new List<Interval>();
        foreach (var p in permissions)
        {
            if ((p.Type & kind) == 0) continue;
            if (p.RangeEnd.Length == 0) list.Add(new Interval(p.Key, [.. p.Key, 0]));
            else if (p.RangeEnd is [0]) list.Add(new Interval(p.Key, null));
            else if (p.RangeEnd.AsSpan().SequenceCompareTo(p.Key) > 0) list.Add(new Interval(p.Key, p.RangeEnd));
        }
        list.Sort((a, b) => a.Start.AsSpan().SequenceCompareTo(b.Start));
        var merged = new List<Interval>();
        foreach (var i in list)
        {
            if (merged.Count > 0)
            {
                var last = merged[^1];
                if (last.End is null) continue;                                                // already open to the end
                if (i.Start.AsSpan().SequenceCompareTo(last.End) <= 0)                        // overlaps or touches
                {
                    var end = i.End is null || i.End.AsSpan().SequenceCompareTo(last.End) > 0 ? i.End : last.End;
                    merged[^1] = last with { End = end };
                    continue;
                }
            }
            merged.Add(i);
        }
        return [.. merged];
    }
}

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
        var w = new List<byte>();
        WriteInt(w, u.Roles.Count);
        foreach (var r in u.Roles) WriteBytes(w, Encoding.UTF8.GetBytes(r));
        if (u.Password is { } p)
        {
            w.Add(1);
            WriteBytes(w, p.Salt);
            WriteInt(w, p.Iterations);
            WriteBytes(w, p.Hash);
        }
        else
        {
            w.Add(0);
        }
        return (Key(UserPrefix + u.Name), [.. w]);
    }

    private static AuthUser DecodeUser(string name, byte[] v)
    {
        var r = new AuthReader(v);
        var n = r.Int();
        if (n < 0 || n > v.Length) throw new InvalidDataException($"auth record of user '{name}' is damaged");
        var roles = new List<string>(n);
        for (var i = 0; i < n; i++) roles.Add(r.String());
        PasswordHash? p = null;
        if (r.Byte() == 1) p = new PasswordHash(r.Bytes(), r.Int(), r.Bytes());
        return new AuthUser(name, roles, p);
    }

    private static (byte[] Key, byte[]? Value) RoleRecord(AuthRole role)
    {
        var w = new List<byte>();
        WriteInt(w, role.Permissions.Count);
        foreach (var p in role.Permissions)
        {
            w.Add((byte)p.Type);
            WriteBytes(w, p.Key);
            WriteBytes(w, p.RangeEnd);
        }
        return (Key(RolePrefix + role.Name), [.. w]);
    }

    private static AuthRole DecodeRole(string name, byte[] v)
    {
        var r = new AuthReader(v);
        var n = r.Int();
        if (n < 0 || n > v.Length) throw new InvalidDataException($"auth record of role '{name}' is damaged");
        var perms = new List<Permission>(n);
        for (var i = 0; i < n; i++) perms.Add(new Permission((PermissionType)r.Byte(), r.Bytes(), r.Bytes()));
        return new AuthRole(name, perms);
    }
}
