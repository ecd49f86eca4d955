using System.Threading.Channels;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>Reads a response body after its <see cref="WireHeader"/>, in place from the receive buffer.</summary>
internal delegate T BodyParser<out T>(ref PayloadReader reader, in WireHeader header);

/// <summary>
/// A request on a connection, waiting for its answer frames. The connection's reader loop hands it every frame with
/// its id; <see cref="Written"/> says whether its bytes may have reached the member (the retry rule hinges on it).
/// </summary>
internal abstract class PendingOp(MessageType type, ulong id)
{
    public MessageType Type => type;

    public ulong Id => id;

    /// <summary>Set under the connection's lock when the frame is handed to the socket; never reset.</summary>
    public bool Written { get; set; }

    /// <summary>
    /// One frame for this request, read in place. <paramref name="done"/>: no more frames will come (the op leaves the
    /// connection's table). The returned task is awaited by the reader loop before the next frame (backpressure for
    /// streams on a connection of their own); it must not throw.
    /// </summary>
    public abstract ValueTask OnFrame(Connection connection, in FrameHeader header, ReadOnlySpan<byte> payload, out bool done);

    /// <summary>The connection died before the last frame.</summary>
    public abstract void OnConnectionLost(ConnectionLostException e);

    /// <summary>The exception for an Error frame's payload.</summary>
    protected static CairnException ReadError(Connection c, ReadOnlySpan<byte> payload)
    {
        try
        {
            var r = new PayloadReader(payload);
            var (code, message) = Messages.ReadError(ref r);
            return CairnException.FromServer(code, message, c.Endpoint);
        }
        catch (ProtocolException e)
        {
            return Malformed(c, MessageType.Error, e);
        }
    }

    protected static CairnException Malformed(Connection c, MessageType type, ProtocolException e) =>
        new(ErrorCode.Malformed, $"{c.Endpoint} sent a malformed {type} response: {e.Message}", c.Endpoint, e);
}

/// <summary>A request answered by one frame: its body parsed, or an error.</summary>
internal sealed class UnaryOp<T>(MessageType type, ulong id, BodyParser<T> parse) : PendingOp(type, id)
{
    private readonly TaskCompletionSource<Answer<T>> _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<Answer<T>> Task => _done.Task;

    public override ValueTask OnFrame(Connection connection, in FrameHeader header, ReadOnlySpan<byte> payload, out bool done)
    {
        done = true;
        if (header.Type == MessageType.Error)
        {
            _done.TrySetException(ReadError(connection, payload));
            return default;
        }
        try
        {
            if (header.Type != Type) throw new ProtocolException(ErrorCode.Malformed, $"answer of type {header.Type} to a {Type} request");
            var r = new PayloadReader(payload);
            var wire = Messages.ReadHeader(ref r);
            var body = parse(ref r, wire);
            r.End();
            _done.TrySetResult(new Answer<T>(wire, body));
        }
        catch (ProtocolException e)
        {
            _done.TrySetException(Malformed(connection, Type, e));
        }
        return default;
    }

    public override void OnConnectionLost(ConnectionLostException e) => _done.TrySetException(e);
}

/// <summary>A watch: its create answer, then event frames until one flagged Last (or an error, or the connection's end).</summary>
internal sealed class WatchOp(ulong id) : PendingOp(MessageType.WatchCreate, id)
{
    private readonly TaskCompletionSource<WireHeader> _created = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Channel<WatchResponse> _events = Channel.CreateUnbounded<WatchResponse>(new UnboundedChannelOptions { SingleReader = true, SingleWriter = true });
    private volatile bool _ended;

    /// <summary>Completes with the create answer's header (or the refusal).</summary>
    public Task<WireHeader> Created => _created.Task;

    /// <summary>Responses as they arrive; completed after the Last frame, or with the failure.</summary>
    public ChannelReader<WatchResponse> Events => _events.Reader;

    /// <summary>The member ended the watch (Last or error): there is nothing to cancel.</summary>
    public bool Ended => _ended;

