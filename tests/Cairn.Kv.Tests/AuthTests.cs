using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

/// <summary>The replicated auth state: permission checks against an interval model, and the changes through the log.</summary>
public sealed class AuthTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public AuthTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static KvOptions Fast => new() { Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } };

    /// <summary>
    /// The model: a request range is covered when every elementary segment between consecutive critical points (the
    /// request's ends and every permission's ends) inside it lies in some permission interval — checked at the
    /// segment's first key, without merging or searching, so it shares no logic with <see cref="UserAccess"/>.
    /// </summary>
    private static bool ModelPermits(IReadOnlyList<Permission> perms, PermissionType need, byte[] key, byte[] rangeEnd)
    {
        foreach (var kind in new[] { PermissionType.Read, PermissionType.Write })
        {
            if ((need & kind) == 0) continue;
            var intervals = perms.Where(p => (p.Type & kind) != 0).Select(p => Interval(p.Key, p.RangeEnd)).Where(i => i.End is null || Cmp(i.End, i.Start) > 0).ToList();
            var (start, end) = Interval(key, rangeEnd);
            if (end is not null && Cmp(end, start) <= 0) (start, end) = Interval(key, []); // an empty range counts as its first key
            var points = new List<byte[]> { start };
            foreach (var i in intervals)
            {
                points.Add(i.Start);
                if (i.End is not null) points.Add(i.End);
            }
            foreach (var p in points.Distinct(new BytesEquality()).Where(p => Cmp(p, start) >= 0 && (end is null || Cmp(p, end) < 0)))
            {
                if (!intervals.Any(i => Cmp(i.Start, p) <= 0 && (i.End is null || Cmp(p, i.End) < 0))) return false;
            }
        }
        return true;
    }

    private static (byte[] Start, byte[]? End) Interval(byte[] key, byte[] rangeEnd) =>
        rangeEnd.Length == 0 ? (key, [.. key, 0]) : rangeEnd is [0] ? (key, null) : (key, rangeEnd);

    private static int Cmp(byte[] a, byte[] b) => a.AsSpan().SequenceCompareTo(b);

    private sealed class BytesEquality : IEqualityComparer<byte[]>
    {
        public bool Equals(byte[]? x, byte[]? y) => x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] obj) => obj.Length == 0 ? 0 : obj[0] * 31 + obj.Length;
    }

    /// <summary>Keys over a tiny alphabet with the awkward bytes (0x00, 0xFF) so ranges touch and overlap often.</summary>
    private static byte[] RandomKey(Random rng)
    {
        byte[] alphabet = [0x00, (byte)'a', (byte)'b', 0xFF];
        var k = new byte[rng.Next(0, 3)];
        for (var i = 0; i < k.Length; i++) k[i] = alphabet[rng.Next(alphabet.Length)];
        return k;
    }

    private static (byte[] Key, byte[] End) RandomRange(Random rng)
    {
        var key = RandomKey(rng);
        return rng.Next(5) switch
        {
            0 or 1 => (key, []),                                           // one key
            2 => (key, [0]),                                               // from key on
            3 => (key, key.Length == 0 ? [0] : RangeRequest.Prefix(key)),  // a prefix
            _ => (key, RandomKey(rng) is { Length: > 0 } e ? e : [(byte)'b']), // a range (possibly empty or reversed)
        };
    }

    [Fact]
    public void Permission_checks_agree_with_the_interval_model_on_random_roles_and_requests()
    {
        var rng = new Random(20261126);
        var checks = 0;
        for (var round = 0; round < 300; round++)
        {
            var perms = new List<Permission>();
            for (var n = rng.Next(0, 6); n > 0; n--)
            {
                var (k, e) = RandomRange(rng);
                perms.Add(new Permission((PermissionType)rng.Next(1, 4), k, e));
            }
            var state = StateWith(perms);
            var access = state.Access("u")!;
            for (var q = 0; q < 60; q++)
            {
                var (key, end) = RandomRange(rng);
                var need = (PermissionType)rng.Next(1, 4);
                var expected = ModelPermits(perms, need, key, end);
                Assert.True(expected == access.Permits(need, key, end),
                    $"round {round}: {need} on [{Convert.ToHexString(key)}, {Convert.ToHexString(end)}) with {string.Join("; ", perms.Select(p => $"{p.Type} [{Convert.ToHexString(p.Key)}, {Convert.ToHexString(p.RangeEnd)})"))}: model says {expected}");
                checks++;
            }
        }
        Assert.Equal(300 * 60, checks);
    }

    /// <summary>An auth state with user "u" holding one role with <paramref name="perms"/>, built through real commands.</summary>
    private AuthState StateWith(List<Permission> perms)
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, Guid.NewGuid().ToString("N")), Fast);
        ulong index = 0;
        Apply(sm, ref index, new AuthCommand(AuthOp.UserAdd) { Name = "u" });
        Apply(sm, ref index, new AuthCommand(AuthOp.RoleAdd) { Name = "r" });
        Apply(sm, ref index, new AuthCommand(AuthOp.UserGrantRole) { Name = "u", Role = "r" });
        // A grant on the same keys replaces the earlier one: keep the model to the last of each.
        var last = new Dictionary<string, Permission>();
        foreach (var p in perms)
        {
            Apply(sm, ref index, new AuthCommand(AuthOp.RoleGrantPermission) { Name = "r", Permission = p });
            last[Convert.ToHexString(p.Key) + "/" + Convert.ToHexString(p.RangeEnd)] = p;
        }
        perms.Clear();
        perms.AddRange(last.Values);
        return sm.Auth;
    }

    private static ApplyResult Apply(KvStateMachine sm, ref ulong index, AuthCommand c) =>
        sm.Apply(++index, new KvCommand { Auth = c }.Encode());

    [Fact]
    public void Auth_changes_go_through_the_log_with_the_checks_etcd_makes_and_survive_a_reopen()
    {
        var path = Path.Combine(_dir, "auth");
        ulong index = 0;
        using (var sm = KvStateMachine.Open(path, Fast))
        {
            Assert.False(sm.Auth.Enabled);
            var key = new byte[32];
            key[0] = 7;
            var refused = Apply(sm, ref index, new AuthCommand(AuthOp.Enable) { SigningKey = key });
            Assert.IsType<AuthException>(refused.Error);
            Assert.Contains("root user", refused.Error!.Message, StringComparison.Ordinal);
            Assert.False(sm.Auth.Enabled);

            var hash = PasswordHash.Create("secret", 1000);
            Assert.Null(Apply(sm, ref index, new AuthCommand(AuthOp.UserAdd) { Name = "root", Password = hash }).Error);
            Assert.IsType<AuthException>(Apply(sm, ref index, new AuthCommand(AuthOp.UserAdd) { Name = "root" }).Error); // exists
            Assert.IsType<AuthException>(Apply(sm, ref index, new AuthCommand(AuthOp.UserGrantRole) { Name = "root", Role = "nope" }).Error);
            Assert.Null(Apply(sm, ref index, new AuthCommand(AuthOp.Enable) { SigningKey = key }).Error);
            Assert.True(sm.Auth.Enabled);
            Assert.Equal(key, sm.Auth.SigningKey);
            Assert.Contains(AuthState.Root, sm.Auth.Users["root"].Roles); // enable grants root the root role
            Assert.True(sm.Auth.Access("root")!.IsRoot);
            Assert.IsType<AuthException>(Apply(sm, ref index, new AuthCommand(AuthOp.UserDelete) { Name = "root" }).Error);
            Assert.IsType<AuthException>(Apply(sm, ref index, new AuthCommand(AuthOp.UserRevokeRole) { Name = "root", Role = AuthState.Root }).Error);

            Assert.Null(Apply(sm, ref index, new AuthCommand(AuthOp.RoleAdd) { Name = "reader" }).Error);
            Assert.Null(Apply(sm, ref index, new AuthCommand(AuthOp.RoleGrantPermission) { Name = "reader", Permission = new Permission(PermissionType.Read, B("app/"), RangeRequest.Prefix(B("app/"))) }).Error);
            Assert.Null(Apply(sm, ref index, new AuthCommand(AuthOp.UserAdd) { Name = "alice", Password = hash }).Error);
            Assert.Null(Apply(sm, ref index, new AuthCommand(AuthOp.UserGrantRole) { Name = "alice", Role = "reader" }).Error);
            var alice = sm.Auth.Access("alice")!;
            Assert.True(alice.Permits(PermissionType.Read, B("app/x"), []));
            Assert.False(alice.Permits(PermissionType.Write, B("app/x"), []));
            Assert.False(alice.Permits(PermissionType.Read, B("other"), []));
            Assert.True(alice.Permits(PermissionType.Read, B("app/"), RangeRequest.Prefix(B("app/"))));
            Assert.False(alice.Permits(PermissionType.Read, B("app/"), [0]));

            // Deleting a role takes it from its users; the revision counts every change that was made.
            var before = sm.Auth.Revision;
            Assert.Null(Apply(sm, ref index, new AuthCommand(AuthOp.RoleDelete) { Name = "reader" }).Error);
            Assert.Empty(sm.Auth.Users["alice"].Roles);
            Assert.Equal(before + 1, sm.Auth.Revision);
            Assert.False(sm.Auth.Access("alice")!.Permits(PermissionType.Read, B("app/x"), []));
        }
        using (var reopened = KvStateMachine.Open(path, Fast))
        {
            Assert.True(reopened.Auth.Enabled);
            Assert.True(reopened.Auth.Users["root"].Password!.Verify("secret"));
            Assert.False(reopened.Auth.Users["root"].Password!.Verify("Secret"));
            Assert.Equal(["alice", "root"], reopened.Auth.Users.Keys.Order(StringComparer.Ordinal));
        }
    }

    [Fact]
    public void Auth_state_travels_with_a_snapshot()
    {
        ulong index = 0;
        using var source = KvStateMachine.Open(Path.Combine(_dir, "source"), Fast);
        Apply(source, ref index, new AuthCommand(AuthOp.UserAdd) { Name = "root", Password = PasswordHash.Create("pw", 1000) });
        Apply(source, ref index, new AuthCommand(AuthOp.Enable) { SigningKey = new byte[32] });
        using var target = KvStateMachine.Open(Path.Combine(_dir, "target"), Fast);
        Assert.False(target.Auth.Enabled);
        using var dump = new MemoryStream();
        source.WriteSnapshot(dump);
        dump.Position = 0;
        var built = Path.Combine(_dir, "built");
        KvStateMachine.BuildFromSnapshot(dump, built, Fast);
        target.InstallSnapshot(built);
        Assert.True(target.Auth.Enabled);
        Assert.True(target.Auth.Access("root")!.IsRoot);
    }

    [Fact]
    public void Auth_commands_round_trip_through_their_encoding_and_damaged_bytes_are_refused()
    {
        var c = new AuthCommand(AuthOp.RoleGrantPermission) { Name = "r", Permission = new Permission(PermissionType.ReadWrite, B("k"), [0]), SigningKey = new byte[32] };
        var bytes = new KvCommand { Auth = c }.Encode();
        var back = KvCommand.Decode(bytes).Auth!;
        Assert.Equal(c.Op, back.Op);
        Assert.Equal(c.Name, back.Name);
        Assert.Equal(c.Permission!.Key, back.Permission!.Key);
        Assert.Equal(c.Permission.RangeEnd, back.Permission.RangeEnd);
        Assert.Equal(PermissionType.ReadWrite, back.Permission.Type);
        for (var cut = 1; cut < bytes.Length; cut++) Assert.Throws<InvalidDataException>(() => KvCommand.Decode(bytes.AsSpan(0, cut)));
        var badOp = (byte[])bytes.Clone();
        badOp[1] = 99;
        Assert.Throws<InvalidDataException>(() => KvCommand.Decode(badOp));
    }

    [Fact]
    public void A_permission_check_allocates_nothing()
    {
        var state = StateWith([new Permission(PermissionType.Read, B("a"), B("m")), new Permission(PermissionType.ReadWrite, B("x/"), RangeRequest.Prefix(B("x/")))]);
        var access = state.Access("u")!;
        var key = B("x/key");
        var end = RangeRequest.Prefix(B("x/"));
        var other = B("b");
        var granted = 0;
        for (var i = 0; i < 100; i++) granted += access.Permits(PermissionType.Write, key, []) ? 1 : 0; // warm up
        for (var i = 0; i < 50_000; i++) _ = access.Permits(PermissionType.Read, key, end) && !access.Permits(PermissionType.Write, other, []); // past tiered compilation
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            if (access.Permits(PermissionType.Write, key, [])) granted++;
            if (access.Permits(PermissionType.Read, key, end)) granted++;
            if (!access.Permits(PermissionType.Write, other, [])) granted++;
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        Assert.Equal(100 + 30_000, granted);
    }
}
