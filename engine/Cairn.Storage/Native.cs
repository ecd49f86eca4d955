using System.Runtime.InteropServices;

namespace Cairn.Storage;

/// <summary>The few libc calls .NET does not expose: directory sync, a rename that never replaces.</summary>
internal static partial class Native
{
    /// <summary>Mode of every file Cairn creates: the owner's alone (0600); data files hold keys' work and users' data.</summary>
    public const UnixFileMode PrivateFileMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    /// <summary>Options that create a file with <see cref="PrivateFileMode"/> (on Unix; elsewhere the default ACL applies).</summary>
    public static FileStreamOptions CreatePrivate(FileMode mode, FileAccess access, FileShare share)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = PrivateFileMode;
        return options;
    }

    public const int ORdOnly = 0;
    public const int ODirectory = 0x10000; // Linux x86-64 and arm64

    /// <summary>
    /// Gives the file <paramref name="source"/> the name <paramref name="destination"/> unless that name exists; false
    /// when it does. Atomic: link(2) fails when the name exists, and the old name is removed after. (File.Move without
    /// overwrite checks whether the name exists and then renames, so two racing creators can both "win".) Where the
    /// file system has no hard links, falls back to File.Move.
    /// </summary>
    public static bool TryMoveNoReplace(string source, string destination)
    {
        if (!OperatingSystem.IsWindows())
        {
            if (Link(source, destination) == 0)
            {
                File.Delete(source);
                return true;
            }
            if (Marshal.GetLastPInvokeError() == EExist) return false;
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

    private const int EExist = 17; // Linux and macOS

    [LibraryImport("libc", EntryPoint = "link", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Link(string oldPath, string newPath);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
