namespace Cairn.Kv;

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
