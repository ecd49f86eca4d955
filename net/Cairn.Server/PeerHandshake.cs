using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Text;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// How a peer link opens (docs/protocol.md, "Peer links"): TCP, then TLS when peer certificates are configured, then a
/// challenge-response over the cluster's peer secret, so that a process that merely knows the port cannot open a link
/// or send a Raft message, and a recorded handshake cannot be replayed:
/// <code>
/// dialer   → PeerHello      cluster, from, to, kind, nonce_d (32 random bytes)
/// listener → PeerChallenge  nonce_l (32 random bytes), HMAC(K, "cairn-peer-listener" ‖ hello ‖ nonce_l)
/// dialer   → PeerProof      HMAC(K, "cairn-peer-dialer" ‖ hello ‖ nonce_l)
/// listener → PeerHello      (Response) the cluster id — or an Error frame and a close
/// </code>
/// Each side's proof covers the other side's fresh nonce, and the labels differ, so neither a recorded proof nor the
/// listener's own answer can be played back. K = HMAC-SHA256(peer secret, "cairn peer key v1" ‖ cluster token).
/// </summary>
internal static class PeerHandshake
{
    private static readonly byte[] ListenerLabel = "cairn-peer-listener\0"u8.ToArray();
    private static readonly byte[] DialerLabel = "cairn-peer-dialer\0"u8.ToArray();

    /// <summary>The link key from the secret (null: none, only the token) and the cluster token.</summary>
    public static byte[] Key(byte[]? secret, string clusterToken) =>
        HMACSHA256.HashData(secret ?? [], Encoding.UTF8.GetBytes("cairn peer key v1\0" + clusterToken));

    /// <summary>The proof of one side: HMAC(key, label ‖ hello payload ‖ listener nonce).</summary>
    public static byte[] Proof(byte[] key, bool listener, ReadOnlySpan<byte> hello, ReadOnlySpan<byte> listenerNonce)
    {
        var label = listener ? ListenerLabel : DialerLabel;
        var data = new byte[label.Length + hello.Length + listenerNonce.Length];
        label.CopyTo(data, 0);
        hello.CopyTo(data.AsSpan(label.Length));
        listenerNonce.CopyTo(data.AsSpan(label.Length + hello.Length));
        return HMACSHA256.HashData(key, data);
    }

