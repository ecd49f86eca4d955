using Cairn.Kv;
using Cairn.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;
using Op = Cairn.Protocol.Messages.TxnOpType;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: the gRPC request threads (it keeps no state).
/// etcd's KV service: Range, Put, DeleteRange, Txn and Compact, each checked as etcd's gRPC layer checks it, written
/// as a raw-protocol request and answered from the raw answer. Sorting, which the raw protocol leaves to the client,
/// is done here as etcd's server does it: the whole range is fetched, sorted, then cut to the limit.
/// </summary>
internal sealed class EtcdKv(EtcdGateway gateway) : Api.KV.KVBase
{
    /// <summary>etcd's --max-txn-ops default: more operations in one branch are refused.</summary>
    public const int MaxTxnOps = 128;

    public override async Task<Api.RangeResponse> Range(Api.RangeRequest request, ServerCallContext context)
    {
        EtcdChecks.Range(request);
        var response = await gateway.CallAsync(MessageType.Range, request, context, static (w, q) => WriteRange(w, q), ReadRange).ConfigureAwait(false);
        Sort(request, response);
        return response;
    }

    public override Task<Api.PutResponse> Put(Api.PutRequest request, ServerCallContext context)
    {
        EtcdChecks.Put(request);
        return gateway.CallAsync(MessageType.Put, request, context, static (w, q) => WritePut(w, q), ReadPut);
    }

    public override Task<Api.DeleteRangeResponse> DeleteRange(Api.DeleteRangeRequest request, ServerCallContext context)
    {
        EtcdChecks.Delete(request);
        return gateway.CallAsync(MessageType.DeleteRange, request, context, static (w, q) => WriteDelete(w, q), ReadDelete);
    }

    public override async Task<Api.TxnResponse> Txn(Api.TxnRequest request, ServerCallContext context)
    {
        EtcdChecks.Txn(request, MaxTxnOps);
        var response = await gateway.CallAsync(MessageType.Txn, request, context, static (w, q) => WriteTxn(w, q), ReadTxn).ConfigureAwait(false);
        SortTxn(request, response);
        return response;
    }

    public override Task<Api.CompactionResponse> Compact(Api.CompactionRequest request, ServerCallContext context) =>
        // Cairn compacts as it applies the compaction, so `physical` (wait until the space is reclaimed) holds for every compaction.
        gateway.CallAsync(MessageType.Compact, request, context, static (w, q) => w.I64(q.Revision),
            static (ref PayloadReader r, Api.ResponseHeader header) => new Api.CompactionResponse { Header = header });

    // ---------------- requests ----------------

    /// <summary>Whether Cairn's key order is not the order asked for, so the range is fetched whole and sorted here.</summary>
    internal static bool NeedsSort(Api.RangeRequest q) =>
        !(q.SortTarget == Api.RangeRequest.Types.SortTarget.Key && q.SortOrder is Api.RangeRequest.Types.SortOrder.None or Api.RangeRequest.Types.SortOrder.Ascend);

    internal static void WriteRange(FrameWriter w, Api.RangeRequest q) =>
        Messages.WriteRange(w, q.Key.Span, q.RangeEnd.Span,
            NeedsSort(q) ? 0 : Math.Max(q.Limit, 0),   // etcd reads a negative limit as none and a negative revision as the current one
            Math.Max(q.Revision, 0), q.CountOnly,
            q.KeysOnly && q.SortTarget != Api.RangeRequest.Types.SortTarget.Value, // etcd sorts by value, then drops the values
            q.Serializable ? Consistency.Serializable : Consistency.Linearizable,
            q.MinModRevision, q.MaxModRevision, q.MinCreateRevision, q.MaxCreateRevision);

    internal static void WritePut(FrameWriter w, Api.PutRequest q) =>
        Messages.WritePut(w, q.Key.Span, q.Value.Span, q.Lease, q.PrevKv, q.IgnoreValue, q.IgnoreLease);

    internal static void WriteDelete(FrameWriter w, Api.DeleteRangeRequest q) => Messages.WriteDelete(w, q.Key.Span, q.RangeEnd.Span, q.PrevKv);

