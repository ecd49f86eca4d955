using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>
/// TLS to the members (docs/client.md, "TLS"): which CA signs their certificates and, for members that require client
/// certificates (`cairn serve --client-cert-auth`), this client's certificate — whose common name the member takes as
/// the user. Files are PEM, as `cairn certs` writes them; in-memory certificates may be given instead.
/// </summary>
public sealed record CairnTlsOptions
{
    /// <summary>CA bundle (PEM) that alone is trusted to sign the members' certificates (`--cacert`); null with no <see cref="CaCertificates"/>: the system's trust store.</summary>
    public string? CaFile { get; init; }

    /// <summary>CA certificates trusted instead of <see cref="CaFile"/>.</summary>
    public X509Certificate2Collection? CaCertificates { get; init; }

    /// <summary>This client's certificate (PEM) for mutual TLS (`--cert`); with <see cref="KeyFile"/>.</summary>
    public string? CertFile { get; init; }

    /// <summary>The unencrypted PEM private key of <see cref="CertFile"/> (`--key`).</summary>
    public string? KeyFile { get; init; }

    /// <summary>A client certificate with its private key, instead of <see cref="CertFile"/> and <see cref="KeyFile"/>.</summary>
    public X509Certificate2? ClientCertificate { get; init; }

    /// <summary>The name the members' certificates must carry; null: each endpoint's host (an IP address must then be in the certificate's IP SANs).</summary>
    public string? ServerName { get; init; }

    /// <summary>Refuses settings that cannot work.</summary>
    public void Validate()
    {
        if ((CertFile is null) != (KeyFile is null)) throw new ArgumentException("Tls.CertFile and Tls.KeyFile go together (--cert and --key).", nameof(CertFile));
        if (CertFile is not null && ClientCertificate is not null) throw new ArgumentException("give Tls.CertFile/KeyFile or Tls.ClientCertificate, not both.", nameof(ClientCertificate));
        if (CaFile is not null && CaCertificates is not null) throw new ArgumentException("give Tls.CaFile or Tls.CaCertificates, not both.", nameof(CaFile));
        if (ClientCertificate is { HasPrivateKey: false }) throw new ArgumentException("Tls.ClientCertificate has no private key.", nameof(ClientCertificate));
    }
}

/// <summary>The loaded form of <see cref="CairnTlsOptions"/>: files read once, options made per connection.</summary>
internal sealed class ClientTlsContext
{
    private readonly X509ChainPolicy? _policy;
    private readonly SslStreamCertificateContext? _identity;
    private readonly string? _serverName;

    public ClientTlsContext(CairnTlsOptions options)
    {
        var ca = options.CaCertificates ?? (options.CaFile is { } f ? TlsFiles.LoadCa(f, "Tls.CaFile (--cacert)") : null);
        if (ca is not null) _policy = TlsFiles.TrustOnly(ca);
        if (options.CertFile is not null) _identity = TlsFiles.LoadIdentity(options.CertFile, options.KeyFile!, "Tls.CertFile/KeyFile (--cert/--key)");
        else if (options.ClientCertificate is { } c) _identity = SslStreamCertificateContext.Create(c, null, offline: true);
        _serverName = options.ServerName;
    }

    /// <summary>Options for one connection to <paramref name="host"/>; <paramref name="refusal"/> learns why the member's certificate was refused.</summary>
    public SslClientAuthenticationOptions For(string host, Action<string> refusal) => new()
    {
        TargetHost = _serverName ?? host,
        EnabledSslProtocols = TlsFiles.Protocols,
        ClientCertificateContext = _identity,
        CertificateChainPolicy = _policy,
        CertificateRevocationCheckMode = _policy is null ? X509RevocationMode.Online : X509RevocationMode.NoCheck,
        RemoteCertificateValidationCallback = (_, _, chain, errors) =>
        {
            if (errors == SslPolicyErrors.None) return true;
            refusal(TlsFiles.Describe(errors, chain));
            return false;
        },
    };
}
