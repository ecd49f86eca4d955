using Cairn.Kv;

namespace Cairn.Protocol;

/// <summary>How an <see cref="MessageType.AuthChange"/> carries a password.</summary>
public enum PasswordKind : byte
{
    /// <summary>No password (user add without one; every other operation).</summary>
    None = 0,
    /// <summary>The password itself, from a client: the member that receives it hashes it before it goes anywhere.</summary>
    Plain = 1,
    /// <summary>Its hash (members only: what is forwarded to the leader and goes into the log).</summary>
    Hashed = 2,
}

/// <summary>An auth change as a client asks for it (docs/protocol.md, "Auth").</summary>
public sealed record AuthChangeRequest(AuthOp Op)
{
    /// <summary>The user or role.</summary>
    public string Name { get; init; } = "";

    /// <summary>The role granted to or revoked from a user.</summary>
    public string Role { get; init; } = "";

    /// <summary>The password (user add, password change); null for none.</summary>
    public string? Password { get; init; }

    /// <summary>Its hash (members only).</summary>
    public PasswordHash? Hash { get; init; }

    /// <summary>The permission granted or revoked.</summary>
    public Permission? Permission { get; init; }

    /// <summary>The signing key the leader adds to an enable (members only).</summary>
    public byte[]? SigningKey { get; init; }
}

/// <summary>Encoders and decoders of the auth messages (layouts in docs/protocol.md).</summary>
public static class AuthMessages
{
    /// <summary>Authenticate request: name, password.</summary>
    public static void WriteAuthenticate(FrameWriter w, string name, string password)
    {
        ArgumentNullException.ThrowIfNull(w);
        w.String(name);
        w.String(password);
    }

    /// <summary>Reads an <see cref="MessageType.AuthChange"/> request.</summary>
    public static AuthChangeRequest ReadChange(ref PayloadReader r)
    {
        var op = r.U8();
        if (op is < (byte)AuthOp.Enable or > (byte)AuthOp.RoleRevokePermission) throw new ProtocolException(ErrorCode.Malformed, $"unknown auth operation {op}");
        var name = r.String();
        var role = r.String();
        string? password = null;
        PasswordHash? hash = null;
        switch ((PasswordKind)r.U8())
        {
            case PasswordKind.None: break;
            case PasswordKind.Plain: password = r.String(); break;
            case PasswordKind.Hashed:
                var salt = r.BytesArray();
                var iterations = (int)r.U32();
                var h = r.BytesArray();
                if (iterations < 1 || salt.Length == 0 || h.Length == 0) throw new ProtocolException(ErrorCode.Malformed, "bad password hash");
                hash = new PasswordHash(salt, iterations, h);
                break;
            default: throw new ProtocolException(ErrorCode.Malformed, "unknown password kind");
        }
        var type = r.U8();
        Permission? permission = null;
        if (type != 0)
        {
            if (type > (byte)PermissionType.ReadWrite) throw new ProtocolException(ErrorCode.Malformed, $"unknown permission type {type}");
            permission = new Permission((PermissionType)type, r.BytesArray(), r.BytesArray());
        }
        var key = r.BytesArray();
        r.End();
        return new AuthChangeRequest((AuthOp)op) { Name = name, Role = role, Password = password, Hash = hash, Permission = permission, SigningKey = key.Length == 0 ? null : key };
    }

    /// <summary>Writes an <see cref="MessageType.AuthChange"/> request.</summary>
    public static void WriteChange(FrameWriter w, AuthChangeRequest c)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(c);
        w.U8((byte)c.Op);
        w.String(c.Name);
        w.String(c.Role);
        if (c.Hash is { } h)
        {
            w.U8((byte)PasswordKind.Hashed);
            w.Bytes(h.Salt);
            w.U32((uint)h.Iterations);
            w.Bytes(h.Hash);
        }
        else if (c.Password is { } p)
        {
            w.U8((byte)PasswordKind.Plain);
            w.String(p);
        }
        else
        {
            w.U8((byte)PasswordKind.None);
        }
        if (c.Permission is { } perm)
        {
            w.U8((byte)perm.Type);
            w.Bytes(perm.Key);
            w.Bytes(perm.RangeEnd);
        }
        else
        {
            w.U8(0);
        }
        w.Bytes(c.SigningKey ?? []);
    }

    /// <summary>A list of names (users, roles, a user's roles).</summary>
    public static void WriteNames(FrameWriter w, IEnumerable<string> names)
    {
        ArgumentNullException.ThrowIfNull(w);
        var list = names.ToList();
        w.Count(list.Count);
        foreach (var n in list) w.String(n);
    }

    /// <summary>Reads a list of names.</summary>
    public static string[] ReadNames(ref PayloadReader r)
    {
        var names = new string[r.Count(4)];
        for (var i = 0; i < names.Length; i++) names[i] = r.String();
        return names;
    }

    /// <summary>A role's permissions.</summary>
    public static void WritePermissions(FrameWriter w, IReadOnlyList<Permission> permissions)
    {
        ArgumentNullException.ThrowIfNull(w);
        ArgumentNullException.ThrowIfNull(permissions);
        w.Count(permissions.Count);
        foreach (var p in permissions)
        {
            w.U8((byte)p.Type);
            w.Bytes(p.Key);
            w.Bytes(p.RangeEnd);
        }
    }

    /// <summary>Reads a role's permissions.</summary>
    public static Permission[] ReadPermissions(ref PayloadReader r)
    {
        var list = new Permission[r.Count(9)];
        for (var i = 0; i < list.Length; i++)
        {
            var type = r.U8();
            if (type is 0 or > (byte)PermissionType.ReadWrite) throw new ProtocolException(ErrorCode.Malformed, $"unknown permission type {type}");
            list[i] = new Permission((PermissionType)type, r.BytesArray(), r.BytesArray());
        }
        return list;
    }
}
