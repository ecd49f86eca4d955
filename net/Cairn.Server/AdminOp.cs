using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>Operations on the raft thread other than proposals: membership changes and leadership moves.</summary>
internal abstract class AdminOp
{
    public long Deadline { get; set; }

    public abstract void Complete(Member member);

    public abstract void Fail(ErrorCode code, string message);

    public sealed class Change(ConfigChange change, byte[]? context, Responder responder, Protocol.MessageType type, ulong id) : AdminOp
    {
        public ConfigChange ChangeToMake => change;
        public byte[]? Context => context;

        public override void Complete(Member member)
        {
            if (!responder.IsOpen) return;
            responder.Answer(type, id, member.Header(), (change.Member, member.MemberList()), static (w, a) =>
            {
                w.U64(a.Member);
                Messages.WriteMembers(w, a.Item2);
            });
        }

        public override void Fail(ErrorCode code, string message)
        {
            if (responder.IsOpen) responder.Error(type, id, code, message);
        }
    }

    public sealed class Transfer(ulong to, Responder responder, ulong id) : AdminOp
    {
        public ulong To => to;

        public override void Complete(Member member)
        {
            if (!responder.IsOpen) return;
            responder.Answer(Protocol.MessageType.MoveLeader, id, member.Header());
        }

        public override void Fail(ErrorCode code, string message)
        {
            if (responder.IsOpen) responder.Error(Protocol.MessageType.MoveLeader, id, code, message);
        }
    }

    public sealed class HandOver(TaskCompletionSource<bool> done) : AdminOp
    {
        public TaskCompletionSource<bool> Done => done;

        /// <summary>The voter leadership is handed to (set by the raft thread).</summary>
        public ulong Target { get; set; }

        public override void Complete(Member member) => done.TrySetResult(true);

        public override void Fail(ErrorCode code, string message) => done.TrySetResult(false);
    }
}
