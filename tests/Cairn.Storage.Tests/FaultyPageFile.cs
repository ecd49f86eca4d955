using Microsoft.Win32.SafeHandles;

namespace Cairn.Storage.Tests;

/// <summary>
/// Wraps the real file (via <see cref="StorageOptions.FileWrapper"/>) and fails like a full or failing disk:
/// writes stop after a byte budget (the write that crosses it lands only its prefix), growth stops at a length limit,
/// syncs fail after a count, and meta-page writes can be torn. Every fault raises
/// <see cref="IOException"/>("No space left on device") and persists until <see cref="Heal"/>. Reads are never
/// faulted. Logs every write so a test can learn what a commit writes from a dry run.
/// </summary>
internal sealed class FaultyPageFile(IPageFile inner, int pageSize) : IPageFile
{
    public const string DiskFull = "No space left on device";

    private readonly Lock _gate = new();

    /// <summary>Bytes that may still be written; null = unlimited.</summary>
    public long? WriteBudget { get; set; }

    /// <summary>SetLength beyond this fails; null = unlimited.</summary>
    public long? LengthLimit { get; set; }

    /// <summary>Syncs that still succeed; every later one fails. Null = unlimited.</summary>
    public int? SyncsLeft { get; set; }

    /// <summary>When set, a write to a meta page (0 or 1) lands only this many bytes and fails.</summary>
    public int? TornMetaPrefix { get; set; }

    /// <summary>Whether a torn meta write also fills the disk (so the engine's restore of the slot fails too).</summary>
    public bool TornMetaFillsDisk { get; set; }

    /// <summary>Faults raised so far.</summary>
    public int Faults { get; private set; }

    /// <summary>Every write that reached the file: offset and bytes landed.</summary>
    public List<(long Offset, int Length)> WriteLog { get; } = [];

    public int SyncCount { get; private set; }

    public SafeFileHandle Handle => inner.Handle;

    public long Length => inner.Length;

    /// <summary>Clears every fault (the disk has room again).</summary>
    public void Heal()
    {
        lock (_gate)
        {
            WriteBudget = null;
            LengthLimit = null;
            SyncsLeft = null;
            TornMetaPrefix = null;
            TornMetaFillsDisk = false;
        }
    }

    public void Read(Span<byte> destination, long offset) => inner.Read(destination, offset);

    public void Write(ReadOnlySpan<byte> source, long offset)
    {
        lock (_gate)
        {
            if (offset < 2L * pageSize && TornMetaPrefix is { } torn)
            {
                var n = Math.Min(torn, source.Length);
                Land(source[..n], offset);
                if (TornMetaFillsDisk) WriteBudget = 0;
                TornMetaPrefix = null;
                throw Fault();
            }
            var allowed = WriteBudget is { } budget ? (int)Math.Min(budget, source.Length) : source.Length;
            Land(source[..allowed], offset);
            if (allowed < source.Length) throw Fault();
        }
    }

    public void Write(IReadOnlyList<ReadOnlyMemory<byte>> buffers, long offset)
    {
        lock (_gate)
        {
            long total = 0;
            foreach (var b in buffers) total += b.Length;
            if (WriteBudget is null || WriteBudget >= total)
            {
                inner.Write(buffers, offset);
                Account(offset, total);
                return;
            }
        }
        // The budget ends inside this gather: land the buffers one by one until it runs out, then fail.
        foreach (var b in buffers)
        {
            Write(b.Span, offset);
            offset += b.Length;
        }
    }

    public void SetLength(long length)
    {
        lock (_gate)
        {
            if (LengthLimit is { } limit && length > limit) throw Fault();
            inner.SetLength(length);
        }
    }

    public void Sync()
    {
        lock (_gate)
        {
            if (SyncsLeft is { } left)
            {
                if (left <= 0) throw Fault();
                SyncsLeft = left - 1;
            }
            SyncCount++;
            inner.Sync();
        }
    }

    public void Dispose() => inner.Dispose();

    private void Land(ReadOnlySpan<byte> bytes, long offset)
    {
        if (bytes.IsEmpty) return;
        inner.Write(bytes, offset);
        Account(offset, bytes.Length);
    }

    private void Account(long offset, long length)
    {
        WriteLog.Add((offset, (int)length));
        if (WriteBudget is { } budget) WriteBudget = budget - length;
    }

    private IOException Fault()
    {
        Faults++;
        return new IOException(DiskFull);
    }
}
