using System.Buffers.Binary;
using System.IO.Hashing;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Cairn.Crypto;
using Microsoft.Win32.SafeHandles;

namespace Cairn.Raft;

/// <summary>
/// Segment files: a 128-byte header (magic, version, flags, sequence, segment id, wrapped key, checksum), then
/// records <c>[u32 length][u8 type][payload][16-byte XxHash128 or GCM tag]</c>, then preallocated zeros. A record is
/// authenticated with its segment id, sequence and offset, so a record moved elsewhere fails.
/// </summary>
public sealed partial class Wal
{
    private sealed partial class Segment : IDisposable
    {
        public required string Path;
        public required ulong Seq;
        public required byte[] Id;
        public required SafeFileHandle Handle;
        public Aes256Gcm? Gcm;
        public long Offset;
        private byte[] _pending = new byte[InitialBuffer];   // records framed since the last flush, written in one call (passed on to the next segment)
        private int _pendingLength;
        private long _pendingAt = -1;
        private const int InitialBuffer = 64 << 10;
        private const int KeptBuffer = 4 << 20;              // a larger buffer (one huge batch) is not kept after its flush

        /// <summary>Room for a record of <paramref name="length"/> bytes at the segment's offset <paramref name="at"/>, framed in place by the caller.</summary>
        public Span<byte> Reserve(int length, long at)
        {
            if (_pendingAt < 0) _pendingAt = at;
            if (_pendingLength + length > _pending.Length)
            {
                var grown = new byte[Math.Max(_pending.Length * 2, _pendingLength + length)];
                _pending.AsSpan(0, _pendingLength).CopyTo(grown);
                _pending = grown;
            }
            var span = _pending.AsSpan(_pendingLength, length);
            _pendingLength += length;
            return span;
        }

        public bool Sync = true;

        /// <summary>Hands the (flushed) record buffer over to the next segment.</summary>
        public byte[] TakeBuffer()
        {
            var b = _pending;
            _pending = [];
            return b;
        }

        public void Adopt(byte[] buffer) => _pending = buffer;

        public void Flush(bool sync = true)
        {
            if (_pendingLength == 0) return;
            RandomAccess.Write(Handle, _pending.AsSpan(0, _pendingLength), _pendingAt);
            if (!Sync || !sync)
            {
                // Written, not synced (WalOptions.Sync off).
            }
            else if (OperatingSystem.IsLinux())
            {
                if (FDataSync((int)Handle.DangerousGetHandle()) != 0) throw new IOException($"fdatasync of {Path} failed: errno {Marshal.GetLastPInvokeError()}");
            }
            else
            {
                RandomAccess.FlushToDisk(Handle);
            }
            _pendingLength = 0;
            _pendingAt = -1;
            if (_pending.Length > KeptBuffer) _pending = new byte[InitialBuffer];
        }

        public void Dispose()
        {
            Gcm?.Dispose();
            Handle.Dispose();
        }

        [LibraryImport("libc", EntryPoint = "fdatasync", SetLastError = true)]
        private static partial int FDataSync(int fd);
    }

