namespace Cairn.Kv;

/// <summary>A key with its value and history counters, as etcd reports it.</summary>
/// <param name="Key">The key.</param>
/// <param name="Value">The value (empty when the range asked for keys only).</param>
/// <param name="CreateRevision">Revision of the put that created this incarnation of the key.</param>
/// <param name="ModRevision">Revision of the last change.</param>
/// <param name="Version">Puts since creation (1 after the first); a delete ends the history, a new put starts at 1.</param>
/// <param name="Lease">Lease the key is attached to (0: none).</param>
public sealed record KeyValue(byte[] Key, byte[] Value, long CreateRevision, long ModRevision, long Version, long Lease);

/// <summary>What every response carries: the store's revision after the request.</summary>
/// <param name="Revision">Current revision of the key space.</param>
public readonly record struct ResponseHeader(long Revision);

/// <summary>A range read: one key, [Key, RangeEnd), or a prefix (see <see cref="Prefix"/>).</summary>
public sealed record RangeRequest
{
    /// <summary>First key (or the only one when <see cref="RangeEnd"/> is empty).</summary>
    public required byte[] Key { get; init; }

    /// <summary>End of the range, exclusive. Empty: just <see cref="Key"/>. A single 0 byte: every key ≥ Key.</summary>
    public byte[] RangeEnd { get; init; } = [];

    /// <summary>At most this many keys (0: no limit); <see cref="RangeResponse.More"/> tells whether more exist.</summary>
    public long Limit { get; init; }

    /// <summary>Read as of this revision (0: the current one).</summary>
    public long Revision { get; init; }

    /// <summary>Return only the count.</summary>
    public bool CountOnly { get; init; }

    /// <summary>Return keys without values.</summary>
    public bool KeysOnly { get; init; }

    /// <summary>Only keys modified at or after this revision (0: no filter).</summary>
    public long MinModRevision { get; init; }

    /// <summary>Only keys modified at or before this revision (0: no filter).</summary>
    public long MaxModRevision { get; init; }

    /// <summary>Only keys created at or after this revision (0: no filter).</summary>
    public long MinCreateRevision { get; init; }

    /// <summary>Only keys created at or before this revision (0: no filter).</summary>
    public long MaxCreateRevision { get; init; }

    /// <summary>The range end that selects every key starting with <paramref name="prefix"/>.</summary>
    public static byte[] Prefix(ReadOnlySpan<byte> prefix)
    {
        var end = prefix.ToArray();
        for (var i = end.Length - 1; i >= 0; i--)
        {
            if (end[i] < 0xFF)
            {
                end[i]++;
                return end[..(i + 1)];
            }
        }
        return [0]; // all 0xFF (or empty): no upper bound
    }
}

/// <summary>The keys a range found, in key order.</summary>
/// <param name="Header">Revision of the store when read.</param>
/// <param name="Kvs">Keys found (empty when counting only).</param>
/// <param name="More">True when the limit cut the result short.</param>
/// <param name="Count">Keys in the range (all of them, not only those returned).</param>
public sealed record RangeResponse(ResponseHeader Header, IReadOnlyList<KeyValue> Kvs, bool More, long Count);

/// <summary>A put.</summary>
public sealed record PutRequest
{
    /// <summary>The key.</summary>
    public required byte[] Key { get; init; }

    /// <summary>The value.</summary>
    public byte[] Value { get; init; } = [];

    /// <summary>Lease to attach (0: none).</summary>
    public long Lease { get; init; }

    /// <summary>Return the previous key-value.</summary>
    public bool PrevKv { get; init; }

    /// <summary>Keep the current value (the key must exist).</summary>
    public bool IgnoreValue { get; init; }

    /// <summary>Keep the current lease (the key must exist).</summary>
    public bool IgnoreLease { get; init; }
}

/// <summary>What a put did.</summary>
/// <param name="Header">Revision after the put.</param>
/// <param name="PrevKv">The previous key-value when asked for and present.</param>
public sealed record PutResponse(ResponseHeader Header, KeyValue? PrevKv);

/// <summary>Deletes one key, [Key, RangeEnd), or a prefix.</summary>
public sealed record DeleteRangeRequest
{
    /// <summary>First key (or the only one when <see cref="RangeEnd"/> is empty).</summary>
    public required byte[] Key { get; init; }

    /// <summary>End of the range, exclusive, as for <see cref="RangeRequest.RangeEnd"/>.</summary>
    public byte[] RangeEnd { get; init; } = [];

    /// <summary>Return the deleted key-values.</summary>
    public bool PrevKv { get; init; }
}

/// <summary>What a delete did.</summary>
/// <param name="Header">Revision after the delete (unchanged when nothing was deleted).</param>
/// <param name="Deleted">Keys deleted.</param>
/// <param name="PrevKvs">The deleted key-values when asked for.</param>
public sealed record DeleteRangeResponse(ResponseHeader Header, long Deleted, IReadOnlyList<KeyValue> PrevKvs);

