using System.Runtime.InteropServices;

namespace Cairn.Storage;

/// <summary>The few libc calls .NET does not expose: directory sync.</summary>
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

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
