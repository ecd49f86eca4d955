using System.Runtime.InteropServices;
using System.Security.Cryptography;

namespace Cairn.Crypto;

/// <summary>
/// The master key in a file of its own (64 hex digits, or base64 of 32 bytes). <see cref="OpenOrCreate"/> makes a new
/// random key file with mode 0600 when there is none. Like ssh with a private key, both refuse a key file that group or
/// others may read or write, unless the caller allows it explicitly. Keep it away from the data: a key next to the
/// data it protects protects nothing.
/// </summary>
public sealed partial class KeyFileProvider : IKeyProvider
{
    private const UnixFileMode GroupOrOthers =
        UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute |
        UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;

    private KeyFileProvider(string path) => Path = System.IO.Path.GetFullPath(path);

    /// <summary>The key file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public string KeyId => $"key file {Path}";

    /// <summary>Uses the key file at <paramref name="path"/>, which must exist and hold a key.</summary>
    /// <param name="path">The key file.</param>
    /// <param name="allowInsecurePermissions">Accept a key file that group or others may read or write (refused by default).</param>
    /// <exception cref="FileNotFoundException">There is no file at <paramref name="path"/>; the message says how to make one.</exception>
    /// <exception cref="KeyFileException">The file is readable or writable by group or others, or does not hold a key.</exception>
    public static KeyFileProvider Open(string path, bool allowInsecurePermissions = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw Missing(System.IO.Path.GetFullPath(path));
        var provider = new KeyFileProvider(path);
        provider.Check(allowInsecurePermissions);
        return provider;
    }

