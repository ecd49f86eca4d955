using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>A linearizable read waiting for its ReadIndex round and for the state to be applied up to it.</summary>
internal sealed class PendingRead(Responder responder, ulong id, RangeRequest request)
{
    public long Deadline { get; set; }

    public void Serve(Member member) => member.ServeRange(responder, id, request);

    public void Fail(ErrorCode code, string message)
    {
        if (responder.IsOpen) responder.Error(Protocol.MessageType.Range, id, code, message);
    }
}
