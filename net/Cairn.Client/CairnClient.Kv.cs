using System.Runtime.InteropServices;
using System.Text;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>Reads and writes of the key space. String keys and values are UTF-8.</summary>
public sealed partial class CairnClient
{
    /// <summary>One key: its key-value, or null when it does not exist.</summary>
    public async Task<Answer<KeyValue?>> GetAsync(ReadOnlyMemory<byte> key, Consistency consistency = Consistency.Linearizable, CancellationToken cancellationToken = default)
    {
        var (header, range) = await RangeAsync(new RangeRequest { Key = Array(key) }, consistency, cancellationToken).ConfigureAwait(false);
        return new Answer<KeyValue?>(header, range.Kvs.Count > 0 ? range.Kvs[0] : null);
    }

    /// <summary>One key (UTF-8): its key-value, or null when it does not exist.</summary>
    public Task<Answer<KeyValue?>> GetAsync(string key, Consistency consistency = Consistency.Linearizable, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        return GetAsync(Encoding.UTF8.GetBytes(key), consistency, cancellationToken);
    }

    /// <summary>Every key starting with <paramref name="prefix"/> (UTF-8), in key order.</summary>
    public Task<Answer<RangeResponse>> GetPrefixAsync(string prefix, Consistency consistency = Consistency.Linearizable, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var key = Encoding.UTF8.GetBytes(prefix);
        return RangeAsync(new RangeRequest { Key = key.Length == 0 ? [0] : key, RangeEnd = RangeRequest.Prefix(key) }, consistency, cancellationToken);
    }

    /// <summary>
    /// A range read (one key, a range, a prefix; a past revision; limits, counts, filters). Linearizable reads see every
    /// write acknowledged before they started (the leader confirms them); serializable reads are served by the member
    /// asked, from what it has applied. Retried transparently across members.
    /// </summary>
    /// <exception cref="CairnCompactedException">The revision asked for was compacted.</exception>
    public Task<Answer<RangeResponse>> RangeAsync(RangeRequest request, Consistency consistency = Consistency.Linearizable, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var call = CallAsync(MessageType.Range, w => Messages.WriteRange(w, request, consistency), Parsers.Range, idempotent: true, null, cancellationToken);
        return Protector is { } p ? OpenAsync(call, request, p) : call;
    }

    /// <summary>Puts a key. <paramref name="lease"/> attaches it to a lease (0: none); <paramref name="prevKv"/> returns what it replaced.</summary>
    /// <exception cref="CairnUnknownOutcomeException">The connection was lost after sending, or the member timed out: the put may have been applied.</exception>
    public Task<Answer<PutResponse>> PutAsync(ReadOnlyMemory<byte> key, ReadOnlyMemory<byte> value, long lease = 0, bool prevKv = false, CancellationToken cancellationToken = default) =>
        PutAsync(new PutRequest { Key = Array(key), Value = Array(value), Lease = lease, PrevKv = prevKv }, cancellationToken);

    /// <summary>Puts a key (UTF-8 key and value).</summary>
    public Task<Answer<PutResponse>> PutAsync(string key, string value, long lease = 0, bool prevKv = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        return PutAsync(new PutRequest { Key = Encoding.UTF8.GetBytes(key), Value = Encoding.UTF8.GetBytes(value), Lease = lease, PrevKv = prevKv }, cancellationToken);
    }

    /// <summary>Puts a key, with every option of <see cref="PutRequest"/>.</summary>
    public Task<Answer<PutResponse>> PutAsync(PutRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Protector is not { } p) return CallAsync(MessageType.Put, w => Messages.WritePut(w, request), Parsers.Put, idempotent: false, null, cancellationToken);
        var sealedPut = Seal(request, p);
        return OpenAsync(CallAsync(MessageType.Put, w => Messages.WritePut(w, sealedPut), Parsers.Put, idempotent: false, null, cancellationToken), p);
    }

    /// <summary>Deletes a key, or every key with the prefix when <paramref name="prefix"/> (UTF-8).</summary>
    public Task<Answer<DeleteRangeResponse>> DeleteAsync(string key, bool prefix = false, bool prevKv = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var k = Encoding.UTF8.GetBytes(key);
        return DeleteAsync(new DeleteRangeRequest { Key = prefix && k.Length == 0 ? [0] : k, RangeEnd = prefix ? RangeRequest.Prefix(k) : [], PrevKv = prevKv }, cancellationToken);
    }

    /// <summary>Deletes one key.</summary>
    public Task<Answer<DeleteRangeResponse>> DeleteAsync(ReadOnlyMemory<byte> key, bool prevKv = false, CancellationToken cancellationToken = default) =>
        DeleteAsync(new DeleteRangeRequest { Key = Array(key), PrevKv = prevKv }, cancellationToken);

    /// <summary>Deletes one key or a range.</summary>
    public Task<Answer<DeleteRangeResponse>> DeleteAsync(DeleteRangeRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var call = CallAsync(MessageType.DeleteRange, w => Messages.WriteDelete(w, request), Parsers.Delete, idempotent: false, null, cancellationToken);
        return Protector is { } p && request.PrevKv ? OpenAsync(call, p) : call;
    }

    /// <summary>A transaction: compares, then the success or the failure operations, atomically at one revision.</summary>
    /// <exception cref="CairnValueProtectionException">With a <see cref="CairnClientOptions.ValueProtector"/>: a compare on a value (compare mod revisions instead).</exception>
    public Task<Answer<TxnResponse>> TxnAsync(TxnRequest request, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (Protector is not { } p) return CallAsync(MessageType.Txn, w => Messages.WriteTxn(w, request), Parsers.Txn, idempotent: false, null, cancellationToken);
        var sealedTxn = Seal(request, p);
        return OpenAsync(CallAsync(MessageType.Txn, w => Messages.WriteTxn(w, sealedTxn), Parsers.Txn, idempotent: false, null, cancellationToken), request, p);
    }

    /// <summary>Drops the history below <paramref name="revision"/> on every member (the answer comes once it is applied).</summary>
    public Task<Answer<CompactResponse>> CompactAsync(long revision, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.Compact, w => w.I64(revision), Parsers.Compact, idempotent: false, null, cancellationToken);

    /// <summary>The array behind <paramref name="m"/> when it is a whole array, else a copy.</summary>
    private static byte[] Array(ReadOnlyMemory<byte> m) =>
        MemoryMarshal.TryGetArray(m, out var segment) && segment.Array is { } a && segment.Offset == 0 && segment.Count == a.Length ? a : m.ToArray();
}
