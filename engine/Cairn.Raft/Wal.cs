using System.Buffers.Binary;
using Cairn.Crypto;

namespace Cairn.Raft;

/// <summary>Settings of a write-ahead log; <see cref="Validate"/> refuses unsafe values.</summary>
public sealed record WalOptions
{
    /// <summary>Size each segment is preallocated to; a segment is closed and a new one started when full.</summary>
    public long SegmentBytes { get; init; } = 64L << 20;

    /// <summary>Largest record accepted (an entry's data plus framing).</summary>
    public int MaxRecordBytes { get; init; } = 16 << 20;

    /// <summary>When set, every record is sealed with AES-256-GCM under a per-segment data key wrapped by this master key.</summary>
    public IKeyProvider? MasterKey { get; init; }

    /// <summary>
    /// On damage before the tail, truncate the log there (losing what follows) instead of refusing to start. An explicit
    /// operator decision: entries after the damage are gone from this member.
    /// </summary>
    public bool TruncateAtDamage { get; init; }

    /// <summary>
    /// fdatasync after every <see cref="Wal.Save"/> (the default: what Raft's promises rest on). Off only where a lost
    /// tail does not matter (tests of something else): a crash may then lose acknowledged entries.
    /// </summary>
    public bool Sync { get; init; } = true;

    /// <summary>Throws <see cref="ArgumentException"/> naming the fix.</summary>
    public void Validate()
    {
        if (SegmentBytes < 64 * 1024) throw new ArgumentException($"SegmentBytes {SegmentBytes} is below 64 KiB.");
        if (MaxRecordBytes < 1024 || MaxRecordBytes > SegmentBytes - Wal.HeaderSize - Wal.FrameOverhead)
        {
            throw new ArgumentException($"MaxRecordBytes {MaxRecordBytes} must be from 1 KiB to a segment less its header ({SegmentBytes - Wal.HeaderSize - Wal.FrameOverhead}).");
        }
    }
}

/// <summary>
/// The log is damaged before its tail: the message names the segment and offset. It is written for a library user;
/// the parts (<see cref="Segment"/>, <see cref="Offset"/>, <see cref="Detail"/>) let a caller such as the server
/// compose its own, naming its own remedies (a flag for <see cref="WalOptions.TruncateAtDamage"/>, say).
/// </summary>
public sealed class WalCorruptException(string segment, long offset, string detail)
    : Exception($"write-ahead log damaged in {segment} at offset {offset}: {detail}. Restore this member from a replica, or open the log with TruncateAtDamage to drop everything from there on.")
{
    /// <summary>The damaged segment's file name (in the log's directory).</summary>
    public string Segment { get; } = segment;

    /// <summary>Byte offset of the damaged record.</summary>
    public long Offset { get; } = offset;

    /// <summary>What is wrong there, without place or remedy (e.g. "checksum mismatch").</summary>
    public string Detail { get; } = detail;
}

/// <summary>The master key given does not open the log, or the log is encrypted and none was given.</summary>
public sealed class WalKeyException(string message) : Exception(message);

/// <summary>
/// A segmented write-ahead log for the Raft state: entries, hard state and the snapshot position. Each
/// <see cref="Save"/> appends its records and syncs once (group commit). Record framing and recovery are in
/// docs/raft.md: a torn last record is cut off and the log starts; damage before the tail is reported by segment and
/// offset and the log refuses to open. After recovery new records always go to a new segment, so an encrypted
/// segment never reuses a (key, nonce) pair.
/// </summary>
public sealed partial class Wal : IDisposable
{
    internal const int HeaderSize = 128;
    internal const int FrameOverhead = 4 + 1 + 16; // length, type, checksum or tag
    private static ReadOnlySpan<byte> Magic => "CAIRNWAL"u8;
    private const byte TypeEntry = 1, TypeHardState = 2, TypeSnapshot = 3, TypeConfigEntry = 4;

    private readonly string _dir;
    private readonly WalOptions _options;
    private readonly List<LogEntry> _entries = [];
    private Segment? _tail;
    private ulong _nextSeq;

    private Wal(string dir, WalOptions options)
    {
        _dir = dir;
        _options = options;
    }

    /// <summary>The recovered hard state, updated by <see cref="Save"/>.</summary>
    public HardState HardState { get; private set; }

    /// <summary>Index and term of the last snapshot (the log starts after it).</summary>
    public (ulong Index, ulong Term) Snapshot { get; private set; }

