using System.Collections.Concurrent;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// Answers to the member's own requests (publishing its address, raising its alarm): noted, not sent —
/// <paramref name="answered"/> learns whether the request succeeded (null: the address publication's bookkeeping).
/// </summary>
// CA1001: as ForwardResponder, a responder answers once and its writer's pooled buffer is left to the collector.
#pragma warning disable CA1001
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
