using System.Globalization;
using System.Runtime.InteropServices;

namespace Cairn.Storage;

/// <summary>
/// Who holds the lock on a database file, for the message of a <see cref="DatabaseLockedException"/>: on Linux the
/// flock holder's pid is in /proc/locks, on the line naming the file's device and inode
/// (<c>1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF</c>). Best effort: null whenever it cannot be told.
/// </summary>
internal static partial class LockHolder
{
    public static int? Find(string path)
    {
        if (!OperatingSystem.IsLinux()) return null;
        try
        {
            if (!TryStat(path, out var dev, out var inode)) return null;
            // glibc's gnu_dev_major and gnu_dev_minor; /proc/locks prints them in hex.
            var major = ((dev >> 8) & 0xfff) | ((dev >> 32) & ~0xfffUL);
            var minor = (dev & 0xff) | ((dev >> 12) & ~0xffUL);
            int? exact = null, sameInode = null;
            var inodeMatches = 0;
            foreach (var line in File.ReadLines("/proc/locks"))
            {
                // A waiter's line reads "1: -> FLOCK ...": it holds nothing, and splits into other columns.
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 6 || f[1] != "FLOCK") continue;
                var id = f[5].Split(':');
                if (id.Length != 3 || !ulong.TryParse(id[2], NumberStyles.None, CultureInfo.InvariantCulture, out var ino) || ino != inode) continue;
                if (!int.TryParse(f[4], NumberStyles.None, CultureInfo.InvariantCulture, out var pid) || pid <= 0) continue;
                inodeMatches++;
                sameInode = pid;
                if (ulong.TryParse(id[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var maj) && maj == major &&
                    ulong.TryParse(id[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var min) && min == minor)
                {
                    exact = pid;
                }
            }
            // Some file systems (overlayfs) report another device to stat than the lock table shows: an inode that
            // only one lock names is still this file's.
            return exact ?? (inodeMatches == 1 ? sameInode : null);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or EntryPointNotFoundException or DllNotFoundException)
        {
            return null;
        }
    }

    /// <summary>The file's device and inode, by stat(2); false where the layout of struct stat is not known here.</summary>
    private static unsafe bool TryStat(string path, out ulong device, out ulong inode)
    {
        device = inode = 0;
        // st_dev then st_ino, both 64-bit, open struct stat on x86-64 and on arm64 (the generic layout) alike.
        if (RuntimeInformation.ProcessArchitecture is not (Architecture.X64 or Architecture.Arm64)) return false;
        var buf = stackalloc ulong[64]; // struct stat is 144 bytes on x86-64, 128 on arm64
        if (Stat(path, buf) != 0) return false;
        device = buf[0];
        inode = buf[1];
        return true;
    }

    [LibraryImport("libc", EntryPoint = "stat", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static unsafe partial int Stat(string path, ulong* buf);
}
