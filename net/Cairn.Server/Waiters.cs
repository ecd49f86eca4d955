using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>Someone waiting for a proposal to apply.</summary>
internal abstract class Waiter
{
    public abstract void Complete(Member member, in ApplyOutcome result);

    public abstract void Fail(ErrorCode code, string message);
}

/// <summary>A waiter that completes a task (the member's own proposals, e.g. publishing its address).</summary>
internal sealed class TaskWaiter : Waiter
{
    public TaskCompletionSource<ApplyResult?> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override void Complete(Member member, in ApplyOutcome result) =>
        Done.TrySetResult(new ApplyResult(result.Index, result.PlainPut ? new PutResponse(new ResponseHeader(result.Revision), null) : result.Response, result.Error));

    public override void Fail(ErrorCode code, string message) => Done.TrySetResult(null);
}
