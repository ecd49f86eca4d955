using System.Text;
using Cairn.Cli;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Server;

namespace Cairn.Client.Tests;

/// <summary>Auth against real members: who may do what, tokens across members and clusters, expiry, and the CLI verbs.</summary>
public sealed class AuthTests
{
    private static readonly CairnCredentials Root = new("root", "root-pw");

    /// <summary>Fast password hashing (the default is 600,000 PBKDF2 iterations, about a quarter second each).</summary>
    private static Func<MemberOptions, MemberOptions> Fast(TimeSpan? tokenTtl = null) =>
        o => o with { PasswordIterations = 1000, AuthTokenTtl = tokenTtl ?? TimeSpan.FromMinutes(10) };

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Adds root and turns auth on, with a client that has no credentials (auth is off until then).</summary>
    private static async Task EnableAsync(TestCluster cluster)
    {
        await using var open = cluster.Client();
        await open.UserAddAsync(Root.User, Root.Password);
        await open.AuthEnableAsync();
    }

    private static async Task<bool> AllowedAsync(Func<Task> request)
    {
        try
        {
            await request();
            return true;
        }
        catch (CairnAuthException e) when (e.Code == ErrorCode.PermissionDenied)
        {
            return false;
        }
    }

    // The key universe and the model: a request is allowed when the union of the user's permission intervals covers it.
    private static readonly string[] Keys = ["a", "a/1", "a/2", "b", "b/1", "c"];

    private static (byte[] Key, byte[] End) RandomKeys(Random rng)
    {
        var k = B(Keys[rng.Next(Keys.Length)]);
        return rng.Next(3) switch { 0 => (k, RangeRequest.Prefix(k)), 1 => (k, [0]), _ => (k, []) };
    }

    private static bool Model(IEnumerable<Permission> perms, PermissionType need, byte[] key, byte[] end)
    {
        // Every key of the universe and every boundary in the request must lie in a granted interval of each kind.
        static (byte[] S, byte[]? E) I(byte[] k, byte[] e) => e.Length == 0 ? (k, [.. k, 0]) : e is [0] ? (k, null) : (k, e);
        static int C(byte[] a, byte[] b) => a.AsSpan().SequenceCompareTo(b);
        var (s, e) = I(key, end);
        foreach (var kind in new[] { PermissionType.Read, PermissionType.Write })
        {
            if ((need & kind) == 0) continue;
            var iv = perms.Where(p => (p.Type & kind) != 0).Select(p => I(p.Key, p.RangeEnd)).ToList();
            var points = iv.SelectMany(i => i.E is null ? new[] { i.S } : [i.S, i.E]).Append(s)
                .Where(p => C(p, s) >= 0 && (e is null || C(p, e) < 0));
            if (points.Any(p => !iv.Any(i => C(i.S, p) <= 0 && (i.E is null || C(p, i.E) < 0)))) return false;
        }
        return true;
    }

