using Cairn.Client;
using Cairn.Kv;

namespace Cairn.Cli;

/// <summary>`cairn user`, `cairn role` and `cairn auth`, as etcdctl's; `--user NAME[:PASSWORD]` on every verb.</summary>
internal static partial class ClientVerbs
{
    private sealed partial class Invocation
    {
        /// <summary>The credentials of `--user NAME[:PASSWORD]` (the password prompted for when left out).</summary>
        private CairnCredentials? Credentials()
        {
            var password = _flags.Get("--password");
            if (_flags.Get("--user") is not { } user)
            {
                return password is null ? null : throw new UsageException("--password needs --user NAME");
            }
            var colon = user.IndexOf(':', StringComparison.Ordinal);
            if (colon == 0) throw new UsageException("--user needs a name: --user NAME[:PASSWORD]");
            if (colon > 0 && password is not null) throw new UsageException("give the password once: --user NAME:PASSWORD or --user NAME --password PASSWORD");
            if (colon > 0) return new CairnCredentials(user[..colon], user[(colon + 1)..]);
            return new CairnCredentials(user, password ?? ReadPassword($"Password for {user}: "));
        }

        /// <summary>Reads a password: from the terminal without echo, or a line of standard input when it is redirected.</summary>
        private string ReadPassword(string prompt)
        {
            if (!_io.Terminal)
            {
                return _io.InText.ReadLine() ?? throw new UsageException("no password on standard input (give NAME:PASSWORD or --password, or type it when asked)");
            }
            _err.Write(prompt);
            var chars = new System.Text.StringBuilder();
            while (true)
            {
                var k = Console.ReadKey(intercept: true);
                if (k.Key == ConsoleKey.Enter) break;
                if (k.Key == ConsoleKey.Backspace)
                {
                    if (chars.Length > 0) chars.Length--;
                    continue;
                }
                chars.Append(k.KeyChar);
            }
            _err.WriteLine();
            return chars.ToString();
        }

        /// <summary>NAME or NAME:PASSWORD of `user add` and `user passwd`; the password prompted for (twice) when left out.</summary>
        private (string Name, string? Password) NameAndPassword(bool allowNone)
        {
            var arg = Arg(1, "a user name (NAME or NAME:PASSWORD)");
            var colon = arg.IndexOf(':', StringComparison.Ordinal);
            if (colon == 0) throw new UsageException($"'{arg}' has no user name");
            if (colon > 0) return (arg[..colon], arg[(colon + 1)..]);
            if (allowNone && _flags.Has("--no-password")) return (arg, null);
            var first = ReadPassword($"Password of {arg}: ");
            if (_io.Terminal && ReadPassword("Type it again: ") != first) throw new UsageException("the passwords differ");
            return (arg, first);
        }

