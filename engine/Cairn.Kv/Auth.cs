using System.Security.Cryptography;

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

    internal void Write(FieldWriter w)
    {
        w.Byte((byte)Op);
        w.String(Name);
        w.String(Role);
        AuthFields.WritePassword(w, Password);
        if (Permission is { } perm) AuthFields.WritePermission(w, perm);
        else w.Byte(0);
        w.Bytes(SigningKey ?? []);
    }

    internal static AuthCommand Read(ref FieldReader r)
    {
        var op = r.Byte();
        if (op is < (byte)AuthOp.Enable or > (byte)AuthOp.RoleRevokePermission) throw new InvalidDataException($"unknown auth operation {op}");
        var name = r.String();
        var role = r.String();
        var password = AuthFields.ReadPassword(ref r);
        var permission = AuthFields.ReadPermission(ref r, optional: true);
        var key = r.Bytes();
        return new AuthCommand((AuthOp)op) { Name = name, Role = role, Password = password, Permission = permission, SigningKey = key.Length == 0 ? null : key };
    }
}

/// <summary>The password and permission fields, the same in commands and in the user and role records.</summary>
internal static class AuthFields
{
    /// <summary>Flag 0 (none), or 1 then salt, iterations and hash.</summary>
    public static void WritePassword(FieldWriter w, PasswordHash? p)
    {
        if (p is null)
        {
            w.Byte(0);
            return;
        }
        w.Byte(1);
        w.Bytes(p.Salt);
        w.Int(p.Iterations);
        w.Bytes(p.Hash);
    }

    public static PasswordHash? ReadPassword(ref FieldReader r)
    {
        switch (r.Byte())
        {
            case 0: return null;
            case 1:
                var salt = r.Bytes();
                var iterations = r.Int();
                var hash = r.Bytes();
                if (iterations < 1 || salt.Length == 0 || hash.Length == 0) throw new InvalidDataException("bad password hash");
                return new PasswordHash(salt, iterations, hash);
            default: throw new InvalidDataException("bad password flag");
        }
    }

    /// <summary>The type (1–3), key and range end.</summary>
    public static void WritePermission(FieldWriter w, Permission p)
    {
        w.Byte((byte)p.Type);
        w.Bytes(p.Key);
        w.Bytes(p.RangeEnd);
    }

    /// <summary>A permission; with <paramref name="optional"/>, type 0 is none (null).</summary>
    public static Permission? ReadPermission(ref FieldReader r, bool optional)
    {
        var type = r.Byte();
        if (type == 0 && optional) return null;
        if (type is 0 or > (byte)PermissionType.ReadWrite) throw new InvalidDataException($"unknown permission type {type}");
        return new Permission((PermissionType)type, r.Bytes(), r.Bytes());
    }
}
