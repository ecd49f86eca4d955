using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>
/// A read-only shared mapping of the database file over a reserved address range larger than the file. The file
/// grows beneath it; pages past the end of the file are never touched because no committed state refers to them.
/// Readers and the writer hold a reference; the range is unmapped when the last one lets go, so replacing a mapping
/// with a larger one never waits for readers.
/// </summary>
internal sealed unsafe partial class Mapping
{
    private readonly byte* _base;
    private int _refs = 1; // the Database's own reference, dropped when it is replaced or disposed

    /// <summary>One bit per page: set once a page's checksum has been verified since it was last written.</summary>
    private readonly ulong[] _verified;

    private Mapping(byte* address, long capacity, int pageSize)
    {
        _base = address;
        Capacity = capacity;
        _verified = new ulong[(capacity / pageSize + 63) / 64];
    }

    public long Capacity { get; }

    public byte* Base => _base;

    public static Mapping Create(SafeFileHandle file, long capacity, int pageSize)
    {
        if (!OperatingSystem.IsLinux() && !OperatingSystem.IsMacOS())
        {
            throw new PlatformNotSupportedException("Cairn.Storage maps files with mmap; it runs on Linux and macOS.");
        }
        var fd = (int)file.DangerousGetHandle();
        var p = MMap(IntPtr.Zero, (nuint)capacity, ProtRead, MapShared, fd, 0);
        if (p == -1)
        {
            throw new IOException($"mmap of {capacity} bytes failed (errno {Marshal.GetLastPInvokeError()}); lower StorageOptions.MapReserveBytes.");
        }
        // Random access is the common case for B+tree lookups; do not let the kernel read ahead.
        _ = MAdvise(p, (nuint)capacity, MadvRandom);
        return new Mapping((byte*)p, capacity, pageSize);
    }

    public bool TryAcquire()
    {
        while (true)
        {
            var r = Volatile.Read(ref _refs);
            if (r == 0) return false;
            if (Interlocked.CompareExchange(ref _refs, r + 1, r) == r) return true;
        }
    }

    public void Release()
    {
        if (Interlocked.Decrement(ref _refs) == 0)
        {
            _ = MUnmap((IntPtr)_base, (nuint)Capacity);
        }
    }

    public bool IsVerified(ulong pgno) => (Volatile.Read(ref _verified[pgno >> 6]) & (1UL << (int)(pgno & 63))) != 0;

    public void MarkVerified(ulong pgno)
    {
        ref var word = ref _verified[pgno >> 6];
        var bit = 1UL << (int)(pgno & 63);
        ulong old;
        do { old = Volatile.Read(ref word); }
        while ((old & bit) == 0 && Interlocked.CompareExchange(ref word, old | bit, old) != old);
    }

    /// <summary>Called by the writer before it rewrites a page: the page must be verified again when next read.</summary>
    public void ClearVerified(ulong pgno)
    {
        ref var word = ref _verified[pgno >> 6];
        var bit = 1UL << (int)(pgno & 63);
        ulong old;
        do { old = Volatile.Read(ref word); }
        while ((old & bit) != 0 && Interlocked.CompareExchange(ref word, old & ~bit, old) != old);
    }

    private const int ProtRead = 1;
    private const int MapShared = 1;
    private const int MadvRandom = 1;

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial IntPtr MMap(IntPtr addr, nuint length, int prot, int flags, int fd, long offset);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int MUnmap(IntPtr addr, nuint length);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int MAdvise(IntPtr addr, nuint length, int advice);
}
