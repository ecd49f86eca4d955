using System.Collections.Concurrent;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>Requests this member forwarded to the leader, by forward id, until their answer comes back or they time out.</summary>
internal sealed class ForwardTable
{
    public sealed record Forwarded(Responder Responder, MessageType Type, ulong RequestId, long Deadline);

    private readonly ConcurrentDictionary<ulong, Forwarded> _entries = new();
    private long _next;

    public ulong Add(Responder r, MessageType type, ulong requestId, long deadline)
    {
        var id = (ulong)Interlocked.Increment(ref _next);
        _entries[id] = new Forwarded(r, type, requestId, deadline);
        return id;
    }

    public Forwarded? Take(ulong id) => _entries.TryRemove(id, out var e) ? e : null;

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
#pragma warning restore CA1001
