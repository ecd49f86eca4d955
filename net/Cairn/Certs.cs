using System.CommandLine;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace Cairn.Cli;

/// <summary>
/// `cairn certs`: a test CA and certificates for trying TLS (docs/server.md, "TLS"), made with
/// <see cref="CertificateRequest"/> — ECDSA P-256 keys, PEM files. For production use your own CA.
/// </summary>
internal static class Certs
{
    /// <summary>`cairn certs`.</summary>
    public static Command Command(CliIo io)
    {
        var command = new Command("certs", """
            Write a test CA and certificates as PEM into DIR: ca.pem and ca.key; member.pem and member.key for the client
            port and peer links (valid for HOSTs); NAME.pem and NAME.key per client, whose common name is the user a
            member with --client-cert-auth sees. Existing files are replaced. For production use your own CA.
            """);
        command.Options.Add(new Option<string?>("--dir") { Description = "Where to write them (default ./certs).", HelpName = "DIR" });
        command.Options.Add(new Option<string?>("--hosts") { Description = "Names and addresses of the member certificate (default 127.0.0.1,::1,localhost).", HelpName = "HOST,..." });
        command.Options.Add(new Option<string?>("--clients") { Description = "Client certificates to make (default root).", HelpName = "NAME,..." });
        command.Options.Add(new Option<string?>("--days") { Description = "Validity in days (default 365).", HelpName = "N" });
        command.SetAction(p => Run(new Flags(p), io.Out));
        return command;
    }


    private static int Run(Flags flags, TextWriter stdout)
    {
        var dir = flags.Get("--dir") ?? "certs";
        var hosts = (flags.Get("--hosts") ?? "127.0.0.1,::1,localhost").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var clients = (flags.Get("--clients") ?? "root").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var days = flags.Get("--days") is { } d ? (int)Flags.Long("--days", d) : 365;
        if (days < 1) throw new UsageException("--days must be at least 1");
        Directory.CreateDirectory(dir);
        var validity = TimeSpan.FromDays(days);
        using var ca = MakeCa("Cairn test CA", validity);
        Write(dir, "ca", ca);
        using (var member = MakeLeaf(ca, "cairn member", hosts, server: true, client: true, validity)) Write(dir, "member", member);
        foreach (var name in clients)
        {
            using var c = MakeLeaf(ca, name, [], server: false, client: true, validity);
            Write(dir, name, c);
        }
        stdout.WriteLine($"cairn certs: wrote ca, member ({string.Join(", ", hosts)}) and {string.Join(", ", clients)} (.pem and .key) to {Path.GetFullPath(dir)}; try");
        stdout.WriteLine($"  cairn serve --cert {dir}/member.pem --key {dir}/member.key --cacert {dir}/ca.pem --client-cert-auth \\");
        stdout.WriteLine($"              --peer-cert {dir}/member.pem --peer-key {dir}/member.key --peer-cacert {dir}/ca.pem");
        stdout.WriteLine($"  cairn --cacert {dir}/ca.pem --cert {dir}/{clients.FirstOrDefault() ?? "root"}.pem --key {dir}/{clients.FirstOrDefault() ?? "root"}.key status");
        return 0;
    }

    /// <summary>A self-signed CA certificate with its key.</summary>
    public static X509Certificate2 MakeCa(string name, TimeSpan validity)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        req.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(req.PublicKey, false));
        var now = DateTimeOffset.UtcNow;
        return req.CreateSelfSigned(now.AddMinutes(-5), now + validity);
    }

    /// <summary>A certificate named <paramref name="commonName"/> signed by <paramref name="ca"/>, with its key; <paramref name="hosts"/> become DNS or IP SANs.</summary>
    public static X509Certificate2 MakeLeaf(X509Certificate2 ca, string commonName, IEnumerable<string> hosts, bool server, bool client, TimeSpan validity)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var req = new CertificateRequest($"CN={commonName}", key, HashAlgorithmName.SHA256);
        req.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        req.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyAgreement, true));
        var usages = new OidCollection();
        if (server) usages.Add(new Oid("1.3.6.1.5.5.7.3.1"));
        if (client) usages.Add(new Oid("1.3.6.1.5.5.7.3.2"));
        req.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(usages, false));
        var san = new SubjectAlternativeNameBuilder();
        var any = false;
        foreach (var h in hosts)
        {
            if (IPAddress.TryParse(h, out var ip)) san.AddIpAddress(ip);
            else san.AddDnsName(h);
            any = true;
        }
        if (any) req.CertificateExtensions.Add(san.Build());
        var now = DateTimeOffset.UtcNow;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        var notAfter = now + validity < ca.NotAfter ? now + validity : new DateTimeOffset(ca.NotAfter.ToUniversalTime());
        using var signed = req.Create(ca, now.AddMinutes(-5), notAfter, serial);
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>Writes NAME.pem (the certificate) and NAME.key (its private key, PKCS#8, mode 0600).</summary>
    public static void Write(string dir, string name, X509Certificate2 cert)
    {
        File.WriteAllText(Path.Combine(dir, name + ".pem"), cert.ExportCertificatePem() + "\n");
        var keyPath = Path.Combine(dir, name + ".key");
        var pem = cert.GetECDsaPrivateKey()?.ExportPkcs8PrivateKeyPem() ?? cert.GetRSAPrivateKey()?.ExportPkcs8PrivateKeyPem()
            ?? throw new InvalidOperationException($"the certificate {name} has no private key to write");
        var options = new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using var w = new StreamWriter(new FileStream(keyPath, options));
        w.Write(pem + "\n");
    }
}