    internal static void WriteTxn(FrameWriter w, Api.TxnRequest q)
    {
        w.Count(q.Compare.Count);
        foreach (var c in q.Compare)
        {
            var (target, number) = c.Target switch
            {
                Api.Compare.Types.CompareTarget.Version => (CompareTarget.Version, c.Version),
                Api.Compare.Types.CompareTarget.Create => (CompareTarget.Create, c.CreateRevision),
                Api.Compare.Types.CompareTarget.Mod => (CompareTarget.Mod, c.ModRevision),
                Api.Compare.Types.CompareTarget.Value => (CompareTarget.Value, 0L),
                Api.Compare.Types.CompareTarget.Lease => (CompareTarget.Lease, c.Lease),
                _ => throw EtcdErrors.Error(StatusCode.InvalidArgument, $"etcdserver: unknown compare target {c.Target}"),
            };
            var value = target == CompareTarget.Value ? c.Value.Span : [];
            var result = c.Result switch
            {
                Api.Compare.Types.CompareResult.Equal => CompareResult.Equal,
                Api.Compare.Types.CompareResult.NotEqual => CompareResult.NotEqual,
                Api.Compare.Types.CompareResult.Less => CompareResult.Less,
                Api.Compare.Types.CompareResult.Greater => CompareResult.Greater,
                _ => throw EtcdErrors.Error(StatusCode.InvalidArgument, $"etcdserver: unknown compare result {c.Result}"),
            };
            Messages.WriteCompare(w, c.Key.Span, c.RangeEnd.Span, target, result, value, number);
        }
        WriteOps(w, q.Success);
        WriteOps(w, q.Failure);
    }

    private static void WriteOps(FrameWriter w, Google.Protobuf.Collections.RepeatedField<Api.RequestOp> ops)
    {
        w.Count(ops.Count);
        foreach (var op in ops)
        {
            switch (op.RequestCase)
            {
                case Api.RequestOp.RequestOneofCase.RequestRange:
                    w.U8((byte)Op.Range);
                    WriteRange(w, op.RequestRange);
                    break;
                case Api.RequestOp.RequestOneofCase.RequestPut:
                    w.U8((byte)Op.Put);
                    WritePut(w, op.RequestPut);
                    break;
                case Api.RequestOp.RequestOneofCase.RequestDeleteRange:
                    w.U8((byte)Op.Delete);
                    WriteDelete(w, op.RequestDeleteRange);
                    break;
                case Api.RequestOp.RequestOneofCase.RequestTxn:
                    w.U8((byte)Op.Txn);
                    WriteTxn(w, op.RequestTxn);
                    break;
                default:
                    throw EtcdErrors.Error(StatusCode.InvalidArgument, "etcdserver: a transaction operation sets none of range, put, delete or txn");
            }
        }
    }

    // ---------------- answers ----------------

    internal static Api.KeyValue ReadKv(ref PayloadReader r)
    {
        var kv = new Api.KeyValue { Key = ByteString.CopyFrom(r.Bytes()) };
        var value = r.Bytes();
        if (!value.IsEmpty) kv.Value = ByteString.CopyFrom(value);
        kv.CreateRevision = r.I64();
        kv.ModRevision = r.I64();
        kv.Version = r.I64();
        kv.Lease = r.I64();
        return kv;
    }

    private static Api.KeyValue? ReadOptionalKv(ref PayloadReader r) => r.Bool() ? ReadKv(ref r) : null;

    internal static Api.RangeResponse ReadRange(ref PayloadReader r, Api.ResponseHeader header)
    {
        var response = new Api.RangeResponse { Header = header };
        var n = r.Count(40);
        for (var i = 0; i < n; i++) response.Kvs.Add(ReadKv(ref r));
        response.More = r.Bool();
        response.Count = r.I64();
        return response;
    }

    internal static Api.PutResponse ReadPut(ref PayloadReader r, Api.ResponseHeader header) => new() { Header = header, PrevKv = ReadOptionalKv(ref r) };

