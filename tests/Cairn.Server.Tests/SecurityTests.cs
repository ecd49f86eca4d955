using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Cairn.Client;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server.Tests;

/// <summary>TLS on the client port and peer links, and the peer handshake's proof of the cluster secret, over real sockets on loopback.</summary>
public sealed class SecurityTests : IAsyncLifetime
{
    private readonly TestPki _pki = new();

    public Task InitializeAsync() => Task.CompletedTask;

    public Task DisposeAsync()
    {
        _pki.Dispose();
        return Task.CompletedTask;
    }

    private MemberOptions ClientTls(MemberOptions o, bool certAuth = false) => o with
    {
        ClientCertFile = _pki.Member.Cert,
        ClientKeyFile = _pki.Member.Key,
        ClientCaFile = certAuth ? _pki.CaFile : null,
        ClientCertAuth = certAuth,
    };

    private static CairnClient Client(Member m, CairnTlsOptions? tls) => new(new CairnClientOptions
    {
        Endpoints = [m.ClientEndpoint.ToString()],
        DiscoverEndpoints = false,
        Tls = tls,
        RequestTimeout = TimeSpan.FromSeconds(10),
    });

    [Fact]
    public async Task A_tls_client_is_served_a_wrong_ca_is_refused_and_a_plaintext_client_is_told_cleanly_while_others_are_served()
    {
        await using var cluster = new TestCluster(1) { Customize = (_, o) => ClientTls(o) };
        await cluster.StartAllAsync();
        var m = cluster.Members["m1"]!;

        await using var good = Client(m, new CairnTlsOptions { CaFile = _pki.CaFile });
        await good.PutAsync("a", "1");
        Assert.Equal("1", System.Text.Encoding.UTF8.GetString((await good.GetAsync("a")).Body!.Value));

        // A client trusting another CA refuses the member's certificate.
        await using (var wrong = Client(m, new CairnTlsOptions { CaFile = _pki.ForeignCaFile }))
        {
            var e = await Assert.ThrowsAsync<CairnUnavailableException>(() => wrong.ConnectAsync());
            Assert.Contains("certificate", e.Message, StringComparison.Ordinal);
        }

        // A plaintext client gets a plaintext Error frame saying the port speaks TLS, then the connection closes.
        using (var plain = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await plain.ConnectAsync(m.ClientEndpoint);
            using var w = new FrameWriter(64);
            w.BeginFrame(MessageType.Hello, FrameFlags.None, 1);
            Messages.WriteHello(w);
            w.EndFrame();
            await plain.SendAsync(w.Written, SocketFlags.None);
            using var stream = new NetworkStream(plain, ownsSocket: false);
            var (h, payload) = await ReadFrameAsync(stream) ?? throw new Xunit.Sdk.XunitException("no answer to a plaintext hello");
            Assert.Equal(MessageType.Error, h.Type);
            var (code, message) = ReadError(payload);
            Assert.Equal(ErrorCode.Malformed, code);
            Assert.Contains("TLS", message, StringComparison.Ordinal);
            Assert.Null(await ReadFrameAsync(stream));
        }

        // The member survived both and still serves the good client, on its open connection and on a new one.
        await good.PutAsync("b", "2");
        await using (var again = Client(m, new CairnTlsOptions { CaFile = _pki.CaFile })) await again.PutAsync("c", "3");
        // The plaintext client is counted (the wrong-CA client abandoned a handshake the member had finished: TLS 1.3).
        Assert.True(m.Stats.TlsFailures >= 1);
        Assert.Contains("cairn_client_tls_failures_total", m.MetricsText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Mutual_tls_names_the_user_and_refuses_clients_without_a_certificate_from_the_ca()
    {
        await using var cluster = new TestCluster(1) { Customize = (_, o) => ClientTls(o, certAuth: true) };
        await cluster.StartAllAsync();
        var m = cluster.Members["m1"]!;
        var alice = _pki.Client("alice");

        await using (var c = Client(m, new CairnTlsOptions { CaFile = _pki.CaFile, CertFile = alice.Cert, KeyFile = alice.Key }))
        {
            await c.PutAsync("k", "v");
            var session = Assert.Single(m.Sessions);
            Assert.True(session.IsTls);
            Assert.Equal("alice", session.CertificateUser);
        }

        // No certificate, or one from another CA: the handshake fails and nothing is served.
        var mallory = _pki.Client("mallory", foreign: true);
        foreach (var tls in new[]
        {
            new CairnTlsOptions { CaFile = _pki.CaFile },
            new CairnTlsOptions { CaFile = _pki.CaFile, CertFile = mallory.Cert, KeyFile = mallory.Key },
        })
        {
            await using var c = Client(m, tls);
            await Assert.ThrowsAnyAsync<CairnException>(() => c.PutAsync("x", "y"));
        }
        await TestCluster.EventuallyAsync(() => m.Stats.TlsFailures >= 2, "both refusals are counted");
        await TestCluster.EventuallyAsync(() => !m.Sessions.Any(), "the refused connections are gone");
        Assert.Contains(cluster.Log, l => l.Contains("TLS handshake with client", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Three_members_over_tls_peer_links_replicate_and_refuse_a_peer_certificate_from_another_ca()
    {
        await using var cluster = new TestCluster(3, snapshotCount: 20)
        {
            Customize = (_, o) => o with { PeerCertFile = _pki.Member.Cert, PeerKeyFile = _pki.Member.Key, PeerCaFile = _pki.CaFile, PeerSecret = "tls cluster secret 0123456789"u8.ToArray() },
        };
        await cluster.StartAllAsync();
        await using (var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            for (var i = 0; i < 50; i++) await c.PutAsync($"k{i}", $"v{i}");
        }
        var leader = await cluster.LeaderAsync();
        await TestCluster.EventuallyAsync(() => cluster.Running.All(m => m.AppliedIndex >= leader.AppliedIndex), "every member applied the writes over TLS links");
        Assert.All(cluster.Running, m => Assert.True(m.Tls.PeerTls));

        // A process with a certificate from another CA cannot even finish TLS on a peer port.
        var target = cluster.Members["m2"]!;
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(target.PeerEndpoint);
        using var impostor = X509Certificate2.CreateFromPemFile(_pki.Impostor.Cert, _pki.Impostor.Key);
        await using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));
        var refused = false;
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "127.0.0.1",
                ClientCertificates = [X509CertificateLoader.LoadPkcs12(impostor.Export(X509ContentType.Pkcs12), null)],
                CertificateChainPolicy = TlsFiles.TrustOnly(TlsFiles.LoadCa(_pki.CaFile, "ca")),
            });
            // TLS 1.3 reports the server's refusal of the client certificate on the first read.
            refused = await ssl.ReadAsync(new byte[1]) == 0;
        }
        catch (Exception e) when (e is AuthenticationException or IOException)
        {
            refused = true;
        }
        Assert.True(refused);
        await TestCluster.EventuallyAsync(() => target.Stats.PeerTlsFailures > 0, "the refusal is counted");
        Assert.Contains(cluster.Log, l => l.Contains("TLS handshake failed", StringComparison.Ordinal) && l.Contains("not signed by a trusted CA", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_hello_with_a_bad_proof_is_refused_and_counted_a_replayed_handshake_is_refused_and_only_a_true_proof_delivers_raft_messages()
    {
        await using var cluster = new TestCluster(1) { Customize = (_, o) => o with { PeerSecret = "the real secret, 32 bytes long.."u8.ToArray() } };
        await cluster.StartAllAsync();
        var m = cluster.Members["m1"]!;
        var stranger = MemberOptions.MemberId("m2");

        // 1. A stranger without the secret: its proof is refused, and the Raft message it sends anyway goes nowhere.
        await using (var link = await PeerSocket.OpenAsync(m))
        {
            var (_, challenge) = await link.HelloAsync(m.ClusterId, stranger, m.Id);
            Assert.Equal(MessageType.PeerChallenge, challenge.Header.Type);
            await link.SendProofAsync(RandomNumberGenerator.GetBytes(32));
            await link.SendRaftAsync(new Message(RaftMessageType.Heartbeat, stranger, m.Id, 5000));
            var answer = await link.ReadAsync() ?? throw new Xunit.Sdk.XunitException("no answer to a bad proof");
            Assert.Equal(MessageType.Error, answer.Header.Type);
            Assert.Equal(ErrorCode.PeerAuthFailed, ReadError(answer.Payload).Code);
            Assert.Null(await link.ReadAsync()); // closed
        }
        Assert.Equal(1, m.Stats.PeerAuthFailures);
        Assert.Contains(cluster.Log, l => l.Contains("did not prove it holds this cluster's peer secret", StringComparison.Ordinal));

        // 2. A process that knows the secret: accepted; and here is what is recorded on the wire.
        byte[] recordedHello, recordedProof;
        await using (var link = await PeerSocket.OpenAsync(m))
        {
            var (frame, challenge) = await link.HelloAsync(m.ClusterId, stranger, m.Id);
            var hello = frame[Frame.HeaderSize..];   // both proofs cover the hello's payload
            var nonce = challenge.Payload[..32];
            // The member proved the secret to the dialer too.
            Assert.Equal(PeerHandshake.Proof(m.PeerKey, listener: true, hello, nonce), challenge.Payload[32..]);
            recordedHello = frame;
            recordedProof = PeerHandshake.Proof(m.PeerKey, listener: false, hello, nonce);
            await link.SendProofAsync(recordedProof);
            var answer = await link.ReadAsync() ?? throw new Xunit.Sdk.XunitException("no answer to a true proof");
            Assert.Equal(MessageType.PeerHello, answer.Header.Type);
            // Its Raft message is delivered: a heartbeat of a later term moves the member to that term.
            await link.SendRaftAsync(new Message(RaftMessageType.Heartbeat, stranger, m.Id, 1000));
            await TestCluster.EventuallyAsync(() => m.Current.Term >= 1000, "the authenticated heartbeat reaches the Raft core");
        }
        Assert.True(m.Current.Term < 5000, $"the unauthenticated heartbeat (term 5000) never reached the core: term {m.Current.Term}");

        // 3. Replaying the recorded hello and proof: the member's fresh nonce makes the old proof worthless.
        await using (var link = await PeerSocket.OpenAsync(m))
        {
            await link.SendRawAsync(recordedHello);
            var challenge = await link.ReadAsync() ?? throw new Xunit.Sdk.XunitException("no challenge");
            Assert.Equal(MessageType.PeerChallenge, challenge.Header.Type);
            await link.SendProofAsync(recordedProof);
            var answer = await link.ReadAsync() ?? throw new Xunit.Sdk.XunitException("no answer to a replayed proof");
            Assert.Equal(ErrorCode.PeerAuthFailed, ReadError(answer.Payload).Code);
        }
        Assert.Equal(2, m.Stats.PeerAuthFailures);
        Assert.Contains("cairn_peer_auth_failures_total 2", m.MetricsText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_member_with_another_peer_secret_is_refused_with_a_log_line_and_a_metric()
    {
        await using var cluster = new TestCluster(3)
        {
            Customize = (name, o) => o with { PeerSecret = System.Text.Encoding.UTF8.GetBytes(name == "m3" ? "a different secret entirely" : "the cluster's shared secret") },
        };
        foreach (var name in new[] { "m1", "m2", "m3" }) cluster.Start(name);
        var m1 = cluster.Members["m1"]!;
        var m2 = cluster.Members["m2"]!;
        var m3 = cluster.Members["m3"]!;
        await TestCluster.EventuallyAsync(() => m1.Leader != 0 && m1.Leader == m2.Leader && m1.Leader != m3.Id, "m1 and m2 elect a leader between them");
        await TestCluster.EventuallyAsync(() => m1.Stats.PeerAuthFailures + m2.Stats.PeerAuthFailures > 0 && m3.Stats.PeerAuthFailures > 0, "both sides count the mismatch");
        Assert.Equal(0UL, m3.Leader);
        Assert.Contains(cluster.Log, l => (l.StartsWith("cairn m1", StringComparison.Ordinal) || l.StartsWith("cairn m2", StringComparison.Ordinal)) && l.Contains("peer secret", StringComparison.Ordinal));
        Assert.Contains(cluster.Log, l => l.StartsWith("cairn m3", StringComparison.Ordinal) && l.Contains("--peer-secret-file", StringComparison.Ordinal));
    }

    internal static async Task<(FrameHeader Header, byte[] Payload)?> ReadFrameAsync(Stream stream)
    {
        var header = new byte[Frame.HeaderSize];
        try
        {
            if (!await ReadExactlyAsync(stream, header)) return null;
            Frame.TryReadHeader(header, out var h);
            var payload = new byte[h.PayloadLength];
            if (!await ReadExactlyAsync(stream, payload)) return null;
            return (h, payload);
        }
        catch (IOException)
        {
            return null; // reset
        }
    }

    private static async Task<bool> ReadExactlyAsync(Stream stream, Memory<byte> buffer)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (!buffer.IsEmpty)
        {
            var n = await stream.ReadAsync(buffer, timeout.Token);
            if (n == 0) return false;
            buffer = buffer[n..];
        }
        return true;
    }

    internal static (ErrorCode Code, string Message) ReadError(byte[] payload)
    {
        var r = new PayloadReader(payload);
        return Messages.ReadError(ref r);
    }

    /// <summary>A raw peer link to a member, written frame by frame.</summary>
    private sealed class PeerSocket : IAsyncDisposable
    {
        private readonly Socket _socket;
        private readonly NetworkStream _stream;

        private PeerSocket(Socket socket)
        {
            _socket = socket;
            _stream = new NetworkStream(socket, ownsSocket: true);
        }

        public static async Task<PeerSocket> OpenAsync(Member m)
        {
            var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            await s.ConnectAsync(m.PeerEndpoint);
            return new PeerSocket(s);
        }

        /// <summary>Sends a hello; returns the frame sent and the member's answer.</summary>
        public async Task<(byte[] Frame, (FrameHeader Header, byte[] Payload) Challenge)> HelloAsync(ulong cluster, ulong from, ulong to)
        {
            using var w = new FrameWriter(128);
            PeerCodec.WriteHello(w, cluster, from, to, PeerCodec.LinkKind.Raft, RandomNumberGenerator.GetBytes(32));
            var frame = w.Written.ToArray();
            await _stream.WriteAsync(frame);
            var challenge = await ReadAsync() ?? throw new Xunit.Sdk.XunitException("no answer to the hello");
            return (frame, challenge);
        }

        public async Task SendProofAsync(byte[] proof)
        {
            using var w = new FrameWriter(64);
            w.BeginFrame(MessageType.PeerProof, FrameFlags.None, 0);
            w.Raw(proof);
            w.EndFrame();
            await _stream.WriteAsync(w.Written);
        }

        public async Task SendRaftAsync(Message m)
        {
            using var w = new FrameWriter(256);
            PeerCodec.WriteMessage(w, m);
            try
            {
                await _stream.WriteAsync(w.Written);
            }
            catch (IOException)
            {
                // the member may already have closed the link
            }
        }

        public async Task SendRawAsync(byte[] frame) => await _stream.WriteAsync(frame);

        public Task<(FrameHeader Header, byte[] Payload)?> ReadAsync() => ReadFrameAsync(_stream);

        public async ValueTask DisposeAsync()
        {
            await _stream.DisposeAsync();
            _socket.Dispose();
        }
    }
}