    [Fact]
    public async Task Every_request_kind_is_allowed_exactly_when_the_model_of_users_roles_and_permissions_says_so()
    {
        await using var cluster = await TestCluster.StartAsync(1, Fast());
        await EnableAsync(cluster);
        await using var root = cluster.Client(credentials: Root);
        var rng = new Random(1126);
        var roles = new Dictionary<string, List<Permission>>();
        for (var r = 0; r < 4; r++)
        {
            var name = $"role{r}";
            await root.RoleAddAsync(name);
            var perms = new Dictionary<string, Permission>();
            for (var n = rng.Next(1, 4); n > 0; n--)
            {
                var (k, e) = RandomKeys(rng);
                var p = new Permission((PermissionType)rng.Next(1, 4), k, e);
                await root.RoleGrantPermissionAsync(name, p.Type, p.Key, p.RangeEnd);
                perms[Convert.ToHexString(k) + "/" + Convert.ToHexString(e)] = p; // the same keys: the later grant replaces
            }
            roles[name] = [.. perms.Values];
        }
        foreach (var k in Keys) await root.PutAsync(k, "v0");
        var checks = 0;
        var allowed = 0;
        for (var u = 0; u < 4; u++)
        {
            var user = $"user{u}";
            await root.UserAddAsync(user, "pw" + u);
            var mine = roles.Keys.Where(_ => rng.Next(2) == 0).ToList();
            foreach (var role in mine) await root.UserGrantRoleAsync(user, role);
            Assert.Equal(mine.Order(StringComparer.Ordinal), (await root.UserGetAsync(user)).Body.Order(StringComparer.Ordinal));
            var perms = mine.SelectMany(r => roles[r]).ToList();
            await using var client = cluster.Client(credentials: new CairnCredentials(user, "pw" + u));
            for (var i = 0; i < 30; i++)
            {
                var (key, end) = RandomKeys(rng);
                var kind = rng.Next(5);
                bool expected, actual;
                switch (kind)
                {
                    case 0:
                        expected = Model(perms, PermissionType.Read, key, end);
                        actual = await AllowedAsync(() => client.RangeAsync(new RangeRequest { Key = key, RangeEnd = end }));
                        break;
                    case 1:
                        expected = Model(perms, PermissionType.Write, key, []);
                        actual = await AllowedAsync(() => client.PutAsync(key, B("v" + i)));
                        break;
                    case 2:
                        expected = Model(perms, PermissionType.Write, key, end);
                        actual = await AllowedAsync(() => client.DeleteAsync(new DeleteRangeRequest { Key = key, RangeEnd = end }));
                        break;
                    case 3:
                    {
                        // A txn needs read on its compares and ranges and write on its puts, in both branches.
                        var (other, otherEnd) = RandomKeys(rng);
                        var put = B(Keys[rng.Next(Keys.Length)]);
                        expected = Model(perms, PermissionType.Read, key, end) && Model(perms, PermissionType.Read, other, otherEnd) && Model(perms, PermissionType.Write, put, []);
                        actual = await AllowedAsync(() => client.TxnAsync(new TxnRequest
                        {
                            Compares = [new Compare { Key = key, RangeEnd = end, Target = CompareTarget.Version, Result = CompareResult.Greater, Number = -1 }],
                            Success = [new TxnOp { Range = new RangeRequest { Key = other, RangeEnd = otherEnd } }],
                            Failure = [new TxnOp { Put = new PutRequest { Key = put, Value = B("t") } }],
                        }));
                        break;
                    }
                    default:
                    {
                        expected = Model(perms, PermissionType.Read, key, end);
                        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
                        actual = await AllowedAsync(async () =>
                        {
                            await using var e = client.WatchAsync(new WatchRequest { Key = key, RangeEnd = end }, stop.Token).GetAsyncEnumerator(stop.Token);
                            var next = e.MoveNextAsync().AsTask();
                            await Task.Delay(50); // a refused watch fails before any event; an allowed one waits for one
                            if (!next.IsCompleted) await root.PutAsync(key, B("w" + i));
                            Assert.True(await next, "an allowed watch delivers the change");
                            Assert.Contains(e.Current.Events, ev => ev.Kv.Key.AsSpan().SequenceEqual(key));
                        });
                        break;
                    }
                }
                Assert.True(expected == actual, $"{user} with roles [{string.Join(", ", mine)}]: request kind {kind} on [{Encoding.UTF8.GetString(key)}, {Convert.ToHexString(end)}): model {expected}, member {actual}");
                checks++;
                if (actual) allowed++;
            }
        }
        Assert.Equal(120, checks);
        Assert.InRange(allowed, 1, checks - 1); // the seed exercises both answers
    }

