using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cairn.Protocol;

/// <summary>
/// TLS material from PEM files, shared by members and clients (docs/server.md, "TLS"): a certificate with its key
/// (and any intermediates after it in the same file), and a CA bundle that alone is trusted to sign the other side's
/// certificate. TLS 1.3 and 1.2 only, with the operating system's cipher suites.
/// </summary>
public static class TlsFiles
{
    /// <summary>The protocol versions Cairn speaks.</summary>
    public const SslProtocols Protocols = SslProtocols.Tls13 | SslProtocols.Tls12;

    /// <summary>
    /// The certificate in <paramref name="certFile"/> with the private key in <paramref name="keyFile"/> (PEM), and the
    /// further certificates of <paramref name="certFile"/> (intermediates) as a context ready for a handshake.
    /// Throws <see cref="ArgumentException"/> naming <paramref name="flag"/> when a file is missing or unreadable.
    /// </summary>
    public static SslStreamCertificateContext LoadIdentity(string certFile, string keyFile, string flag)
    {
        if (!File.Exists(certFile)) throw new ArgumentException($"{flag}: no certificate file at {certFile}.");
        if (!File.Exists(keyFile)) throw new ArgumentException($"{flag}: no key file at {keyFile}.");
        try
        {
            using var ephemeral = X509Certificate2.CreateFromPemFile(certFile, keyFile);
            // A key imported from PEM is ephemeral; some platforms only hand a persisted one to TLS: round-trip through PKCS#12.
            var leaf = X509CertificateLoader.LoadPkcs12(ephemeral.Export(X509ContentType.Pkcs12), null);
            var all = new X509Certificate2Collection();
            all.ImportFromPemFile(certFile);
            var extra = new X509Certificate2Collection();
            foreach (var c in all)
            {
                if (c.Thumbprint != leaf.Thumbprint) extra.Add(c);
            }
            return SslStreamCertificateContext.Create(leaf, extra, offline: true);
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"{flag}: cannot load the certificate {certFile} with the key {keyFile}: {e.Message} (both must be PEM; the key unencrypted, matching the certificate).", e);
        }
    }

    /// <summary>Every certificate of a PEM bundle; throws <see cref="ArgumentException"/> naming <paramref name="flag"/> when there is none.</summary>
    public static X509Certificate2Collection LoadCa(string caFile, string flag)
    {
        if (!File.Exists(caFile)) throw new ArgumentException($"{flag}: no CA file at {caFile}.");
        var ca = new X509Certificate2Collection();
        try
        {
            ca.ImportFromPemFile(caFile);
        }
        catch (CryptographicException e)
        {
            throw new ArgumentException($"{flag}: cannot read the CA certificates in {caFile}: {e.Message}", e);
        }
        if (ca.Count == 0) throw new ArgumentException($"{flag}: {caFile} holds no PEM certificate.");
        return ca;
    }

    /// <summary>A chain policy that trusts <paramref name="ca"/> and nothing else (no system roots, no revocation fetches).</summary>
    public static X509ChainPolicy TrustOnly(X509Certificate2Collection ca)
    {
        var policy = new X509ChainPolicy
        {
            TrustMode = X509ChainTrustMode.CustomRootTrust,
            RevocationMode = X509RevocationMode.NoCheck,
        };
        policy.CustomTrustStore.AddRange(ca);
        return policy;
    }

    /// <summary>The common name of a certificate's subject, or null.</summary>
    public static string? CommonName(X509Certificate? certificate)
    {
        if (certificate is null) return null;
        var c = certificate as X509Certificate2 ?? new X509Certificate2(certificate);
        var cn = c.GetNameInfo(X509NameType.SimpleName, forIssuer: false);
        return string.IsNullOrEmpty(cn) ? null : cn;
    }

    /// <summary>A few words on why a certificate was not accepted, for logs.</summary>
    public static string Describe(SslPolicyErrors errors, X509Chain? chain)
    {
        if (errors == SslPolicyErrors.None) return "accepted";
        var parts = new List<string>();
        if ((errors & SslPolicyErrors.RemoteCertificateNotAvailable) != 0) parts.Add("no certificate was presented");
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) parts.Add("the certificate does not name this host");
        if ((errors & SslPolicyErrors.RemoteCertificateChainErrors) != 0)
        {
            var status = chain?.ChainStatus.Select(s => s.Status.ToString()).Distinct() ?? [];
            parts.Add($"the certificate is not signed by a trusted CA ({string.Join(", ", status)})");
        }
        return string.Join("; ", parts);
    }
}