    internal static Api.DeleteRangeResponse ReadDelete(ref PayloadReader r, Api.ResponseHeader header)
    {
        var response = new Api.DeleteRangeResponse { Header = header, Deleted = r.I64() };
        var n = r.Count(40);
        for (var i = 0; i < n; i++) response.PrevKvs.Add(ReadKv(ref r));
        return response;
    }

    internal static Api.TxnResponse ReadTxn(ref PayloadReader r, Api.ResponseHeader header)
    {
        var response = new Api.TxnResponse { Header = header, Succeeded = r.Bool() };
        var n = r.Count(2);
        for (var i = 0; i < n; i++)
        {
            // Responses inside a transaction carry a header with the revision only, as etcd's do.
            var inner = new Api.ResponseHeader { Revision = header.Revision };
            response.Responses.Add((Op)r.U8() switch
            {
                Op.Range => new Api.ResponseOp { ResponseRange = ReadRange(ref r, inner) },
                Op.Put => new Api.ResponseOp { ResponsePut = ReadPut(ref r, inner) },
                Op.Delete => new Api.ResponseOp { ResponseDeleteRange = ReadDelete(ref r, inner) },
                Op.Txn => new Api.ResponseOp { ResponseTxn = ReadTxn(ref r, inner) },
                var t => throw new ProtocolException(ErrorCode.Malformed, $"transaction response type {t} is unknown"),
            });
        }
        return response;
    }

    // ---------------- sorting ----------------

    /// <summary>Sorts and cuts a range answer as etcd's server does, when the request asked for an order Cairn's is not.</summary>
    internal static void Sort(Api.RangeRequest q, Api.RangeResponse response)
    {
        if (!NeedsSort(q)) return;
        var order = q.SortOrder == Api.RangeRequest.Types.SortOrder.None ? Api.RangeRequest.Types.SortOrder.Ascend : q.SortOrder;
        var kvs = response.Kvs.ToList();
        Comparison<Api.KeyValue> byTarget = q.SortTarget switch
        {
            Api.RangeRequest.Types.SortTarget.Version => static (a, b) => a.Version.CompareTo(b.Version),
            Api.RangeRequest.Types.SortTarget.Create => static (a, b) => a.CreateRevision.CompareTo(b.CreateRevision),
            Api.RangeRequest.Types.SortTarget.Mod => static (a, b) => a.ModRevision.CompareTo(b.ModRevision),
            Api.RangeRequest.Types.SortTarget.Value => static (a, b) => a.Value.Span.SequenceCompareTo(b.Value.Span),
            _ => static (a, b) => a.Key.Span.SequenceCompareTo(b.Key.Span),
        };
        // Ties keep key order (the order Cairn read them in), so one request always answers the same.
        var indexed = kvs.Select((kv, i) => (kv, i)).ToList();
        indexed.Sort((x, y) =>
        {
            var c = byTarget(x.kv, y.kv);
            if (order == Api.RangeRequest.Types.SortOrder.Descend) c = -c;
            return c != 0 ? c : x.i.CompareTo(y.i);
        });
        response.Kvs.Clear();
        var limit = q.Limit > 0 ? (int)Math.Min(q.Limit, indexed.Count) : indexed.Count;
        for (var i = 0; i < limit; i++)
        {
            if (q.KeysOnly) indexed[i].kv.Value = ByteString.Empty;
            response.Kvs.Add(indexed[i].kv);
        }
        response.More = indexed.Count > limit;
    }

    private static void SortTxn(Api.TxnRequest q, Api.TxnResponse response)
    {
        var ops = response.Succeeded ? q.Success : q.Failure;
        for (var i = 0; i < ops.Count && i < response.Responses.Count; i++)
        {
            var op = ops[i];
            var answer = response.Responses[i];
            if (op.RequestCase == Api.RequestOp.RequestOneofCase.RequestRange && answer.ResponseRange is { } range) Sort(op.RequestRange, range);
            else if (op.RequestCase == Api.RequestOp.RequestOneofCase.RequestTxn && answer.ResponseTxn is { } txn) SortTxn(op.RequestTxn, txn);
        }
    }
}