    /// <summary>
    /// Dials <paramref name="url"/>, runs TLS when <paramref name="tls"/> says so, and proves the secret; returns the
    /// open stream and the cluster id the peer answered with. A refusal throws <see cref="ProtocolException"/>
    /// (<see cref="ErrorCode.PeerAuthFailed"/> when the secret or a certificate did not match).
    /// </summary>
    public static async Task<(Stream Stream, ulong ClusterId)> DialAsync(MemberTls tls, byte[] key, string url, ulong cluster, ulong from, ulong to,
        PeerCodec.LinkKind kind, TimeSpan timeout, CancellationToken cancellationToken)
    {
        var endpoint = MemberOptions.ParseEndpoint(url, "peer address");
        var socket = new Socket(System.Net.Sockets.AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            await socket.ConnectAsync(endpoint, deadline.Token).ConfigureAwait(false);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        try
        {
            if (tls.PeerTls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                var verdict = new MemberTls.Verdict();
                try
                {
                    await ssl.AuthenticateAsClientAsync(tls.PeerClientOptions(endpoint.Address.ToString(), verdict), deadline.Token).ConfigureAwait(false);
                }
                catch (AuthenticationException e)
                {
                    throw new ProtocolException(ErrorCode.PeerAuthFailed, $"TLS handshake with the peer at {url} failed: {verdict.Refusal ?? e.Message} (check --peer-cert, --peer-key and --peer-cacert on both members)");
                }
            }
            var nonce = RandomNumberGenerator.GetBytes(PeerCodec.NonceBytes);
            byte[] hello;
            using (var w = new FrameWriter(128))
            {
                PeerCodec.WriteHello(w, cluster, from, to, kind, nonce);
                hello = w.WrittenSpan[Frame.HeaderSize..].ToArray();
                await stream.WriteAsync(w.Written, deadline.Token).ConfigureAwait(false);
            }
            using var reader = new FrameReader(stream, 1 << 16);
            var (h, payload) = await NextAsync(reader, deadline.Token).ConfigureAwait(false);
            if (h.Type != MessageType.PeerChallenge || payload.Length != 2 * PeerCodec.NonceBytes) throw new ProtocolException(ErrorCode.Malformed, $"expected a peer challenge from {url}, got {h.Type}");
            var listenerNonce = payload.Span[..PeerCodec.NonceBytes].ToArray();
            var expected = Proof(key, listener: true, hello, listenerNonce);
            if (!CryptographicOperations.FixedTimeEquals(expected, payload.Span[PeerCodec.NonceBytes..]))
            {
                const string why = "it does not hold this member's peer secret";
                using var refusal = new FrameWriter(256);
                Responder.WriteError(refusal, 0, ErrorCode.PeerAuthFailed, $"the dialing member found that {why}");
                await stream.WriteAsync(refusal.Written, deadline.Token).ConfigureAwait(false);
                throw new ProtocolException(ErrorCode.PeerAuthFailed, $"the peer at {url} failed its proof: {why} — give every member the same --peer-secret-file and --initial-cluster-token");
            }
            using (var w = new FrameWriter(64))
            {
                w.BeginFrame(MessageType.PeerProof, FrameFlags.None, 0);
                w.Raw(Proof(key, listener: false, hello, listenerNonce));
                w.EndFrame();
                await stream.WriteAsync(w.Written, deadline.Token).ConfigureAwait(false);
            }
            (h, payload) = await NextAsync(reader, deadline.Token).ConfigureAwait(false);
            if (h.Type != MessageType.PeerHello || payload.Length != 8) throw new ProtocolException(ErrorCode.Malformed, $"expected a peer hello answer from {url}, got {h.Type}");
            return (stream, System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(payload.Span));
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>The next frame of a handshake; an Error frame from the other side becomes a <see cref="ProtocolException"/> with its code.</summary>
    private static async Task<(FrameHeader Header, ReadOnlyMemory<byte> Payload)> NextAsync(FrameReader reader, CancellationToken cancellationToken)
    {
        var frame = await reader.ReadAsync(cancellationToken).ConfigureAwait(false) ?? throw new IOException("the peer closed the link during the handshake");
        if (frame.Header.Type == MessageType.Error)
        {
            var r = new PayloadReader(frame.Payload.Span);
            var (code, message) = Messages.ReadError(ref r);
            throw new ProtocolException(code, message);
        }
        return frame;
    }

    /// <summary>
    /// The listener's half, after TLS: reads the hello, answers the challenge, checks the proof. Returns the hello's
    /// fields; a dialer that cannot prove the secret throws <see cref="ProtocolException"/> (<see cref="ErrorCode.PeerAuthFailed"/>).
    /// </summary>
    public static async Task<(ulong Cluster, ulong From, ulong To, PeerCodec.LinkKind Kind)> AcceptAsync(Stream stream, FrameReader reader, byte[] key, CancellationToken cancellationToken)
    {
        var (h, payload) = await NextAsync(reader, cancellationToken).ConfigureAwait(false);
        if (h.Type != MessageType.PeerHello) throw new ProtocolException(ErrorCode.Malformed, "a peer link must start with a peer hello");
        var fields = PeerCodec.ReadHello(payload.Span);
        var hello = payload.ToArray();
        var nonce = RandomNumberGenerator.GetBytes(PeerCodec.NonceBytes);
        using (var w = new FrameWriter(128))
        {
            w.BeginFrame(MessageType.PeerChallenge, FrameFlags.Response, 0);
            w.Raw(nonce);
            w.Raw(Proof(key, listener: true, hello, nonce));
            w.EndFrame();
            await stream.WriteAsync(w.Written, cancellationToken).ConfigureAwait(false);
        }
        try
        {
            (h, payload) = await NextAsync(reader, cancellationToken).ConfigureAwait(false);
        }
        catch (ProtocolException e) when (e.Code == ErrorCode.PeerAuthFailed)
        {
            throw new ProtocolException(ErrorCode.PeerAuthFailed, $"member {fields.From:x16} refused this member's proof ({e.Message}): the two hold different peer secrets; give every member the same --peer-secret-file and --initial-cluster-token");
        }
        if (h.Type != MessageType.PeerProof) throw new ProtocolException(ErrorCode.PeerAuthFailed, $"member {fields.From:x16} sent {h.Type} instead of its proof of the peer secret");
        if (payload.Length != PeerCodec.NonceBytes || !CryptographicOperations.FixedTimeEquals(Proof(key, listener: false, hello, nonce), payload.Span))
        {
            throw new ProtocolException(ErrorCode.PeerAuthFailed, $"member {fields.From:x16} did not prove it holds this cluster's peer secret (a wrong --peer-secret-file or --initial-cluster-token, a replayed handshake, or not a member)");
        }
        return fields;
    }
}
