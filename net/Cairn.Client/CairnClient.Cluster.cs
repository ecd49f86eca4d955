using System.Buffers;
using Cairn.Kv;
using Cairn.Protocol;
using K4os.Compression.LZ4.Streams;

namespace Cairn.Client;

/// <summary>Membership and maintenance. Calls that take an endpoint go to that member only (no failover).</summary>
public sealed partial class CairnClient
{
    /// <summary>The members, with the names and addresses they published (a member not started yet has no client address).</summary>
    public Task<Answer<IReadOnlyList<MemberInfo>>> MemberListAsync(CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.MemberList, null, Parsers.Members, idempotent: true, null, cancellationToken);

    /// <summary>Adds a member (a voter, or a learner that receives the log without voting). Then start it with --initial-cluster-state existing.</summary>
    public Task<Answer<MemberChangeResponse>> MemberAddAsync(string name, string peerUrl, bool learner = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(peerUrl);
        return CallAsync(MessageType.MemberAdd, w => Messages.WriteMemberAdd(w, name, peerUrl, learner), Parsers.MemberChange, idempotent: false, null, cancellationToken);
    }

    /// <summary>Removes a member (it stops once it learns).</summary>
    public Task<Answer<MemberChangeResponse>> MemberRemoveAsync(ulong id, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.MemberRemove, w => w.U64(id), Parsers.MemberChange, idempotent: false, null, cancellationToken);

    /// <summary>Makes a learner a voter.</summary>
    public Task<Answer<MemberChangeResponse>> MemberPromoteAsync(ulong id, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.MemberPromote, w => w.U64(id), Parsers.MemberChange, idempotent: false, null, cancellationToken);

    /// <summary>Hands leadership to <paramref name="targetId"/>; answered once it leads.</summary>
    public async Task<WireHeader> MoveLeaderAsync(ulong targetId, CancellationToken cancellationToken = default) =>
        (await CallAsync(MessageType.MoveLeader, w => w.U64(targetId), Parsers.None, idempotent: false, null, cancellationToken).ConfigureAwait(false)).Header;

    /// <summary>A member's status: the current member's, or <paramref name="endpoint"/>'s.</summary>
    public Task<Answer<StatusResponse>> StatusAsync(string? endpoint = null, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.Status, null, Parsers.Status, idempotent: true, endpoint, cancellationToken);

    /// <summary>
    /// The autoscaler's view from a member (the current one, or <paramref name="endpoint"/>): units, RAM in use by source
    /// against the RAM provisioned, storage in use against the quota, the members' latest figures and the last
    /// decisions — a JSON document (docs/scaling.md).
    /// </summary>
    public Task<Answer<string>> ScaleStatusAsync(string? endpoint = null, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.ScaleStatus, null, static (ref PayloadReader r, in WireHeader _) => r.String(), idempotent: true, endpoint, cancellationToken);

    /// <summary>
    /// Sets the unit count by hand, up or down; a scale-down that would leave the data over the new quota, or memory in
    /// use over the new RAM, is refused with the figures (<see cref="CairnException"/>, InvalidArgument). Returns the
    /// count in force once applied.
    /// </summary>
    public Task<Answer<int>> ScaleSetAsync(int units, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(units, 1);
        return CallAsync(MessageType.ScaleSet, w => w.U32((uint)units), static (ref PayloadReader r, in WireHeader _) => (int)r.U32(), idempotent: true, null, cancellationToken);
    }

    /// <summary>The alarms raised in the cluster.</summary>
    public Task<Answer<IReadOnlyList<Alarm>>> AlarmListAsync(CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.AlarmList, null, Parsers.Alarms, idempotent: true, null, cancellationToken);

    /// <summary>Disarms the alarms (refused with <see cref="CairnNoSpaceException"/> while the database is still over its quota).</summary>
    public Task<Answer<IReadOnlyList<Alarm>>> AlarmDisarmAsync(CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.AlarmDisarm, null, Parsers.Alarms, idempotent: false, null, cancellationToken);

    /// <summary>Rewrites a member's database file compactly (the current member's, or <paramref name="endpoint"/>'s).</summary>
    public Task<Answer<DefragmentResult>> DefragmentAsync(string? endpoint = null, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.Defragment, null, Parsers.Defragment, idempotent: false, endpoint, cancellationToken);

