using System.Security.Cryptography;
using System.Text;

namespace Cairn.Server;

/// <summary>
/// The file holding a cluster's peer secret (`--peer-secret-file`, default ~/.cairn/peer.secret): any bytes, at least 16
/// after trimming white space — `openssl rand -hex 32 > peer.secret` makes a good one. <see cref="LoadOrCreate"/> writes
/// a random one (mode 0600) when there is none, so members started by one user on one machine agree with no flags;
/// members on other machines need a copy of the same file (docs/server.md, "Peer trust").
/// </summary>
public static class PeerSecretFile
{
    /// <summary>The default path: ~/.cairn/peer.secret, beside the default master key.</summary>
    public static string DefaultPath => Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cairn", "peer.secret");

    /// <summary>Reads the secret at <paramref name="path"/>, which must exist.</summary>
    public static byte[] Load(string path)
    {
        if (!File.Exists(path)) throw new ArgumentException($"--peer-secret-file: no file at {path}; copy the cluster's secret there, or make one with `openssl rand -hex 32 > {path}; chmod 600 {path}` and copy it to every member.");
        var secret = Encoding.UTF8.GetBytes(File.ReadAllText(path).Trim());
        if (secret.Length < 16) throw new ArgumentException($"--peer-secret-file {path} holds {secret.Length} bytes; a peer secret needs at least 16 (make one with `openssl rand -hex 32`).");
        return secret;
    }

    /// <summary>Reads the secret at <paramref name="path"/>, first creating it (64 random hex digits, mode 0600) when absent.</summary>
    public static byte[] LoadOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            var full = Path.GetFullPath(path);
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            // Written aside, then moved in without replacing: members starting together all end up with the first one's file.
            var tmp = $"{full}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var fs = new FileStream(tmp, options))
            {
                fs.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)) + "\n"));
                fs.Flush(flushToDisk: true);
            }
            try
            {
                File.Move(tmp, full, overwrite: false);
            }
            catch (IOException) when (File.Exists(full))
            {
                File.Delete(tmp);
            }
        }
        return Load(path);
    }
}
