using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// A member's TLS material, loaded once at start from the PEM files its options name (docs/server.md, "TLS"): what the
/// client listener presents and which client certificates it accepts, and what peer links present and accept. A peer
/// must present a certificate signed by the peer CA, in both directions; its host name is not checked (members are
/// addressed by IP and the CA is the cluster's own), which is etcd's behaviour without --peer-cert-allowed-cn.
/// </summary>
internal sealed class MemberTls
{
    private readonly SslStreamCertificateContext? _clientIdentity;
    private readonly X509ChainPolicy? _clientPolicy;
    private readonly bool _clientCertAuth;
    private readonly SslStreamCertificateContext? _peerIdentity;
    private readonly X509ChainPolicy? _peerPolicy;

    private MemberTls(MemberOptions o)
    {
        if (o.ClientCertFile is not null)
        {
            _clientIdentity = TlsFiles.LoadIdentity(o.ClientCertFile, o.ClientKeyFile!, "--cert/--key");
            if (o.ClientCaFile is not null) _clientPolicy = TlsFiles.TrustOnly(TlsFiles.LoadCa(o.ClientCaFile, "--cacert"));
            _clientCertAuth = o.ClientCertAuth;
        }
        if (o.PeerCertFile is not null)
        {
            _peerIdentity = TlsFiles.LoadIdentity(o.PeerCertFile, o.PeerKeyFile!, "--peer-cert/--peer-key");
            _peerPolicy = TlsFiles.TrustOnly(TlsFiles.LoadCa(o.PeerCaFile!, "--peer-cacert"));
        }
    }

    /// <summary>Loads the files; a missing or unreadable one stops the start, naming the flag.</summary>
    public static MemberTls Load(MemberOptions options)
    {
        try
        {
            return new MemberTls(options);
        }
        catch (ArgumentException e)
        {
            throw new MemberStartException($"TLS: {e.Message}", e);
        }
    }

    public bool ClientTls => _clientIdentity is not null;

    public bool ClientCertAuth => _clientCertAuth;

    public bool PeerTls => _peerIdentity is not null;

    /// <summary>Options for one client handshake; <paramref name="verdict"/> learns why a client certificate was refused.</summary>
    public SslServerAuthenticationOptions ClientServerOptions(Verdict verdict) => new()
    {
        ServerCertificateContext = _clientIdentity,
        EnabledSslProtocols = TlsFiles.Protocols,
        ClientCertificateRequired = _clientCertAuth,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        CertificateChainPolicy = _clientCertAuth ? _clientPolicy : null,
        // Without client-certificate authentication no certificate is asked for, so there is nothing to check.
        RemoteCertificateValidationCallback = _clientCertAuth ? (_, _, chain, errors) => verdict.Check(errors, chain, ignoreName: true) : null,
    };

    /// <summary>Options for accepting one peer link.</summary>
    public SslServerAuthenticationOptions PeerServerOptions(Verdict verdict) => new()
    {
        ServerCertificateContext = _peerIdentity,
        EnabledSslProtocols = TlsFiles.Protocols,
        ClientCertificateRequired = true,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        CertificateChainPolicy = _peerPolicy,
        RemoteCertificateValidationCallback = (_, _, chain, errors) => verdict.Check(errors, chain, ignoreName: true),
    };

    /// <summary>Options for dialing one peer link.</summary>
    public SslClientAuthenticationOptions PeerClientOptions(string host, Verdict verdict) => new()
    {
        TargetHost = host,
        ClientCertificateContext = _peerIdentity,
        EnabledSslProtocols = TlsFiles.Protocols,
        CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        CertificateChainPolicy = _peerPolicy,
        RemoteCertificateValidationCallback = (_, _, chain, errors) => verdict.Check(errors, chain, ignoreName: true),
    };

    /// <summary>The outcome of checking the other side's certificate, kept for the log line when a handshake fails.</summary>
    internal sealed class Verdict
    {
        public string? Refusal { get; private set; }

        public bool Check(SslPolicyErrors errors, X509Chain? chain, bool ignoreName)
        {
            if (ignoreName) errors &= ~SslPolicyErrors.RemoteCertificateNameMismatch;
            if (errors == SslPolicyErrors.None) return true;
            Refusal = TlsFiles.Describe(errors, chain);
            return false;
        }
    }
}
