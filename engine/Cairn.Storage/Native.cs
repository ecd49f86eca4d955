using System.Runtime.InteropServices;

namespace Cairn.Storage;

/// <summary>The few libc calls .NET does not expose: directory sync.</summary>
internal static partial class Native
{
    public const int ORdOnly = 0;
    public const int ODirectory = 0x10000; // Linux x86-64 and arm64

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    public static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    public static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);
}