/// <summary>What a compare looks at.</summary>
public enum CompareTarget
{
    /// <summary>The value bytes.</summary>
    Value,
    /// <summary>The version (0 for a missing key).</summary>
    Version,
    /// <summary>The create revision (0 for a missing key).</summary>
    Create,
    /// <summary>The mod revision (0 for a missing key).</summary>
    Mod,
    /// <summary>The lease (0 for none or a missing key).</summary>
    Lease,
}

/// <summary>How a compare compares.</summary>
public enum CompareResult
{
    /// <summary>Equal.</summary>
    Equal,
    /// <summary>Not equal.</summary>
    NotEqual,
    /// <summary>The key's is less than the operand.</summary>
    Less,
    /// <summary>The key's is greater than the operand.</summary>
    Greater,
}

/// <summary>One condition of a transaction, over a key or every key of a range.</summary>
public sealed record Compare
{
    /// <summary>The key (or first key of the range).</summary>
    public required byte[] Key { get; init; }

    /// <summary>End of the range, exclusive (empty: just the key).</summary>
    public byte[] RangeEnd { get; init; } = [];

    /// <summary>What to compare.</summary>
    public CompareTarget Target { get; init; }

    /// <summary>How to compare.</summary>
    public CompareResult Result { get; init; }

    /// <summary>The operand for <see cref="CompareTarget.Value"/>.</summary>
    public byte[] Value { get; init; } = [];

    /// <summary>The operand for the numeric targets.</summary>
    public long Number { get; init; }
}

/// <summary>One operation inside a transaction: exactly one of the four is set.</summary>
public sealed record TxnOp
{
    /// <summary>A range read.</summary>
    public RangeRequest? Range { get; init; }

    /// <summary>A put.</summary>
    public PutRequest? Put { get; init; }

    /// <summary>A delete.</summary>
    public DeleteRangeRequest? Delete { get; init; }

    /// <summary>A nested transaction.</summary>
    public TxnRequest? Txn { get; init; }
}

/// <summary>If every compare holds, the success operations run, else the failure ones; all at one revision, atomically.</summary>
public sealed record TxnRequest
{
    /// <summary>The conditions.</summary>
    public IReadOnlyList<Compare> Compares { get; init; } = [];

    /// <summary>Run when every compare holds.</summary>
    public IReadOnlyList<TxnOp> Success { get; init; } = [];

    /// <summary>Run otherwise.</summary>
    public IReadOnlyList<TxnOp> Failure { get; init; } = [];
}

/// <summary>One operation's response inside a transaction: the one matching its request is set.</summary>
/// <param name="Range">For a range.</param>
/// <param name="Put">For a put.</param>
/// <param name="Delete">For a delete.</param>
/// <param name="Txn">For a nested transaction.</param>
public sealed record TxnOpResponse(RangeResponse? Range = null, PutResponse? Put = null, DeleteRangeResponse? Delete = null, TxnResponse? Txn = null);

/// <summary>What a transaction did.</summary>
/// <param name="Header">Revision after it.</param>
/// <param name="Succeeded">Whether the compares held.</param>
/// <param name="Responses">One per operation run.</param>
public sealed record TxnResponse(ResponseHeader Header, bool Succeeded, IReadOnlyList<TxnOpResponse> Responses);

/// <summary>What a compaction did.</summary>
/// <param name="Header">Revision when compacted.</param>
/// <param name="Removed">History entries removed.</param>
public sealed record CompactResponse(ResponseHeader Header, long Removed);

/// <summary>A granted lease.</summary>
/// <param name="Id">Lease id.</param>
/// <param name="Ttl">Granted time to live, in seconds.</param>
/// <param name="Keys">Keys attached to it, in key order.</param>
public sealed record LeaseInfo(long Id, long Ttl, IReadOnlyList<byte[]> Keys);

/// <summary>What a lease grant did.</summary>
/// <param name="Header">Revision (unchanged by a grant).</param>
/// <param name="Id">The lease id.</param>
/// <param name="Ttl">Its time to live, in seconds.</param>
public sealed record LeaseGrantResponse(ResponseHeader Header, long Id, long Ttl);

/// <summary>What a lease revoke did.</summary>
/// <param name="Header">Revision after deleting the lease's keys.</param>
/// <param name="Deleted">Keys deleted with it.</param>
public sealed record LeaseRevokeResponse(ResponseHeader Header, long Deleted);

/// <summary>What a defragmentation did.</summary>
/// <param name="BytesBefore">File size before.</param>
/// <param name="BytesAfter">File size after.</param>
public sealed record DefragmentResult(long BytesBefore, long BytesAfter);

/// <summary>What a sync made durable: everything applied up to <paramref name="AppliedIndex"/>, at <paramref name="Revision"/>.</summary>
/// <param name="AppliedIndex">The last log index applied, now durable with everything before it.</param>
/// <param name="Revision">The store's revision as of that index.</param>
public sealed record SyncResult(ulong AppliedIndex, long Revision);