    /// <summary>
    /// Uses the key file at <paramref name="path"/>, creating it with a new random key (mode 0600) when absent. Creation
    /// is atomic: the key is written to a temporary file in the same directory, synced, and linked into place only if
    /// no file is there yet — when another process or thread created one meanwhile, theirs is used — then the directory
    /// is synced. A missing directory is created with mode 0700.
    /// </summary>
    /// <param name="path">The key file.</param>
    /// <param name="allowInsecurePermissions">Accept an existing key file that group or others may read or write (refused by default).</param>
    /// <exception cref="KeyFileException">The existing file is readable or writable by group or others, or does not hold a key.</exception>
    public static KeyFileProvider OpenOrCreate(string path, bool allowInsecurePermissions = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full)) Create(full);
        var provider = new KeyFileProvider(full);
        provider.Check(allowInsecurePermissions);
        return provider;
    }

    private static void Create(string path)
    {
        var dir = System.IO.Path.GetDirectoryName(path)!;
        if (!Directory.Exists(dir))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(dir);
            else Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp";
        Span<byte> key = stackalloc byte[32];
        var text = new byte[65]; // 64 hex digits and a newline
        try
        {
            RandomNumberGenerator.Fill(key);
            for (var i = 0; i < key.Length; i++)
            {
                text[2 * i] = (byte)"0123456789abcdef"[key[i] >> 4];
                text[2 * i + 1] = (byte)"0123456789abcdef"[key[i] & 15];
            }
            text[64] = (byte)'\n';
            var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
            if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
            using (var fs = new FileStream(temp, options))
            {
                fs.Write(text);
                fs.Flush(flushToDisk: true);
            }
            // When someone else created it meanwhile, theirs stays and is used.
            if (TryMoveNoReplace(temp, path)) SyncDirectory(dir);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            CryptographicOperations.ZeroMemory(text);
            File.Delete(temp); // gone already when the move succeeded
        }
    }

    /// <summary>Refuses a key file others may read or write (unless allowed), and one that does not hold a key.</summary>
    private void Check(bool allowInsecurePermissions)
    {
        if (!allowInsecurePermissions && !OperatingSystem.IsWindows())
        {
            var mode = File.GetUnixFileMode(Path);
            if ((mode & GroupOrOthers) != 0)
            {
                throw new KeyFileException(Path, KeyFileProblem.InsecurePermissions,
                    $"key file {Path} has mode {KeyFileException.Octal(mode)}: group or others may read or write it, and so the master key. " +
                    $"Make it private with 'chmod 600 {Path}'.", mode);
            }
        }
        Span<byte> key = stackalloc byte[32];
        try
        {
            GetKey(key);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>True when the key file lies inside <paramref name="directory"/> (worth a warning: back-ups of the data then carry the key).</summary>
    public bool IsInside(string directory)
    {
        var dir = System.IO.Path.GetFullPath(directory).TrimEnd(System.IO.Path.DirectorySeparatorChar) + System.IO.Path.DirectorySeparatorChar;
        return Path.StartsWith(dir, StringComparison.Ordinal);
    }

    /// <inheritdoc/>
    /// <exception cref="FileNotFoundException">The key file is gone.</exception>
    /// <exception cref="KeyFileException">The file does not hold a key.</exception>
    public void GetKey(Span<byte> destination)
    {
        byte[] raw;
        try
        {
            raw = File.ReadAllBytes(Path);
        }
        catch (FileNotFoundException)
        {
            throw Missing(Path);
        }
        try
        {
            if (!KeyText.TryParse(raw, destination))
            {
                throw new KeyFileException(Path, KeyFileProblem.Malformed,
                    $"key file {Path} does not hold a master key: it must be 32 bytes written as 64 hex digits (or base64). " +
                    $"Make one with 'openssl rand -hex 32 > {Path}; chmod 600 {Path}'.");
            }
        }
        finally
        {
            CryptographicOperations.ZeroMemory(raw);
        }
    }

    private static FileNotFoundException Missing(string path) =>
        new($"No key file at {path}; create one with 'openssl rand -hex 32 > {path}; chmod 600 {path}'.", path);

    /// <summary>
    /// Gives <paramref name="source"/> the name <paramref name="destination"/> unless that name exists (false then).
    /// Atomic: link(2) fails when the name exists. File.Move without overwrite is not: it checks, then renames, so two
    /// racing creators would both "win" and read different keys. Falls back to File.Move without hard links.
    /// </summary>
    private static bool TryMoveNoReplace(string source, string destination)
    {
        if (!OperatingSystem.IsWindows())
        {
            if (Link(source, destination) == 0)
            {
                File.Delete(source);
                return true;
            }
            if (Marshal.GetLastPInvokeError() == 17 /* EEXIST */) return false;
        }
        try
        {
            File.Move(source, destination, overwrite: false);
            return true;
        }
        catch (IOException) when (File.Exists(destination))
        {
            return false;
        }
    }

    private static void SyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux()) return;
        var fd = Open(dir, 0x10000 /* O_RDONLY | O_DIRECTORY */);
        if (fd < 0) return; // best effort: some file systems refuse to open directories
        _ = FSync(fd);
        _ = Close(fd);
    }

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);
}

/// <summary>What is wrong with a key file.</summary>
public enum KeyFileProblem
{
    /// <summary>Group or others may read or write it (see <see cref="KeyFileException.Mode"/>).</summary>
    InsecurePermissions,

    /// <summary>It does not hold a key: not 32 bytes as 64 hex digits or base64.</summary>
    Malformed,
}

/// <summary>
/// A key file cannot be used: others may read it, or it does not hold a key. An <see cref="IOException"/>, as a file
/// that cannot be read would be; the message names the file and the fix, and the properties let a caller write its
/// own (naming its own flags).
/// </summary>
public sealed class KeyFileException : IOException
{
    /// <summary>Creates the exception.</summary>
    public KeyFileException(string path, KeyFileProblem problem, string message, UnixFileMode? mode = null) : base(message)
    {
        Path = path;
        Problem = problem;
        Mode = mode;
    }

    /// <summary>The key file, as a full path.</summary>
    public string Path { get; }

    /// <summary>What is wrong with it.</summary>
    public KeyFileProblem Problem { get; }

    /// <summary>The file's mode, for <see cref="KeyFileProblem.InsecurePermissions"/>; else null.</summary>
    public UnixFileMode? Mode { get; }

    /// <summary>A mode as chmod writes it: 0644.</summary>
    public static string Octal(UnixFileMode mode) => "0" + Convert.ToString((int)mode & 0xFFF, 8).PadLeft(3, '0');
}