        private async Task<int> UserAsync(CairnClient client)
        {
            var sub = Arg(0, "a sub-command: add, delete, list, get, passwd, grant-role, revoke-role");
            switch (sub)
            {
                case "add":
                {
                    var (name, password) = NameAndPassword(allowNone: true);
                    await client.UserAddAsync(name, password, _interrupt);
                    _out.WriteLine($"User {name} created");
                    return 0;
                }
                case "delete":
                    await client.UserDeleteAsync(Arg(1, "a user name"), _interrupt);
                    _out.WriteLine($"User {_args[1]} deleted");
                    return 0;
                case "passwd":
                {
                    var (name, password) = NameAndPassword(allowNone: false);
                    await client.UserChangePasswordAsync(name, password!, _interrupt);
                    _out.WriteLine("Password updated");
                    return 0;
                }
                case "grant-role":
                    await client.UserGrantRoleAsync(Arg(1, "a user name"), Arg(2, "a role"), _interrupt);
                    _out.WriteLine($"Role {_args[2]} is granted to user {_args[1]}");
                    return 0;
                case "revoke-role":
                    await client.UserRevokeRoleAsync(Arg(1, "a user name"), Arg(2, "a role"), _interrupt);
                    _out.WriteLine($"Role {_args[2]} is revoked from user {_args[1]}");
                    return 0;
                case "list":
                {
                    var users = (await client.UserListAsync(_interrupt)).Body;
                    if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); w.WriteStartArray("users"); foreach (var u in users) w.WriteStringValue(u); w.WriteEndArray(); w.WriteEndObject(); });
                    else foreach (var u in users) _out.WriteLine(u);
                    return 0;
                }
                case "get":
                {
                    var name = Arg(1, "a user name");
                    var roles = (await client.UserGetAsync(name, _interrupt)).Body;
                    if (_output == Output.Json)
                    {
                        WriteJson(w => { w.WriteStartObject(); w.WriteString("user", name); w.WriteStartArray("roles"); foreach (var r in roles) w.WriteStringValue(r); w.WriteEndArray(); w.WriteEndObject(); });
                    }
                    else
                    {
                        _out.WriteLine($"User: {name}");
                        _out.WriteLine($"Roles: {string.Join(' ', roles)}");
                    }
                    return 0;
                }
                default:
                    throw new UsageException($"user {sub}: unknown sub-command (add, delete, list, get, passwd, grant-role, revoke-role)");
            }
        }

        private async Task<int> RoleAsync(CairnClient client)
        {
            var sub = Arg(0, "a sub-command: add, delete, list, get, grant-permission, revoke-permission");
            switch (sub)
            {
                case "add":
                    await client.RoleAddAsync(Arg(1, "a role name"), _interrupt);
                    _out.WriteLine($"Role {_args[1]} created");
                    return 0;
                case "delete":
                    await client.RoleDeleteAsync(Arg(1, "a role name"), _interrupt);
                    _out.WriteLine($"Role {_args[1]} deleted");
                    return 0;
                case "list":
                {
                    var roles = (await client.RoleListAsync(_interrupt)).Body;
                    if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); w.WriteStartArray("roles"); foreach (var r in roles) w.WriteStringValue(r); w.WriteEndArray(); w.WriteEndObject(); });
                    else foreach (var r in roles) _out.WriteLine(r);
                    return 0;
                }
                case "get":
                {
                    var name = Arg(1, "a role name");
                    var perms = (await client.RoleGetAsync(name, _interrupt)).Body;
                    if (_output == Output.Json)
                    {
                        WriteJson(w =>
                        {
                            w.WriteStartObject();
                            w.WriteString("role", name);
                            w.WriteStartArray("permissions");
                            foreach (var p in perms)
                            {
                                w.WriteStartObject();
                                w.WriteString("type", p.Type.ToString().ToUpperInvariant());
                                w.WriteBase64String("key", p.Key);
                                w.WriteBase64String("range_end", p.RangeEnd);
                                w.WriteEndObject();
                            }
                            w.WriteEndArray();
                            w.WriteEndObject();
                        });
                        return 0;
                    }
                    _out.WriteLine($"Role {name}");
                    if (name == AuthState.Root) _out.WriteLine("(every key and every operation)");
                    foreach (var (title, kind) in new[] { ("KV Read:", PermissionType.Read), ("KV Write:", PermissionType.Write) })
                    {
                        _out.WriteLine(title);
                        foreach (var p in perms.Where(p => (p.Type & kind) != 0)) _out.WriteLine("\t" + Describe(p.Key, p.RangeEnd));
                    }
                    return 0;
                }
                case "grant-permission":
                {
                    var role = Arg(1, "a role name");
                    var type = Arg(2, "a permission type: read, write or readwrite").ToLowerInvariant() switch
                    {
                        "read" => PermissionType.Read,
                        "write" => PermissionType.Write,
                        "readwrite" => PermissionType.ReadWrite,
                        var t => throw new UsageException($"permission type '{t}' is not read, write or readwrite"),
                    };
                    var (key, end) = PermissionKeys(3);
                    await client.RoleGrantPermissionAsync(role, type, key, end, _interrupt);
                    _out.WriteLine($"Role {role} updated");
                    return 0;
                }
                case "revoke-permission":
                {
                    var role = Arg(1, "a role name");
                    var (key, end) = PermissionKeys(2);
                    await client.RoleRevokePermissionAsync(role, key, end, _interrupt);
                    _out.WriteLine($"Permission of range {Describe(key, end)} is revoked from role {role}");
                    return 0;
                }
                default:
                    throw new UsageException($"role {sub}: unknown sub-command (add, delete, list, get, grant-permission, revoke-permission)");
            }
        }

        /// <summary>KEY [END] [--prefix | --from-key] of the permission verbs, as a range request encodes them.</summary>
        private (byte[] Key, byte[] End) PermissionKeys(int at)
        {
            var key = Utf8(Arg(at, "a key"));
            if (_flags.Has("--prefix")) return (key, key.Length == 0 ? [0] : RangeRequest.Prefix(key));
            if (_flags.Has("--from-key")) return (key, [0]);
            return (key, OptionalArg(at + 1) is { } end ? Utf8(end) : []);
        }

        private static string Describe(byte[] key, byte[] end) =>
            end.Length == 0 ? Text(key) : end is [0] ? $"[{Text(key)}, <open ended>" : $"[{Text(key)}, {Text(end)})";

        private async Task<int> AuthAsync(CairnClient client)
        {
            switch (Arg(0, "a sub-command: enable, disable, status"))
            {
                case "enable":
                    await client.AuthEnableAsync(_interrupt);
                    _out.WriteLine("Authentication Enabled");
                    return 0;
                case "disable":
                    await client.AuthDisableAsync(_interrupt);
                    _out.WriteLine("Authentication Disabled");
                    return 0;
                case "status":
                {
                    var (enabled, revision) = (await client.AuthStatusAsync(_interrupt)).Body;
                    if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); w.WriteBoolean("enabled", enabled); w.WriteNumber("authRevision", revision); w.WriteEndObject(); });
                    else
                    {
                        _out.WriteLine($"Authentication Status: {enabled.ToString().ToLowerInvariant()}");
                        _out.WriteLine($"AuthRevision: {revision}");
                    }
                    return 0;
                }
                default:
                    throw new UsageException($"auth {_args[0]}: unknown sub-command (enable, disable, status)");
            }
        }
    }
}