    /// <summary>A hash of a member's key space at <paramref name="revision"/> (0: current); equal on every member at one revision.</summary>
    public Task<Answer<HashResponse>> HashAsync(long revision = 0, string? endpoint = null, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.Hash, w => w.I64(revision), Parsers.Hash, idempotent: true, endpoint, cancellationToken);

    /// <summary>
    /// Streams a member's whole state (the current member's, or <paramref name="endpoint"/>'s) into
    /// <paramref name="destination"/>: the snapshot dump (docs/kv.md) that <c>KvStateMachine.BuildFromSnapshot</c>
    /// reads, or with <paramref name="compressed"/> the LZ4 frame stream exactly as the member sent it. It uses a
    /// connection of its own, so a slow destination slows the member's sending and nothing else.
    /// </summary>
    /// <returns>Bytes written to <paramref name="destination"/>.</returns>
    public async Task<long> SnapshotAsync(Stream destination, string? endpoint = null, bool compressed = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(destination);
        endpoint ??= (await CurrentAsync(cancellationToken).ConfigureAwait(false)).Endpoint;
        Connection c;
        try
        {
            c = await Connection.OpenAsync(endpoint, _options.ConnectTimeout, _options.MaxResponseFrameBytes, _tls, cancellationToken).ConfigureAwait(false);
        }
        catch (ConnectFailedException e)
        {
            throw new CairnUnavailableException([(endpoint, e.Reason)], e);
        }
        await using (c.ConfigureAwait(false))
        {
            var op = new SnapshotOp(NextId());
            if (!c.TryStart(op, null)) throw new CairnUnavailableException([(endpoint, "the connection closed at once")]);
            await using var chunks = new ChunkReadStream(op);
            try
            {
                if (compressed)
                {
                    await chunks.CopyToAsync(destination, cancellationToken).ConfigureAwait(false);
                    return chunks.BytesRead;
                }
                await using var counting = new CountingStream(destination);
                var lz4 = LZ4Stream.Decode(chunks, leaveOpen: true);
                await using (lz4.ConfigureAwait(false))
                {
                    await lz4.CopyToAsync(counting, cancellationToken).ConfigureAwait(false);
                }
                return counting.Written;
            }
            catch (ConnectionLostException e)
            {
                throw new CairnUnavailableException([(endpoint, $"the snapshot stream broke off: {e.Reason}")], e);
            }
        }
    }

    /// <summary>Reads the chunks of a snapshot stream as one stream of bytes, returning each chunk's buffer to the pool.</summary>
    private sealed class ChunkReadStream(SnapshotOp op) : Stream
    {
        private SnapshotChunk _chunk;
        private int _at;
        private bool _hasChunk;
        private bool _ended;

        public long BytesRead { get; private set; }

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            while (true)
            {
                if (_hasChunk && _at < _chunk.Length)
                {
                    var n = Math.Min(buffer.Length, _chunk.Length - _at);
                    _chunk.Buffer.AsSpan(_at, n).CopyTo(buffer.Span);
                    _at += n;
                    BytesRead += n;
                    return n;
                }
                if (_hasChunk)
                {
                    _ended = _chunk.Last;
                    _chunk.Return();
                    _hasChunk = false;
                }
                if (_ended || buffer.Length == 0) return 0;
                if (!await op.Chunks.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
                {
                    throw new IOException("the snapshot stream ended without its last chunk");
                }
                if (op.Chunks.TryRead(out _chunk))
                {
                    _hasChunk = true;
                    _at = 0;
                }
            }
        }

        protected override void Dispose(bool disposing)
        {
            if (_hasChunk)
            {
                _chunk.Return();
                _hasChunk = false;
            }
            while (op.Chunks.TryRead(out var c)) c.Return();
            base.Dispose(disposing);
        }
    }

    /// <summary>Counts the bytes written through it (the destination stays open).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override Task FlushAsync(CancellationToken cancellationToken) => inner.FlushAsync(cancellationToken);
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count)
        {
            inner.Write(buffer, offset, count);
            Written += count;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            Written += buffer.Length;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();
    }
}
