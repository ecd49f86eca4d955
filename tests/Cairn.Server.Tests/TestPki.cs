using System.Security.Cryptography.X509Certificates;
using Cairn.Cli;

namespace Cairn.Server.Tests;

/// <summary>
/// A test CA and certificates made in the test (with <see cref="System.Security.Cryptography.X509Certificates.CertificateRequest"/>,
/// through `cairn certs`' code) and written as PEM files in a directory of their own; plus a second, foreign CA.
/// </summary>
internal sealed class TestPki : IDisposable
{
    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2 _foreign;

    public TestPki()
    {
        Directory.CreateDirectory(Dir);
        _ca = Certs.MakeCa("test CA", TimeSpan.FromDays(1));
        _foreign = Certs.MakeCa("foreign CA", TimeSpan.FromDays(1));
        Certs.Write(Dir, "ca", _ca);
        Certs.Write(Dir, "foreign-ca", _foreign);
        using (var member = Certs.MakeLeaf(_ca, "member", ["127.0.0.1", "localhost"], server: true, client: true, TimeSpan.FromDays(1))) Certs.Write(Dir, "member", member);
        using (var impostor = Certs.MakeLeaf(_foreign, "member", ["127.0.0.1", "localhost"], server: true, client: true, TimeSpan.FromDays(1))) Certs.Write(Dir, "impostor", impostor);
    }

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "cairn-pki-tests", Guid.NewGuid().ToString("N"));

    public string CaFile => Path.Combine(Dir, "ca.pem");

    public string ForeignCaFile => Path.Combine(Dir, "foreign-ca.pem");

    /// <summary>The member certificate (server and client use, 127.0.0.1) signed by the CA.</summary>
    public (string Cert, string Key) Member => (Path.Combine(Dir, "member.pem"), Path.Combine(Dir, "member.key"));

    /// <summary>The same kind of certificate, signed by the foreign CA.</summary>
    public (string Cert, string Key) Impostor => (Path.Combine(Dir, "impostor.pem"), Path.Combine(Dir, "impostor.key"));

    /// <summary>A client certificate named <paramref name="user"/>, signed by the CA (or the foreign CA).</summary>
    public (string Cert, string Key) Client(string user, bool foreign = false)
    {
        var name = (foreign ? "foreign-" : "") + user;
        using var c = Certs.MakeLeaf(foreign ? _foreign : _ca, user, [], server: false, client: true, TimeSpan.FromDays(1));
        Certs.Write(Dir, name, c);
        return (Path.Combine(Dir, name + ".pem"), Path.Combine(Dir, name + ".key"));
    }

    public void Dispose()
    {
        _ca.Dispose();
        _foreign.Dispose();
        try
        {
            Directory.Delete(Dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
