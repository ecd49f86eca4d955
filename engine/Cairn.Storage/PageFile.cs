using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage;

/// <summary>
/// The file beneath the pager: positioned reads and writes, growth and sync. The writer never writes through
/// the mapping; everything that changes the file passes through here, so tests can inject faults.
/// </summary>
internal interface IPageFile : IDisposable
{
    /// <summary>The OS handle, mapped read-only by <see cref="Mapping"/>.</summary>
    SafeFileHandle Handle { get; }

    long Length { get; }

    void Read(Span<byte> destination, long offset);

    void Write(ReadOnlySpan<byte> source, long offset);

    /// <summary>Writes consecutive buffers starting at <paramref name="offset"/> in one call (pwritev).</summary>
    void Write(IReadOnlyList<ReadOnlyMemory<byte>> buffers, long offset);

    void SetLength(long length);

    /// <summary>Makes every completed write durable (fdatasync).</summary>
    void Sync();
}

/// <summary>The real file: positioned I/O on a handle locked against other openers.</summary>
internal sealed partial class OsPageFile : IPageFile
{
    private readonly SafeFileHandle _handle;

    private OsPageFile(SafeFileHandle handle) => _handle = handle;

    public SafeFileHandle Handle => _handle;

    public long Length => RandomAccess.GetLength(_handle);

    /// <summary>Opens the file (created beforehand by <c>Database.Create</c>) with an exclusive advisory lock (flock on Unix).</summary>
    public static OsPageFile Open(string path)
    {
        try
        {
            // FileShare.None takes flock(LOCK_EX | LOCK_NB) on Unix: a second opener, in this process or another, fails.
            var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
            return new OsPageFile(handle);
        }
        catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException && File.Exists(path))
        {
            throw new DatabaseLockedException(path, LockHolder.Find(path), e);
        }
    }

    public void Read(Span<byte> destination, long offset)
    {
        var total = 0;
        while (total < destination.Length)
        {
            var n = RandomAccess.Read(_handle, destination[total..], offset + total);
            if (n == 0)
            {
                throw new CorruptDatabaseException($"file is truncated: wanted {destination.Length} bytes at offset {offset}, it ends at {offset + total}");
            }
            total += n;
        }
    }

    public void Write(ReadOnlySpan<byte> source, long offset) => RandomAccess.Write(_handle, source, offset);

    // pwritev's arguments, kept between commits (RandomAccess.Write with a list allocates both arrays on every call).
    private readonly Lock _gatherLock = new();
    private System.Buffers.MemoryHandle[] _pins = [];
    private IoVec[] _iov = [];
    private const int MaxIov = 1024;   // IOV_MAX on Linux

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public nint Base;
        public nuint Length;
    }

    public void Write(IReadOnlyList<ReadOnlyMemory<byte>> buffers, long offset)
    {
        if (!OperatingSystem.IsLinux() || buffers.Count > MaxIov)
        {
            RandomAccess.Write(_handle, buffers, offset);
            return;
        }
        lock (_gatherLock) WriteGather(buffers, offset);
    }

    private unsafe void WriteGather(IReadOnlyList<ReadOnlyMemory<byte>> buffers, long offset)
    {
        var count = buffers.Count;
        if (_iov.Length < count)
        {
            _pins = new System.Buffers.MemoryHandle[Math.Max(count, 64)];
            _iov = new IoVec[_pins.Length];
        }
        long total = 0;
        try
        {
            for (var i = 0; i < count; i++)
            {
                _pins[i] = buffers[i].Pin();
                _iov[i] = new IoVec { Base = (nint)_pins[i].Pointer, Length = (nuint)buffers[i].Length };
                total += buffers[i].Length;
            }
            var fd = (int)_handle.DangerousGetHandle();
            fixed (IoVec* iov = _iov)
            {
                var first = 0;
                long written = 0;
                while (written < total)
                {
                    long n = PWriteV(fd, iov + first, count - first, offset + written);
                    if (n < 0)
                    {
                        var errno = Marshal.GetLastPInvokeError();
                        if (errno == 4) continue; // EINTR
                        throw new IOException($"writing {total - written} bytes at offset {offset + written} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})", errno);
                    }
                    if (n == 0) throw new IOException($"writing {total - written} bytes at offset {offset + written} made no progress");
                    written += n;
                    // A short write: skip the buffers written whole, and the written part of the next.
                    while (first < count && n >= (long)iov[first].Length)
                    {
                        n -= (long)iov[first].Length;
                        first++;
                    }
                    if (n > 0)
                    {
                        iov[first].Base += (nint)n;
                        iov[first].Length -= (nuint)n;
                    }
                }
            }
        }
        finally
        {
            for (var i = 0; i < count; i++)
            {
                _pins[i].Dispose();
                _pins[i] = default;
            }
        }
    }

    public void SetLength(long length) => RandomAccess.SetLength(_handle, length);

    public void Sync()
    {
        if (OperatingSystem.IsLinux())
        {
            if (FDataSync((int)_handle.DangerousGetHandle()) != 0)
            {
                throw new IOException($"fdatasync failed: errno {Marshal.GetLastPInvokeError()}");
            }
        }
        else
        {
            RandomAccess.FlushToDisk(_handle);
        }
    }

    public void Dispose() => _handle.Dispose();

    [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
    private static partial int FDataSync(int fd);

    [LibraryImport("libc", EntryPoint = "pwritev", SetLastError = true)]
    private static unsafe partial nint PWriteV(int fd, IoVec* iov, int iovcnt, long offset);
}
