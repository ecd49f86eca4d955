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
    /// <summary>Add a user (with a password, or none).</summary>
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
