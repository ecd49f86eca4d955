using System.Reflection;
using System.Runtime.InteropServices;
using LightningDB;

namespace Cairn.Bench;

/// <summary>
/// Points LightningDB at the system's LMDB. The liblmdb.so inside the LightningDB package is built for glibc 2.38 and
/// does not load on Debian 12 (glibc 2.36), so its <c>[DllImport("lmdb")]</c> is resolved to Debian's liblmdb.so.0
/// (LMDB 0.9.24, installed by scripts/setup-bench.sh). The benchmarks call only functions that 0.9.24 has.
/// BenchmarkDotNet runs every benchmark in a child process, so each fixture calls <see cref="EnsureRegistered"/>.
/// </summary>
internal static class StorageLmdbNative
{
    /// <summary>The library name LightningDB 0.23.1 imports (its DllImport attributes say "lmdb").</summary>
    private const string ImportedName = "lmdb";

    private const string SystemLibrary = "liblmdb.so.0";

    private static readonly Lock s_gate = new();
    private static bool s_registered;
    private static IntPtr s_handle;

    public static void EnsureRegistered()
    {
        lock (s_gate)
        {
            if (s_registered) return;
            if (OperatingSystem.IsLinux())
            {
                if (!NativeLibrary.TryLoad(SystemLibrary, out s_handle))
                {
                    throw new InvalidOperationException($"{SystemLibrary} is not installed; run scripts/setup-bench.sh (installs Debian's liblmdb0).");
                }
                NativeLibrary.SetDllImportResolver(typeof(LightningEnvironment).Assembly, Resolve);
            }
            s_registered = true;
        }
    }

    private static IntPtr Resolve(string libraryName, Assembly assembly, DllImportSearchPath? searchPath) =>
        libraryName == ImportedName ? s_handle : IntPtr.Zero;
}
