using System.Collections.Concurrent;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>Requests this member forwarded to the leader, by forward id, until their answer comes back or they time out.</summary>
internal sealed class ForwardTable
{
    public sealed record Entry(Responder Responder, MessageType Type, ulong RequestId, long Deadline);

    private readonly ConcurrentDictionary<ulong, Entry> _entries = new();
    private long _next;

    public ulong Add(Responder r, MessageType type, ulong requestId, long deadline)
    {
        var id = (ulong)Interlocked.Increment(ref _next);
        _entries[id] = new Entry(r, type, requestId, deadline);
        return id;
    }

    public Entry? Take(ulong id) => _entries.TryRemove(id, out var e) ? e : null;

    public void Expire(long now)
    {
        if (_entries.IsEmpty) return;
        foreach (var (id, e) in _entries)
        {
            if (e.Deadline < now && _entries.TryRemove(id, out _) && e.Responder.IsOpen)
            {
                e.Responder.Error(e.Type, e.RequestId, ErrorCode.Timeout, "the leader did not answer in time; a write's outcome is unknown (it may have been applied)");
            }
        }
    }

    public void FailAll(ErrorCode code, string message, MessageType? except = null)
    {
        foreach (var (id, entry) in _entries)
        {
            if (entry.Type == except) continue;
            if (_entries.TryRemove(id, out var e) && e.Responder.IsOpen) e.Responder.Error(e.Type, e.RequestId, code, message);
        }
    }
}

/// <summary>Answers to a forwarded request go back to the member that forwarded it.</summary>
// CA1001: a responder answers once and is dropped; its writer's pooled buffer is simply left to the collector (ArrayPool allows that).
#pragma warning disable CA1001
internal sealed class ForwardResponder(PeerTransport peers, ulong to, ulong forwardId) : Responder
{
    private readonly FrameWriter _writer = new(256);
    private readonly Lock _lock = new();

    public override bool IsOpen => true;

    public override FrameWriter Begin()
    {
        _lock.Enter();
        return _writer;
    }

    public override void End()
    {
        try
        {
            if (_writer.Length > 0) peers.Reply(to, forwardId, _writer.WrittenSpan);
            _writer.Reset();
        }
        finally
        {
            _lock.Exit();
        }
    }
}

/// <summary>
/// Answers to the member's own requests (publishing its address, raising its alarm): noted, not sent —
/// <paramref name="answered"/> learns whether the request succeeded (null: the address publication's bookkeeping).
/// </summary>
internal sealed class SelfResponder(Member member, Action<bool>? answered = null) : Responder
{
    private readonly FrameWriter _writer = new(256);
    private readonly Lock _lock = new();

    public override bool IsOpen => true;

    public override FrameWriter Begin()
    {
        _lock.Enter();
        return _writer;
    }

    public override void End()
    {
        try
        {
            if (Frame.TryReadHeader(_writer.WrittenSpan, out var h))
            {
                if (answered is not null) answered(h.Type != MessageType.Error);
                else member.OnPublished(h.Type != MessageType.Error);
            }
            _writer.Reset();
        }
        finally
        {
            _lock.Exit();
        }
    }
}

#pragma warning restore CA1001

/// <summary>
/// A write-only stream that cuts what is written into chunks and hands each to a sink (the last one flagged). The sink
/// blocks (it writes to a socket): use it from a thread of its own, never from the thread pool.
/// </summary>
internal sealed class ChunkStream(Action<ReadOnlyMemory<byte>, bool> sink, int chunkBytes = 256 << 10) : Stream
{
    private readonly byte[] _chunk = new byte[chunkBytes];
    private int _filled;
    private bool _completed;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, _chunk.Length - _filled);
            buffer[..n].CopyTo(_chunk.AsSpan(_filled));
            _filled += n;
            buffer = buffer[n..];
            if (_filled == _chunk.Length)
            {
                sink(_chunk.AsMemory(0, _filled), false);
                _filled = 0;
            }
        }
    }

    /// <summary>Sends what is left as the last chunk.</summary>
    public void Complete()
    {
        if (_completed) return;
        _completed = true;
        sink(_chunk.AsMemory(0, _filled), true);
        _filled = 0;
    }
}
