using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// Owner: the router's caller (checks) and the raft thread (the leader's checks before proposing).
/// Writes refused before the log (docs/server.md, "Refused before the log"): what the state machine would refuse for
/// certain — sizes, the NOSPACE alarm, the CORRUPT alarm — is refused by the member that receives the write and again
/// by the leader before it proposes, so a refused request never becomes a log entry.
/// </summary>
public sealed partial class Member
{
    /// <summary>
    /// The checks a write gets before it is forwarded or proposed, so a write the state machine would refuse never
    /// becomes a log entry: the CORRUPT alarm, the NOSPACE alarm (puts, transactions with puts, lease grants) and the
    /// key and value limits. Throws <see cref="ProtocolException"/> with the code the client sees.
    /// </summary>
    internal void CheckWrite(MessageType type, ReadOnlySpan<byte> payload)
    {
        var reader = new PayloadReader(payload);
        switch (type)
        {
            case MessageType.Put:
            {
                var key = reader.Bytes();
                var value = reader.Bytes();
                CheckPut(key, value.Length);
                break;
            }
            case MessageType.Txn:
                CheckTxn(Messages.ReadTxn(ref reader));
                break;
            case MessageType.DeleteRange:
                CheckDelete(Messages.ReadDelete(ref reader));
                break;
            case MessageType.Compact:
            case MessageType.LeaseRevoke:
            case MessageType.LeaseGrant:
                CheckAlarms(type == MessageType.LeaseGrant);
                break;
        }
    }

    /// <summary>Refuses a client write under the CORRUPT alarm, and one that adds data under the NOSPACE alarm.</summary>
    private void CheckAlarms(bool addsData)
    {
        if (CorruptRefusal() is { } corrupt) throw new ProtocolException(ErrorCode.Corrupt, corrupt);
        if (addsData && _noSpaceRaised)
        {
            throw new ProtocolException(ErrorCode.NoSpace,
                "database space exceeded (NOSPACE alarm): the write was refused before it reached the log (nothing was applied); deletes, compaction and defragmentation still work — free space, then `cairn alarm disarm` (or add units: `cairn scale --units N`)");
        }
    }

    private void CheckPut(ReadOnlySpan<byte> key, int valueLength)
    {
        CheckKey(key.Length);
        var limit = _sm.Options.MaxValueBytes;
        if (valueLength > limit) throw new ProtocolException(ErrorCode.InvalidArgument, $"value is {valueLength} bytes; the limit is {limit} (KvOptions.MaxValueBytes); nothing was written");
        CheckAlarms(addsData: true);
    }

    private void CheckKey(int length, bool allowEmpty = false)
    {
        if (length == 0 && !allowEmpty) throw new ProtocolException(ErrorCode.InvalidArgument, "the key is empty; keys are 1 byte or more; nothing was written");
        var limit = _sm.Options.MaxKeyBytes;
        if (length > limit) throw new ProtocolException(ErrorCode.InvalidArgument, $"key is {length} bytes; the limit is {limit} (KvOptions.MaxKeyBytes); nothing was written");
    }

    private void CheckDelete(DeleteRangeRequest d)
    {
        CheckKey(d.Key.Length);
        CheckAlarms(addsData: false);
    }

    private void CheckTxn(TxnRequest t)
    {
        var (writes, puts) = CheckTxnLimits(t);
        if (writes) CheckAlarms(puts);
    }

    /// <summary>Checks every key and value of a transaction (both branches, nested ones too); whether it writes, and whether it puts.</summary>
    private (bool Writes, bool Puts) CheckTxnLimits(TxnRequest t)
    {
        bool writes = false, puts = false;
        foreach (var c in t.Compares) CheckKey(c.Key.Length);
        foreach (var ops in (IReadOnlyList<TxnOp>[])[t.Success, t.Failure])
        {
            foreach (var op in ops)
            {
                if (op.Range is { } q) CheckKey(q.Key.Length);
                if (op.Put is { } p)
                {
                    CheckKey(p.Key.Length);
                    var limit = _sm.Options.MaxValueBytes;
                    if (p.Value.Length > limit) throw new ProtocolException(ErrorCode.InvalidArgument, $"value is {p.Value.Length} bytes; the limit is {limit} (KvOptions.MaxValueBytes); nothing was written");
                    writes = puts = true;
                }
                if (op.Delete is { } d)
                {
                    CheckKey(d.Key.Length);
                    writes = true;
                }
                if (op.Txn is { } inner)
                {
                    var (w, p2) = CheckTxnLimits(inner);
                    writes |= w;
                    puts |= p2;
                }
            }
        }
        return (writes, puts);
    }

    /// <summary>Whether a transaction puts anything (either branch, nested ones too): what the NOSPACE alarm refuses.</summary>
    private static bool TxnPuts(TxnRequest t)
    {
        foreach (var ops in (IReadOnlyList<TxnOp>[])[t.Success, t.Failure])
        {
            foreach (var op in ops)
            {
                if (op.Put is not null || (op.Txn is { } inner && TxnPuts(inner))) return true;
            }
        }
        return false;
    }
}
