using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>A client request waiting for its command to apply: writes the answer for its type.</summary>
internal sealed class RequestWaiter(Responder responder, Protocol.MessageType type, ulong id) : Waiter, IPooled
{
    private Responder _responder = responder;
    private Protocol.MessageType _type = type;
    private ulong _id = id;
    private bool _pooled;

    private static readonly BoundedPool<RequestWaiter> Pool = new(65_536);
    bool IPooled.InPool { get; set; }

    public static RequestWaiter Rent(Responder responder, Protocol.MessageType type, ulong id)
    {
        if (Pool.TryRent() is not { } w) return new RequestWaiter(responder, type, id) { _pooled = true };
        w._responder = responder;
        w._type = type;
        w._id = id;
        return w;
    }

    public void Return()
    {
        if (!_pooled) return;
        _responder = null!;
        Pool.Return(this);
    }

    public override void Complete(Member member, in ApplyOutcome result)
    {
        var responder = _responder;
        var type = _type;
        var id = _id;
        if (!responder.IsOpen) return;
        if (result.Error is { } error)
        {
            Fail(Responder.CodeOf(error), error.Message);
            return;
        }
        var w = responder.Begin();
        try
        {
            w.BeginFrame(type, FrameFlags.Response, id);
            if (result.PlainPut)
            {
                // A put without flags: its answer is the header at its revision and "no previous key-value".
                Messages.WriteHeader(w, member.Header(result.Revision));
                w.Bool(false);
                w.EndFrame();
                return;
            }
            switch (result.Response)
            {
                case PutResponse put:
                    Messages.WriteHeader(w, member.Header(put.Header.Revision));
                    Messages.WritePutResponse(w, put);
                    break;
                case DeleteRangeResponse del:
                    Messages.WriteHeader(w, member.Header(del.Header.Revision));
                    Messages.WriteDeleteResponse(w, del);
                    break;
                case TxnResponse txn:
                    Messages.WriteHeader(w, member.Header(txn.Header.Revision));
                    Messages.WriteTxnResponse(w, txn);
                    break;
                case CompactResponse c:
                    Messages.WriteHeader(w, member.Header(c.Header.Revision));
                    w.I64(c.Removed);
                    break;
                case LeaseGrantResponse g:
                    Messages.WriteHeader(w, member.Header(g.Header.Revision));
                    w.I64(g.Id);
                    w.I64(g.Ttl);
                    break;
                case LeaseRevokeResponse r:
                    Messages.WriteHeader(w, member.Header(r.Header.Revision));
                    w.I64(r.Deleted);
                    break;
                case ResponseHeader h:
                    Messages.WriteHeader(w, member.Header(h.Revision));
                    if (type == Protocol.MessageType.AlarmDisarm) Messages.WriteAlarms(w, []);
                    break;
                default:
                    Messages.WriteHeader(w, member.Header());
                    break;
            }
            w.EndFrame();
        }
        catch
        {
            w.AbandonFrame();
            throw;
        }
        finally
        {
            responder.End();
        }
    }

    public override void Fail(ErrorCode code, string message)
    {
        if (_responder.IsOpen) _responder.Error(_type, _id, code, message);
    }
}
