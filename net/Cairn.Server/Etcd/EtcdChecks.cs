using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// The request checks etcd's gRPC layer makes before a request reaches its server, in etcd's order and with its errors:
/// an empty key, a value or lease given with ignore_value or ignore_lease, an unknown sort option, too many operations
/// in a transaction, and a key written twice in one branch. Branches that do not run are checked too, as etcd checks them.
/// </summary>
internal static class EtcdChecks
{
    public static void Range(Api.RangeRequest q)
    {
        if (q.Key.IsEmpty) throw EtcdErrors.EmptyKey();
        if (!Enum.IsDefined(q.SortOrder) || !Enum.IsDefined(q.SortTarget)) throw EtcdErrors.Error(StatusCode.InvalidArgument, "etcdserver: invalid sort option");
    }

    public static void Put(Api.PutRequest q)
    {
        if (q.Key.IsEmpty) throw EtcdErrors.EmptyKey();
        if (q.IgnoreValue && !q.Value.IsEmpty) throw EtcdErrors.ValueProvided();
        if (q.IgnoreLease && q.Lease != 0) throw EtcdErrors.LeaseProvided();
    }

    public static void Delete(Api.DeleteRangeRequest q)
    {
        if (q.Key.IsEmpty) throw EtcdErrors.EmptyKey();
    }

    public static void Txn(Api.TxnRequest q, int maxOps)
    {
        if (q.Compare.Count > maxOps || q.Success.Count > maxOps || q.Failure.Count > maxOps) throw EtcdErrors.TooManyOps();
        foreach (var c in q.Compare)
        {
            if (c.Key.IsEmpty) throw EtcdErrors.EmptyKey();
        }
        foreach (var op in q.Success) Op(op, maxOps);
        foreach (var op in q.Failure) Op(op, maxOps);
        Writes(q.Success);
        Writes(q.Failure);
    }

    private static void Op(Api.RequestOp op, int maxOps)
    {
        switch (op.RequestCase)
        {
            case Api.RequestOp.RequestOneofCase.RequestRange: Range(op.RequestRange); break;
            case Api.RequestOp.RequestOneofCase.RequestPut: Put(op.RequestPut); break;
            case Api.RequestOp.RequestOneofCase.RequestDeleteRange: Delete(op.RequestDeleteRange); break;
            case Api.RequestOp.RequestOneofCase.RequestTxn: Txn(op.RequestTxn, maxOps); break;
            default: break; // refused when written (a request op with nothing set)
        }
    }

    /// <summary>
    /// The keys one branch writes: a key put twice, or put inside a range the branch deletes, is refused. A nested
    /// transaction's two branches are each checked against what the outer branch writes, not against each other
    /// (only one of them runs).
    /// </summary>
    private static (HashSet<Key> Puts, List<(byte[] From, byte[] To)> Deletes) Writes(Google.Protobuf.Collections.RepeatedField<Api.RequestOp> ops)
    {
        var puts = new HashSet<Key>();
        var deletes = new List<(byte[] From, byte[] To)>();
        foreach (var op in ops)
        {
            switch (op.RequestCase)
            {
                case Api.RequestOp.RequestOneofCase.RequestPut:
                    if (!puts.Add(new Key(op.RequestPut.Key.ToByteArray()))) throw EtcdErrors.DuplicateKey();
                    break;
                case Api.RequestOp.RequestOneofCase.RequestDeleteRange:
                    deletes.Add((op.RequestDeleteRange.Key.ToByteArray(), op.RequestDeleteRange.RangeEnd.ToByteArray()));
                    break;
                case Api.RequestOp.RequestOneofCase.RequestTxn:
                {
                    var success = Writes(op.RequestTxn.Success);
                    var failure = Writes(op.RequestTxn.Failure);
                    var added = new HashSet<Key>();
                    foreach (var k in success.Puts.Concat(failure.Puts))
                    {
                        if (puts.Contains(k)) throw EtcdErrors.DuplicateKey();
                        added.Add(k);
                    }
                    puts.UnionWith(added);
                    deletes.AddRange(success.Deletes);
                    deletes.AddRange(failure.Deletes);
                    break;
                }
                default:
                    break;
            }
        }
        foreach (var k in puts)
        {
            foreach (var (from, to) in deletes)
            {
                if (Covers(from, to, k.Bytes)) throw EtcdErrors.DuplicateKey();
            }
        }
        return (puts, deletes);
    }

    /// <summary>Whether a delete of [from, to) covers <paramref name="key"/> (to empty: only from; to = [0]: every key from from on).</summary>
    private static bool Covers(byte[] from, byte[] to, byte[] key)
    {
        if (to.Length == 0) return from.AsSpan().SequenceEqual(key);
        if (key.AsSpan().SequenceCompareTo(from) < 0) return false;
        if (to is [0]) return true;
        return key.AsSpan().SequenceCompareTo(to) < 0;
    }

    private readonly struct Key(byte[] bytes) : IEquatable<Key>
    {
        public byte[] Bytes { get; } = bytes;
        public bool Equals(Key other) => Bytes.AsSpan().SequenceEqual(other.Bytes);
        public override bool Equals(object? obj) => obj is Key k && Equals(k);
        public override int GetHashCode()
        {
            var h = new HashCode();
            h.AddBytes(Bytes);
            return h.ToHashCode();
        }
    }
}