    [Fact]
    public async Task Auth_needs_a_root_user_then_refuses_anonymous_requests_and_non_root_administration()
    {
        await using var cluster = await TestCluster.StartAsync(1, Fast());
        await using var open = cluster.Client();
        var refused = await Assert.ThrowsAsync<CairnAuthException>(() => open.AuthEnableAsync());
        Assert.Equal(ErrorCode.AuthError, refused.Code);
        Assert.Contains("root user", refused.Message, StringComparison.Ordinal);
        Assert.False((await open.AuthStatusAsync()).Body.Enabled);
        await open.UserAddAsync("root", Root.Password);
        await open.UserAddAsync("bob", "bob-pw");
        await open.AuthEnableAsync();

        // The same connection, now without a user: refused with a message that says what to do.
        var anonymous = await Assert.ThrowsAsync<CairnAuthException>(() => open.GetAsync("k"));
        Assert.Equal(ErrorCode.InvalidAuthToken, anonymous.Code);
        Assert.Contains("authenticate", anonymous.Message, StringComparison.Ordinal);
        Assert.True((await open.AuthStatusAsync()).Body.Enabled); // status needs no user

        await using var bob = cluster.Client(credentials: new CairnCredentials("bob", "bob-pw"));
        var denied = await Assert.ThrowsAsync<CairnAuthException>(() => bob.UserAddAsync("eve", "x"));
        Assert.Equal(ErrorCode.PermissionDenied, denied.Code);
        Assert.Contains("root", denied.Message, StringComparison.Ordinal);
        var put = await Assert.ThrowsAsync<CairnAuthException>(() => bob.PutAsync("k", "v"));
        Assert.Contains("'k'", put.Message, StringComparison.Ordinal); // names the key

        // Wrong passwords fail; they slow down that user's guesses from this address but never lock the right password out.
        for (var i = 0; i < 3; i++)
        {
            await using var guess = cluster.Client(credentials: new CairnCredentials("root", "wrong" + i));
            var failed = await Assert.ThrowsAsync<CairnAuthException>(() => guess.GetAsync("k"));
            Assert.Equal(ErrorCode.AuthFailed, failed.Code);
        }
        await using var root = cluster.Client(credentials: Root);
        await root.PutAsync("k", "v");
        Assert.Equal("v", Encoding.UTF8.GetString((await root.GetAsync("k")).Body!.Value));
        var metrics = cluster.Members["m1"]!.MetricsText();
        Assert.Contains("cairn_auth_failures_total 3", metrics, StringComparison.Ordinal);
        Assert.Contains("cairn_auth_permission_denied_total 1", metrics, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_token_is_good_on_every_member_after_a_change_of_leader_and_worthless_on_another_cluster()
    {
        await using var cluster = await TestCluster.StartAsync(3, Fast());
        await EnableAsync(cluster);
        var leader = await cluster.LeaderAsync();
        await using var login = cluster.Client([cluster.Endpoint(cluster.NameOf(leader))], credentials: Root);
        var token = (await login.AuthenticateAsync("root", Root.Password)).Body;
        await login.PutAsync("before", "1");

        await cluster.StopAsync(cluster.NameOf(leader), handOver: true);
        var next = await cluster.LeaderAsync();
        Assert.NotEqual(leader.Id, next.Id);
        foreach (var name in cluster.Names.Where(n => cluster.Members[n] is not null))
        {
            await using var withToken = cluster.Client([cluster.Endpoint(name)], token: token);
            await withToken.PutAsync("after/" + name, "1");
            Assert.NotNull((await withToken.GetAsync("before")).Body);
        }

        await using var other = await TestCluster.StartAsync(1, Fast());
        await EnableAsync(other);
        await using var foreign = other.Client(token: token);
        var refused = await Assert.ThrowsAsync<CairnAuthException>(() => foreign.GetAsync("before"));
        Assert.Equal(ErrorCode.InvalidAuthToken, refused.Code);
    }

    [Fact]
    public async Task Tokens_expire_and_a_password_change_ends_the_old_ones_while_credentials_log_in_again()
    {
        await using var cluster = await TestCluster.StartAsync(1, Fast(tokenTtl: TimeSpan.FromSeconds(1)));
        await EnableAsync(cluster);
        await using var root = cluster.Client(credentials: Root);
        var token = (await root.AuthenticateAsync("root", Root.Password)).Body;
        await using (var withToken = cluster.Client(token: token)) await withToken.PutAsync("k", "1");
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        await using (var late = cluster.Client(token: token))
        {
            var expired = await Assert.ThrowsAsync<CairnAuthException>(() => late.GetAsync("k"));
            Assert.Equal(ErrorCode.InvalidAuthToken, expired.Code);
            Assert.Contains("expired", expired.Message, StringComparison.Ordinal);
        }
        // The client with credentials had its connection's token expire too: it logs in again and carries on.
        await root.PutAsync("k", "2");

        await root.UserAddAsync("carol", "old");
        await root.UserGrantRoleAsync("carol", "root");
        var carolToken = (await root.AuthenticateAsync("carol", "old")).Body;
        await using var carol = cluster.Client(credentials: new CairnCredentials("carol", "old"));
        await carol.GetAsync("k");
        await root.UserChangePasswordAsync("carol", "new");
        var stale = await Assert.ThrowsAsync<CairnAuthException>(() => carol.GetAsync("k")); // re-login with the old password fails
        Assert.Equal(ErrorCode.AuthFailed, stale.Code);
        await using var byToken = cluster.Client(token: carolToken);
        Assert.Equal(ErrorCode.InvalidAuthToken, (await Assert.ThrowsAsync<CairnAuthException>(() => byToken.GetAsync("k"))).Code);
        await using var renewed = cluster.Client(credentials: new CairnCredentials("carol", "new"));
        await renewed.GetAsync("k");
    }

    [Fact]
    public async Task The_cli_manages_users_roles_and_auth_as_etcdctl_does()
    {
        await using var cluster = await TestCluster.StartAsync(1, Fast());
        async Task<(int Code, string Out, string Err)> Cairn(string stdin, params string[] args)
        {
            var stdout = new StringWriter { NewLine = "\n" };
            var stderr = new StringWriter { NewLine = "\n" };
            var code = await ClientVerbs.RunAsync(["--endpoints", cluster.Endpoint("m1"), .. args], stdout, stderr, new StringReader(stdin), CancellationToken.None);
            return (code, stdout.ToString(), stderr.ToString());
        }
        Assert.Equal((0, "User root created\n", ""), await Cairn("", "user", "add", "root:pw"));
        Assert.Equal((0, "User app created\n", ""), await Cairn("app-pw\n", "user", "add", "app")); // the password from stdin
        Assert.Equal((0, "Role app created\n", ""), await Cairn("", "role", "add", "app"));
        Assert.Equal(0, (await Cairn("", "role", "grant-permission", "app", "readwrite", "app/", "--prefix")).Code);
        Assert.Equal(0, (await Cairn("", "user", "grant-role", "app", "app")).Code);
        Assert.Equal((0, "Authentication Enabled\n", ""), await Cairn("", "auth", "enable"));

        var anonymous = await Cairn("", "get", "app/x");
        Assert.Equal(1, anonymous.Code);
        Assert.Contains("InvalidAuthToken", anonymous.Err, StringComparison.Ordinal);
        Assert.Equal(0, (await Cairn("", "--user", "app:app-pw", "put", "app/x", "1")).Code);
        Assert.Equal((0, "app/x\n1\n", ""), await Cairn("app-pw\n", "--user", "app", "get", "app/x")); // prompted (stdin)
        Assert.Equal((0, "app/x\n1\n", ""), await Cairn("", "--user", "app", "--password", "app-pw", "get", "app/x")); // etcdctl's --password
        Assert.Equal(2, (await Cairn("", "--user", "app:app-pw", "--password", "app-pw", "get", "app/x")).Code); // given twice
        var denied = await Cairn("", "--user", "app:app-pw", "put", "other", "1");
        Assert.Equal(1, denied.Code);
        Assert.Contains("PermissionDenied", denied.Err, StringComparison.Ordinal);
        Assert.Equal((0, "User: app\nRoles: app\n", ""), await Cairn("", "--user", "root:pw", "user", "get", "app"));
        Assert.Equal((0, "Role app\nKV Read:\n\t[app/, app0)\nKV Write:\n\t[app/, app0)\n", ""), await Cairn("", "--user", "root:pw", "role", "get", "app"));
        Assert.Equal((0, "app\nroot\n", ""), await Cairn("", "--user", "root:pw", "user", "list"));
        var wrong = await Cairn("", "--user", "root:nope", "user", "list");
        Assert.Equal(1, wrong.Code);
        Assert.Contains("AuthFailed", wrong.Err, StringComparison.Ordinal);
        Assert.Equal((0, "Authentication Status: true\nAuthRevision: 6\n", ""), await Cairn("", "auth", "status"));
        Assert.Equal((0, "Authentication Disabled\n", ""), await Cairn("", "--user", "root:pw", "auth", "disable"));
        Assert.Equal(0, (await Cairn("", "put", "other", "1")).Code);
    }
}
