using System.Security.Cryptography.X509Certificates;
using System.Text;
using Cairn.Cli;
using Cairn.Server.Tests;

namespace Cairn.Client.Tests;

/// <summary>The client library's and the verbs' TLS options, and how the client takes a member's idle close.</summary>
public sealed class TlsTests : IAsyncLifetime
{
    private readonly TestPki _pki = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        _pki.Dispose();
        return Task.CompletedTask;
    }

    private Func<Server.MemberOptions, Server.MemberOptions> MutualTls => o => o with
    {
        ClientCertFile = _pki.Member.Cert,
        ClientKeyFile = _pki.Member.Key,
        ClientCaFile = _pki.CaFile,
        ClientCertAuth = true,
    };

    [Fact]
    public async Task Files_or_in_memory_certificates_reach_a_member_that_requires_client_certificates()
    {
        await using var cluster = await TestCluster.StartAsync(1, MutualTls);
        var bob = _pki.Client("bob");
        await using (var files = new CairnClient(new CairnClientOptions
        {
            Endpoints = [cluster.Endpoint("m1")],
            Tls = new CairnTlsOptions { CaFile = _pki.CaFile, CertFile = bob.Cert, KeyFile = bob.Key },
        }))
        {
            await files.PutAsync("tls/a", "1");
        }
        var ca = new X509Certificate2Collection();
        ca.ImportFromPemFile(_pki.CaFile);
        using var cert = X509Certificate2.CreateFromPemFile(bob.Cert, bob.Key);
        await using var memory = new CairnClient(new CairnClientOptions
        {
            Endpoints = [cluster.Endpoint("m1")],
            Tls = new CairnTlsOptions { CaCertificates = ca, ClientCertificate = X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pkcs12), null) },
        });
        var (_, kv) = await memory.GetAsync("tls/a");
        Assert.Equal("1", Encoding.UTF8.GetString(kv!.Value));

        // Without TLS the member answers in plaintext that it wants TLS; the client says so.
        await using var plain = new CairnClient(new CairnClientOptions { Endpoints = [cluster.Endpoint("m1")] });
        var e = await Assert.ThrowsAsync<CairnUnavailableException>(() => plain.ConnectAsync());
        Assert.Contains("speaks TLS", e.Message, StringComparison.Ordinal);

        // Options that cannot work are refused up front, naming the setting.
        Assert.Throws<ArgumentException>(() => new CairnClient(new CairnClientOptions { Tls = new CairnTlsOptions { CertFile = bob.Cert } }));
        Assert.Throws<ArgumentException>(() => new CairnClient(new CairnClientOptions { Tls = new CairnTlsOptions { CaFile = Path.Combine(_pki.Dir, "missing.pem") } }));
    }

    [Fact]
    public async Task The_verbs_speak_tls_with_certificates_from_cairn_certs()
    {
        var dir = Path.Combine(_pki.Dir, "made-by-cairn-certs");
        Assert.Equal(0, await CairnCli.RunAsync(["certs", "--dir", dir, "--clients", "carol"], CliIo.Of(TextWriter.Null, TextWriter.Null), CancellationToken.None));
        await using var cluster = await TestCluster.StartAsync(1, o => o with
        {
            ClientCertFile = Path.Combine(dir, "member.pem"),
            ClientKeyFile = Path.Combine(dir, "member.key"),
            ClientCaFile = Path.Combine(dir, "ca.pem"),
            ClientCertAuth = true,
        });
        string[] tls = ["--endpoints", cluster.Endpoint("m1"), "--cacert", Path.Combine(dir, "ca.pem"), "--cert", Path.Combine(dir, "carol.pem"), "--key", Path.Combine(dir, "carol.key")];
        var (o1, e1) = (new StringWriter { NewLine = "\n" }, new StringWriter());
        Assert.Equal(0, await ClientVerbs.RunAsync([.. tls, "put", "v/k", "hello"], o1, e1, new StringReader(""), CancellationToken.None));
        var (o2, e2) = (new StringWriter { NewLine = "\n" }, new StringWriter());
        Assert.Equal(0, await ClientVerbs.RunAsync([.. tls, "get", "v/k"], o2, e2, new StringReader(""), CancellationToken.None));
        Assert.Equal("v/k\nhello\n", o2.ToString());
        // Without --cert the member refuses the handshake: an error, not a hang.
        var (o3, e3) = (new StringWriter(), new StringWriter());
        Assert.NotEqual(0, await ClientVerbs.RunAsync(["--endpoints", cluster.Endpoint("m1"), "--cacert", Path.Combine(dir, "ca.pem"), "--dial-timeout", "2s", "get", "v/k"], o3, e3, new StringReader(""), CancellationToken.None));
    }

    [Fact]
    public async Task A_connection_the_member_closes_as_idle_is_reopened_transparently()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => o with { IdleTimeout = TimeSpan.FromMilliseconds(200) });
        var m = cluster.Members["m1"]!;
        await using var client = cluster.Client();
        await client.PutAsync("idle/a", "1");
        await TestCluster.EventuallyAsync(() => Task.FromResult(m.Stats.IdleClosed >= 1), "the member closes the idle connection");
        // The next write goes out on a new connection and is not reported as of unknown outcome.
        await client.PutAsync("idle/b", "2");
        var (_, kv) = await client.GetAsync("idle/b");
        Assert.Equal("2", Encoding.UTF8.GetString(kv!.Value));
    }
    [Fact]
    public async Task With_auth_on_a_client_certificate_names_the_user_and_its_permissions_apply()
    {
        await using var cluster = await TestCluster.StartAsync(1, o => MutualTls(o) with { PasswordIterations = 1000 });
        var root = _pki.Client("root");
        var alice = _pki.Client("alice");
        CairnClient As((string Cert, string Key) who, CairnCredentials? credentials = null) => new(new CairnClientOptions
        {
            Endpoints = [cluster.Endpoint("m1")],
            Credentials = credentials,
            Tls = new CairnTlsOptions { CaFile = _pki.CaFile, CertFile = who.Cert, KeyFile = who.Key },
        });
        await using (var admin = As(root))
        {
            await admin.UserAddAsync("root", "root-pw");
            await admin.UserAddAsync("alice", null);               // no password: only her certificate names her
            await admin.RoleAddAsync("a");
            await admin.RoleGrantPermissionAsync("a", Kv.PermissionType.ReadWrite, Encoding.UTF8.GetBytes("a/"), Kv.RangeRequest.Prefix(Encoding.UTF8.GetBytes("a/")));
            await admin.UserGrantRoleAsync("alice", "a");
            await admin.AuthEnableAsync();
            await admin.PutAsync("b/root", "1");                    // root by its certificate: every key
        }
        await using var client = As(alice);
        await client.PutAsync("a/x", "1");
        var denied = await Assert.ThrowsAsync<CairnAuthException>(() => client.PutAsync("b/x", "1"));
        Assert.Equal(Protocol.ErrorCode.PermissionDenied, denied.Code);
        Assert.Contains("'alice'", denied.Message, StringComparison.Ordinal);
        // A certificate whose name is no user gets nothing without credentials.
        await using var stranger = As(_pki.Client("mallory"));
        Assert.Equal(Protocol.ErrorCode.InvalidAuthToken, (await Assert.ThrowsAsync<CairnAuthException>(() => stranger.GetAsync("a/x"))).Code);
    }
}