    private Segment NewSegment()
    {
        var seq = _nextSeq++;
        var path = System.IO.Path.Combine(_dir, $"{seq:x16}.wal");
        var temp = path + ".creating";
        var header = new byte[HeaderSize];
        var id = RandomNumberGenerator.GetBytes(16);
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), 1);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), _options.MasterKey is null ? 0u : 1u);
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(16), seq);
        id.CopyTo(header, 24);
        Aes256Gcm? gcm = null;
        if (_options.MasterKey is { } master)
        {
            // Each segment has its own random data key: a segment is never appended to after a restart, so its
            // offsets (the nonces) are never reused under that key.
            var key = RandomNumberGenerator.GetBytes(32);
            KeyWrap.Wrap(master, key, Context(id, seq), header.AsSpan(40, KeyWrap.WrappedSize));
            gcm = new Aes256Gcm(key);
            CryptographicOperations.ZeroMemory(key);
        }
        BinaryPrimitives.WriteUInt64LittleEndian(header.AsSpan(120), XxHash64.HashToUInt64(header.AsSpan(0, 120)));
        File.Delete(temp); // a leftover of a crash: created afresh, so it gets the private mode
        using (var fs = new FileStream(temp, CreatePrivate(FileMode.CreateNew, FileAccess.Write, FileShare.None)))
        {
            fs.SetLength(_options.SegmentBytes);
            fs.Write(header);
            fs.Flush(flushToDisk: true);
        }
        File.Move(temp, path);
        SyncDirectory(_dir);
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        return new Segment { Path = path, Seq = seq, Id = id, Handle = handle, Gcm = gcm, Offset = HeaderSize, Sync = _options.Sync };
    }

    private static byte[] Context(byte[] id, ulong seq)
    {
        var c = new byte[24];
        id.CopyTo(c, 0);
        BinaryPrimitives.WriteUInt64LittleEndian(c.AsSpan(16), seq);
        return c;
    }

    /// <summary>Options that create a file only its owner may read or write (0600): the log and snapshots hold the store's data.</summary>
    internal static FileStreamOptions CreatePrivate(FileMode mode, FileAccess access, FileShare share)
    {
        var options = new FileStreamOptions { Mode = mode, Access = access, Share = share };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        return options;
    }

    internal static void SyncDirectory(string dir)
    {
        if (!OperatingSystem.IsLinux()) return;
        var fd = Open(dir, 0x10000);
        if (fd < 0) return;
        _ = FSync(fd);
        _ = Close(fd);
    }

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8, SetLastError = true)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
    private static partial int FSync(int fd);

    [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
    private static partial int Close(int fd);

    /// <summary>Frames and seals one record at the segment's end (rotating to a new segment when it would not fit).</summary>
    private Segment Append(Segment tail, byte type, ReadOnlySpan<byte> payload) => Append(tail, type, payload, []);

    /// <summary>Appends one record whose payload is <paramref name="head"/> then <paramref name="body"/>, framed in place (no payload copy).</summary>
    private Segment Append(Segment tail, byte type, ReadOnlySpan<byte> head, ReadOnlySpan<byte> body)
    {
        var payloadLength = head.Length + body.Length;
        var frameLength = FrameOverhead + payloadLength;
        if (frameLength > _options.MaxRecordBytes) throw new ArgumentException($"A record of {frameLength} bytes exceeds the log's limit of {_options.MaxRecordBytes} bytes (MaxRecordBytes).");
        if (tail.Offset + frameLength > _options.SegmentBytes)
        {
            tail.Flush();
            tail.Dispose();
            var buffer = tail.TakeBuffer();
            tail = NewSegment();
            tail.Adopt(buffer);   // the flushed buffer carries on: a new segment allocates none
        }
        var frame = tail.Reserve(frameLength, tail.Offset);
        BinaryPrimitives.WriteInt32LittleEndian(frame, payloadLength);
        frame[4] = type;
        head.CopyTo(frame[5..]);
        body.CopyTo(frame[(5 + head.Length)..]);
        if (tail.Gcm is { } gcm)
        {
            Span<byte> ad = stackalloc byte[37];
            Span<byte> nonce = stackalloc byte[12];
            Associated(tail.Id, tail.Seq, tail.Offset, frame, ad, nonce);
            var sealedBody = frame.Slice(5, payloadLength);
            gcm.Encrypt(nonce, sealedBody, sealedBody, frame[(frameLength - 16)..], ad);
        }
        else
        {
            Checksum(tail.Id, tail.Seq, tail.Offset, frame, frame[(frameLength - 16)..]);
        }
        tail.Offset += frameLength;
        return tail;
    }

    private static void Associated(byte[] id, ulong seq, long offset, ReadOnlySpan<byte> frame, Span<byte> ad, Span<byte> nonce)
    {
        id.CopyTo(ad);
        BinaryPrimitives.WriteUInt64LittleEndian(ad[16..], seq);
        BinaryPrimitives.WriteInt64LittleEndian(ad[24..], offset);
        frame[..5].CopyTo(ad[32..]);
        nonce.Clear();
        BinaryPrimitives.WriteInt64LittleEndian(nonce, offset);
    }

    private readonly XxHash128 _hash = new();

    private void Checksum(byte[] id, ulong seq, long offset, ReadOnlySpan<byte> frame, Span<byte> into)
    {
        Span<byte> ad = stackalloc byte[37];
        Span<byte> nonce = stackalloc byte[12];
        Associated(id, seq, offset, frame, ad, nonce);
        var h = _hash;
        h.Reset();
        h.Append(ad);
        h.Append(frame[5..^16]);
        h.GetCurrentHash(into);
    }

    /// <summary>
    /// Reads a segment's records in order into <paramref name="record"/> (the header must name <paramref name="expectedSeq"/>,
    /// the sequence in its file name). Returns null when the segment is whole, or
    /// the offset to cut it at: a torn last record of the last segment (a partly written record followed only by
    /// zeros or the end of the file), or any damage when <see cref="WalOptions.TruncateAtDamage"/> is set. Other
    /// damage throws <see cref="WalCorruptException"/> naming the segment and offset.
    /// </summary>
    private long? ReadSegment(string file, ulong expectedSeq, bool isLast, RecordHandler record)
    {
        var data = File.ReadAllBytes(file);
        var name = System.IO.Path.GetFileName(file);
        if (data.Length < HeaderSize || !data.AsSpan(0, 8).SequenceEqual(Magic)
            || BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(120)) != XxHash64.HashToUInt64(data.AsSpan(0, 120)))
        {
            return Damage(name, 0, "segment header is damaged");
        }
        var seq = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(16));
        if (seq != expectedSeq)
        {
            // A segment renamed, copied or swapped: its records are whole, but replaying them here would reorder the log.
            return Damage(name, 16, $"segment header names sequence {seq:x16}, its file name {expectedSeq:x16}");
        }
        var id = data.AsSpan(24, 16).ToArray();
        var encrypted = BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(12)) != 0;
        Aes256Gcm? gcm = null;
        if (encrypted)
        {
            if (_options.MasterKey is null) throw new WalKeyException($"{name} is encrypted; open the log with the master key it was written with.");
            Span<byte> key = stackalloc byte[32];
            if (!KeyWrap.TryUnwrap(_options.MasterKey, data.AsSpan(40, KeyWrap.WrappedSize), Context(id, seq), key))
            {
                throw new WalKeyException($"The master key ({_options.MasterKey.KeyId}) does not open {name}.");
            }
            gcm = new Aes256Gcm(key);
            CryptographicOperations.ZeroMemory(key);
        }
        // Whether a whole, authentic record frame starts at q (used only once damage is found, to tell it from a tear).
        bool IsWholeRecord(long q)
        {
            var length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan((int)q));
            var type = data[q + 4];
            if (length < 16 || length + FrameOverhead > _options.MaxRecordBytes || q + FrameOverhead + length > data.Length || type is < TypeEntry or > TypeConfigEntry) return false;
            var frame = data.AsSpan((int)q, FrameOverhead + length);
            if (gcm is null)
            {
                Span<byte> sum = stackalloc byte[16];
                Checksum(id, seq, q, frame, sum);
                return sum.SequenceEqual(frame[^16..]);
            }
            Span<byte> ad = stackalloc byte[37];
            Span<byte> nonce = stackalloc byte[12];
            Associated(id, seq, q, frame, ad, nonce);
            var plain = new byte[length];
            try
            {
                gcm.Decrypt(nonce, frame.Slice(5, length), frame[^16..], plain, ad);
                return true;
            }
            catch (AuthenticationTagMismatchException)
            {
                return false;
            }
        }

        try
        {
            long offset = HeaderSize;
            Span<byte> sum = stackalloc byte[16];
            Span<byte> ad = stackalloc byte[37];
            Span<byte> nonce = stackalloc byte[12];
            while (offset + FrameOverhead <= data.Length)
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan((int)offset));
                var type = data[offset + 4];
                if (length == 0 && type == 0)
                {
                    // Preallocated space: the data ends here, and nothing but zeros may follow.
                    if (data.AsSpan((int)offset).ContainsAnyExcept((byte)0)) return Bad(name, offset, data, isLast, IsWholeRecord, "data after the end marker");
                    return null;
                }
                if (length < 0 || length + FrameOverhead > _options.MaxRecordBytes || offset + FrameOverhead + length > data.Length || type is < TypeEntry or > TypeConfigEntry)
                {
                    return Bad(name, offset, data, isLast, IsWholeRecord, "malformed record frame");
                }
                var frame = data.AsSpan((int)offset, FrameOverhead + length);
                var payload = frame.Slice(5, length);
                bool ok;
                if (gcm is not null)
                {
                    Associated(id, seq, offset, frame, ad, nonce);
                    try
                    {
                        gcm.Decrypt(nonce, payload, frame[^16..], payload, ad);
                        ok = true;
                    }
                    catch (AuthenticationTagMismatchException)
                    {
                        ok = false;
                    }
                }
                else
                {
                    Checksum(id, seq, offset, frame, sum);
                    ok = sum.SequenceEqual(frame[^16..]);
                }
                if (!ok) return Bad(name, offset, data, isLast, IsWholeRecord, gcm is null ? "checksum mismatch" : "authentication tag mismatch");
                if ((type is TypeEntry or TypeConfigEntry && length < 16) || (type == TypeHardState && length != 24) || (type == TypeSnapshot && length != 16))
                {
                    return Bad(name, offset, data, isLast, IsWholeRecord, "record payload has the wrong size for its type");
                }
                if (record(type, payload) is { } problem) return Damage(name, offset, problem); // a whole, authentic record that does not fit the log: damage, never a torn tail
                offset += FrameOverhead + length;
            }
            if (offset < data.Length) return Bad(name, offset, data, isLast, IsWholeRecord, "a record frame is cut off");
            return null;
        }
        finally
        {
            gcm?.Dispose();
        }
    }

    /// <summary>Takes one whole record during recovery; returns what is wrong with it when it cannot be replayed, else null.</summary>
    private delegate string? RecordHandler(byte type, ReadOnlySpan<byte> payload);

    /// <summary>A bad record: a torn tail when nothing but zeros (or the end of the file) follows it in the last segment.</summary>
    private long? Bad(string name, long offset, byte[] data, bool isLast, Func<long, bool> isWholeRecord, string detail)
    {
        // A damaged length field can make a record look as long as the rest of the file; a torn write is the last
        // thing in the file, so a whole record anywhere after it means damage, not a tear.
        if (isLast && !WholeRecordAfter(offset, data, isWholeRecord))
        {
            var length = offset + 4 <= data.Length ? Math.Max(0, BinaryPrimitives.ReadInt32LittleEndian(data.AsSpan((int)offset))) : 0;
            var end = Math.Min(data.Length, offset + FrameOverhead + (long)Math.Min(length, _options.MaxRecordBytes));
            if (!data.AsSpan((int)end).ContainsAnyExcept((byte)0))
            {
                RecoveryNote = $"cut a torn last record in {name} at offset {offset} ({detail})";
                return offset;
            }
        }
        return Damage(name, offset, detail);
    }

    private static bool WholeRecordAfter(long offset, byte[] data, Func<long, bool> isWholeRecord)
    {
        for (var q = offset + 1; q + FrameOverhead <= data.Length; q++)
            if (isWholeRecord(q)) return true;
        return false;
    }

    private long? Damage(string name, long offset, string detail)
    {
        if (!_options.TruncateAtDamage) throw new WalCorruptException(name, offset, detail);
        RecoveryNote = $"truncated at damage in {name} at offset {offset} ({detail}), as asked (truncate at damage)";
        return offset;
    }
}