    /// <summary>
    /// The entries recovered when the log was opened, after the snapshot, in index order — what a member restarts its
    /// Raft log from. Entries saved since are on disk but not kept here (the caller's log holds them; keeping a second
    /// copy in memory would double the log's memory), though a save or snapshot still drops recovered entries it
    /// replaces or covers.
    /// </summary>
    public IReadOnlyList<LogEntry> Entries => _entries;

    /// <summary>Index of the last entry (the snapshot's when there are none).</summary>
    public ulong LastIndex => Math.Max(_lastIndex, Snapshot.Index);

    private ulong _lastIndex;

    /// <summary>Segment files now in the directory, oldest first.</summary>
    public IReadOnlyList<string> Segments => [.. SegmentFiles(_dir)];

    /// <summary>What recovery did: whether it cut off a torn last record, and where.</summary>
    public string? RecoveryNote { get; private set; }

    /// <summary>Opens the log in <paramref name="directory"/> (created if missing) and recovers its state.</summary>
    public static Wal Open(string directory, WalOptions? options = null)
    {
        options ??= new WalOptions();
        options.Validate();
        Directory.CreateDirectory(directory);
        var wal = new Wal(directory, options);
        wal.Recover();
        return wal;
    }

    private static IEnumerable<string> SegmentFiles(string dir) =>
        Directory.GetFiles(dir, "*.wal").Order(StringComparer.Ordinal);

    /// <summary>
    /// Appends <paramref name="entries"/> (an entry at an index already in the log replaces it and everything after
    /// it, as Raft's conflict resolution requires) and the hard state, then syncs once — unless
    /// <paramref name="sync"/> is false: a caller that saves only a new commit index need not wait for the disk (the
    /// commit index is recovered from the leader after a crash; term, vote and entries must be synced).
    /// </summary>
    public void Save(HardState? hardState, IReadOnlyList<LogEntry> entries, bool sync = true)
    {
        ArgumentNullException.ThrowIfNull(entries);
        if (!sync && entries.Count > 0) throw new ArgumentException("Entries must be synced; only a commit index may be saved without a sync.", nameof(sync));
        var tail = _tail ??= NewSegment();
        Span<byte> head = stackalloc byte[16];      // index, term: each entry's payload starts with them
        for (var i = 0; i < entries.Count; i++) // by index: a foreach over the interface would allocate its enumerator
        {
            var e = entries[i];
            if (e.Index <= Snapshot.Index) throw new ArgumentException($"Entry {e.Index} is at or below the snapshot {Snapshot.Index}.");
            if (e.Index > LastIndex + 1) throw new ArgumentException($"Entry {e.Index} leaves a gap after {LastIndex}.");
            BinaryPrimitives.WriteUInt64LittleEndian(head, e.Index);
            BinaryPrimitives.WriteUInt64LittleEndian(head[8..], e.Term);
            tail = Append(tail, e.Kind == EntryKind.Config ? TypeConfigEntry : TypeEntry, head, e.Data.Span);
            NoteIndex(tail.Path, e.Index);
            Saved(e.Index);
        }
        if (hardState is { } hs)
        {
            Span<byte> payload = stackalloc byte[24];
            BinaryPrimitives.WriteUInt64LittleEndian(payload, hs.Term);
            BinaryPrimitives.WriteUInt64LittleEndian(payload[8..], hs.Vote);
            BinaryPrimitives.WriteUInt64LittleEndian(payload[16..], hs.Commit);
            tail = Append(tail, TypeHardState, payload);
            HardState = hs;
        }
        tail.Flush(sync);
        _tail = tail;
    }

    /// <summary>Records that a snapshot covers the log up to <paramref name="index"/>; earlier entries are dropped and their segments may go.</summary>
    public void SaveSnapshot(ulong index, ulong term)
    {
        var payload = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(payload, index);
        BinaryPrimitives.WriteUInt64LittleEndian(payload.AsSpan(8), term);
        var tail = Append(_tail ??= NewSegment(), TypeSnapshot, payload);
        tail.Flush();
        _tail = tail;
        ApplySnapshot(index, term);
    }

    /// <summary>Deletes every closed segment whose records all lie at or before the snapshot. Returns how many.</summary>
    public int ReleaseSegments()
    {
        var removed = 0;
        foreach (var file in SegmentFiles(_dir))
        {
            if (_tail is not null && file == _tail.Path) break;
            if (_segmentMaxIndex.GetValueOrDefault(file) > Snapshot.Index) break;
            File.Delete(file);
            _segmentMaxIndex.Remove(file);
            removed++;
        }
        return removed;
    }