    public override ValueTask OnFrame(Connection connection, in FrameHeader header, ReadOnlySpan<byte> payload, out bool done)
    {
        done = false;
        try
        {
            switch (header.Type)
            {
                case MessageType.Error:
                    Fail(ReadError(connection, payload));
                    done = true;
                    break;
                case MessageType.WatchCreate:
                {
                    var r = new PayloadReader(payload);
                    var wire = Messages.ReadHeader(ref r);
                    r.End();
                    _created.TrySetResult(wire);
                    break;
                }
                case MessageType.WatchEvents:
                {
                    var r = new PayloadReader(payload);
                    var wire = Messages.ReadHeader(ref r);
                    var events = Messages.ReadWatchEvents(ref r, wire.Revision);
                    r.End();
                    _events.Writer.TryWrite(events);
                    if ((header.Flags & FrameFlags.Last) != 0)
                    {
                        _ended = true;
                        _events.Writer.TryComplete();
                        done = true;
                    }
                    break;
                }
                default:
                    throw new ProtocolException(ErrorCode.Malformed, $"answer of type {header.Type} to a watch");
            }
        }
        catch (ProtocolException e)
        {
            Fail(Malformed(connection, header.Type, e));
            done = true;
        }
        return default;
    }

    private void Fail(Exception e)
    {
        _ended = true;
        if (!_created.TrySetException(e)) _events.Writer.TryComplete(e);
        else _events.Writer.TryComplete();
    }

    public override void OnConnectionLost(ConnectionLostException e) => Fail(e);
}

/// <summary>A snapshot stream: chunks copied into pooled arrays and queued (bounded: a slow consumer slows the member down).</summary>
internal sealed class SnapshotOp(ulong id) : PendingOp(MessageType.Snapshot, id)
{
    private readonly Channel<SnapshotChunk> _chunks = Channel.CreateBounded<SnapshotChunk>(new BoundedChannelOptions(8) { SingleReader = true, SingleWriter = true });

    public ChannelReader<SnapshotChunk> Chunks => _chunks.Reader;

    public override ValueTask OnFrame(Connection connection, in FrameHeader header, ReadOnlySpan<byte> payload, out bool done)
    {
        done = true;
        if (header.Type == MessageType.Error)
        {
            _chunks.Writer.TryComplete(ReadError(connection, payload));
            return default;
        }
        if (header.Type != MessageType.Snapshot)
        {
            _chunks.Writer.TryComplete(Malformed(connection, header.Type, new ProtocolException(ErrorCode.Malformed, $"answer of type {header.Type} to a snapshot request")));
            return default;
        }
        var last = (header.Flags & FrameFlags.Last) != 0;
        done = last;
        var chunk = new SnapshotChunk(System.Buffers.ArrayPool<byte>.Shared.Rent(Math.Max(1, payload.Length)), payload.Length, last);
        payload.CopyTo(chunk.Buffer);
        if (_chunks.Writer.TryWrite(chunk))
        {
            if (last) _chunks.Writer.TryComplete();
            return default;
        }
        return WriteSlowAsync(chunk, connection.Closing);
    }

    private async ValueTask WriteSlowAsync(SnapshotChunk chunk, CancellationToken closing)
    {
        try
        {
            await _chunks.Writer.WriteAsync(chunk, closing).ConfigureAwait(false);
            if (chunk.Last) _chunks.Writer.TryComplete();
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            chunk.Return();
        }
    }

    public override void OnConnectionLost(ConnectionLostException e) => _chunks.Writer.TryComplete(e);
}

/// <summary>One chunk of a snapshot stream in a pooled array.</summary>
internal readonly record struct SnapshotChunk(byte[] Buffer, int Length, bool Last)
{
    public void Return() => System.Buffers.ArrayPool<byte>.Shared.Return(Buffer);
}

/// <summary>The connection to a member died; <see cref="Written"/> says whether the request may have reached it.</summary>
internal sealed class ConnectionLostException(string endpoint, string reason, bool written)
    : Exception($"connection to {endpoint} lost: {reason}")
{
    public string Endpoint { get; } = endpoint;

    public string Reason { get; } = reason;

    public bool Written { get; } = written;
}