    // The highest entry index each segment holds, noted while recovering and appending (no segment is read again).
    private readonly Dictionary<string, ulong> _segmentMaxIndex = [];

    private void NoteIndex(string segment, ulong index) =>
        _segmentMaxIndex[segment] = Math.Max(_segmentMaxIndex.GetValueOrDefault(segment), index);

    private void Apply(LogEntry e)
    {
        Saved(e.Index);
        if (e.Index > Snapshot.Index) _entries.Add(e);
    }

    /// <summary>An entry at <paramref name="index"/> was written: a later entry at an index already present replaces it and everything after (the leader's log wins).</summary>
    private void Saved(ulong index)
    {
        while (_entries.Count > 0 && _entries[^1].Index >= index) _entries.RemoveAt(_entries.Count - 1);
        _lastIndex = index;
    }

    private void ApplySnapshot(ulong index, ulong term)
    {
        Snapshot = (index, term);
        _entries.RemoveAll(e => e.Index <= index);
    }

    private void Recover()
    {
        var files = SegmentFiles(_dir).ToList();
        for (var i = 0; i < files.Count; i++)
        {
            var isLast = i == files.Count - 1;
            var seq = ParseSeq(files[i]);
            // Segments are numbered consecutively (rotation adds one; release deletes from the oldest): a gap is a
            // segment lost from the middle of the log, and replaying around it would skip entries.
            var cut = i > 0 && seq != _nextSeq
                ? Damage(System.IO.Path.GetFileName(files[i]), 0, $"segment {_nextSeq:x16} before it is missing")
                : ReadSegment(files[i], seq, isLast, (type, payload) =>
            {
                switch (type)
                {
                    case TypeEntry:
                    case TypeConfigEntry:
                    {
                        var index = BinaryPrimitives.ReadUInt64LittleEndian(payload);
                        // Save never leaves a gap after the last entry; one here means records between were lost
                        // (say, a segment that lost its tail), and replaying on would skip entries.
                        if (_entries.Count > 0 && index > _entries[^1].Index + 1) return $"entry {index} follows entry {_entries[^1].Index}: the entries between are missing";
                        NoteIndex(files[i], index);
                        Apply(new LogEntry(index, BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]), payload[16..].ToArray(),
                            type == TypeConfigEntry ? EntryKind.Config : EntryKind.Normal));
                        break;
                    }
                    case TypeHardState:
                        HardState = new HardState(BinaryPrimitives.ReadUInt64LittleEndian(payload), BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]), BinaryPrimitives.ReadUInt64LittleEndian(payload[16..]));
                        break;
                    case TypeSnapshot:
                        ApplySnapshot(BinaryPrimitives.ReadUInt64LittleEndian(payload), BinaryPrimitives.ReadUInt64LittleEndian(payload[8..]));
                        break;
                }
                return null;
            });
            _nextSeq = seq + 1;
            if (cut is { } at)
            {
                // Cut the segment where the good records end; with TruncateAtDamage, later segments go too. A cut
                // inside the header leaves nothing readable: the segment goes, and its number is used again.
                if (at < HeaderSize)
                {
                    File.Delete(files[i]);
                    _nextSeq = seq;
                }
                else
                {
                    using var fs = new FileStream(files[i], FileMode.Open, FileAccess.Write, FileShare.None);
                    fs.SetLength(at);
                }
                for (var j = i + 1; j < files.Count; j++) File.Delete(files[j]);
                break;
            }
        }
        // New records always go to a new segment (never after a possibly torn tail).
    }

    /// <summary>A segment's number from its name (16 hex digits); a stray *.wal file with another name is refused by name, not parsed into an exception.</summary>
    private static ulong ParseSeq(string file)
    {
        var name = System.IO.Path.GetFileNameWithoutExtension(file);
        if (name.Length == 16 && ulong.TryParse(name, System.Globalization.NumberStyles.AllowHexSpecifier, System.Globalization.CultureInfo.InvariantCulture, out var seq)) return seq;
        throw new WalCorruptException(System.IO.Path.GetFileName(file), 0, "the name is not a segment number (16 hex digits); move the file out of the log directory");
    }

    /// <summary>Closes the open segment (everything saved is already synced).</summary>
    public void Dispose()
    {
        _tail?.Dispose();
        _tail = null;
    }
}
