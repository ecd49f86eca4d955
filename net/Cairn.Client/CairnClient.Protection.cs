using System.Text;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>
/// Value protection (<see cref="CairnClientOptions.ValueProtector"/>): values are sealed on their way out and opened
/// on their way back, so the members see only ciphertext. Requests are rewritten before they are encoded (the caller's
/// request is left as it was); responses are rebuilt with opened values.
/// </summary>
public sealed partial class CairnClient
{
    private ValueProtector? Protector => _options.ValueProtector;

    private static PutRequest Seal(PutRequest put, ValueProtector p) =>
        put.IgnoreValue ? put : put with { Value = p.Seal(put.Key, put.Value) };

    /// <summary>The transaction with every put's value sealed; a compare on a value is refused.</summary>
    private static TxnRequest Seal(TxnRequest txn, ValueProtector p)
    {
        foreach (var c in txn.Compares)
        {
            if (c.Target == CompareTarget.Value)
            {
                throw new CairnValueProtectionException(ValueProtectionError.ValueCompare, c.Key, null,
                    $"a transaction compares the value of {CairnValueProtectionException.Name(c.Key)}, but values are sealed (each seal differs, so no compare against ciphertext can hold); " +
                    "read the key and compare its mod revision instead (Target = Mod, Number = its ModRevision)");
            }
        }
        return txn with { Success = Seal(txn.Success, p), Failure = Seal(txn.Failure, p) };
    }

    private static List<TxnOp> Seal(IReadOnlyList<TxnOp> ops, ValueProtector p)
    {
        var sealedOps = new List<TxnOp>(ops.Count);
        foreach (var op in ops)
        {
            sealedOps.Add(op.Put is { } put ? op with { Put = Seal(put, p) }
                : op.Txn is { } inner ? op with { Txn = Seal(inner, p) }
                : op);
        }
        return sealedOps;
    }

    private static KeyValue Open(KeyValue kv, ValueProtector p) => kv with { Value = p.Open(kv.Key, kv.Value) };

    private static KeyValue? OpenOrNull(KeyValue? kv, ValueProtector p) => kv is null ? null : Open(kv, p);

    private static IReadOnlyList<KeyValue> Open(IReadOnlyList<KeyValue> kvs, ValueProtector p)
    {
        if (kvs.Count == 0) return kvs;
        var opened = new KeyValue[kvs.Count];
        for (var i = 0; i < opened.Length; i++) opened[i] = Open(kvs[i], p);
        return opened;
    }

    /// <summary>A range's values opened (none to open when only keys or the count were asked for).</summary>
    private static RangeResponse Open(RangeResponse range, RangeRequest request, ValueProtector p) =>
        request.KeysOnly || request.CountOnly ? range : range with { Kvs = Open(range.Kvs, p) };

    private static PutResponse Open(PutResponse put, ValueProtector p) =>
        put.PrevKv is null ? put : put with { PrevKv = Open(put.PrevKv, p) };

    private static DeleteRangeResponse Open(DeleteRangeResponse delete, ValueProtector p) =>
        delete with { PrevKvs = Open(delete.PrevKvs, p) };

    /// <summary>Every value in a transaction's responses opened; each response is paired with the operation that made it.</summary>
    private static TxnResponse Open(TxnResponse txn, TxnRequest request, ValueProtector p)
    {
        var ops = txn.Succeeded ? request.Success : request.Failure;
        var opened = new TxnOpResponse[txn.Responses.Count];
        for (var i = 0; i < opened.Length; i++)
        {
            var r = txn.Responses[i];
            var op = i < ops.Count ? ops[i] : null;
            opened[i] = new TxnOpResponse(
                r.Range is null ? null : Open(r.Range, op?.Range ?? new RangeRequest { Key = [] }, p),
                r.Put is null ? null : Open(r.Put, p),
                r.Delete is null ? null : Open(r.Delete, p),
                r.Txn is null ? null : Open(r.Txn, op?.Txn ?? new TxnRequest(), p));
        }
        return txn with { Responses = opened };
    }

    /// <summary>A watch response's values opened: puts' values and every previous value (a delete's own value is empty).</summary>
    private static WatchResponse Open(WatchResponse response, ValueProtector p)
    {
        if (response.Events.Count == 0) return response;
        var opened = new WatchEvent[response.Events.Count];
        for (var i = 0; i < opened.Length; i++)
        {
            var e = response.Events[i];
            opened[i] = new WatchEvent(e.Type, e.Type == WatchEventType.Put ? Open(e.Kv, p) : e.Kv, OpenOrNull(e.PrevKv, p));
        }
        return response with { Events = opened };
    }

    private static async Task<Answer<RangeResponse>> OpenAsync(Task<Answer<RangeResponse>> call, RangeRequest request, ValueProtector p)
    {
        var (header, body) = await call.ConfigureAwait(false);
        return new Answer<RangeResponse>(header, Open(body, request, p));
    }

    private static async Task<Answer<PutResponse>> OpenAsync(Task<Answer<PutResponse>> call, ValueProtector p)
    {
        var (header, body) = await call.ConfigureAwait(false);
        return new Answer<PutResponse>(header, Open(body, p));
    }

    private static async Task<Answer<DeleteRangeResponse>> OpenAsync(Task<Answer<DeleteRangeResponse>> call, ValueProtector p)
    {
        var (header, body) = await call.ConfigureAwait(false);
        return new Answer<DeleteRangeResponse>(header, Open(body, p));
    }

    private static async Task<Answer<TxnResponse>> OpenAsync(Task<Answer<TxnResponse>> call, TxnRequest request, ValueProtector p)
    {
        var (header, body) = await call.ConfigureAwait(false);
        return new Answer<TxnResponse>(header, Open(body, request, p));
    }

    /// <summary>
    /// Re-seals every value under <paramref name="prefix"/> (UTF-8; empty: the whole key space) that is not sealed with
    /// the protector's current key, so older keys can be retired. Each batch is read, opened with the keyring, sealed
    /// with the current key and written back in a transaction that holds only if every key's mod revision is still the
    /// one read; a key changed meanwhile is read again and retried. Re-sealing is a put: revisions and versions move on
    /// and watchers see a PUT with the same value. Leases are kept.
    /// </summary>
    /// <returns>Values examined, values re-sealed, and values still not under the current key (changed by others on every retry; run it again).</returns>
    /// <exception cref="InvalidOperationException">The client has no <see cref="CairnClientOptions.ValueProtector"/>.</exception>
    /// <exception cref="CairnValueProtectionException">A value does not open with the keyring (the message says why and what to do).</exception>
    public Task<ResealResult> ResealAsync(string prefix, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var key = Encoding.UTF8.GetBytes(prefix);
        return ResealAsync(key.Length == 0 ? [0] : key, RangeRequest.Prefix(key), batchSize: 64, beforeWrite: null, cancellationToken);
    }

    /// <summary>As <see cref="ResealAsync(string, CancellationToken)"/> over [<paramref name="key"/>, <paramref name="rangeEnd"/>); <paramref name="beforeWrite"/> runs between read and write (tests use it to race a writer).</summary>
    internal async Task<ResealResult> ResealAsync(byte[] key, byte[] rangeEnd, int batchSize, Func<IReadOnlyList<KeyValue>, Task>? beforeWrite, CancellationToken cancellationToken)
    {
        var p = Protector ?? throw new InvalidOperationException("ResealAsync needs a client with a ValueProtector (CairnClientOptions.ValueProtector) whose current key is the one to seal with.");
        long examined = 0, resealed = 0, remaining = 0;
        var from = key;
        while (true)
        {
            var (_, range) = await RawRangeAsync(new RangeRequest { Key = from, RangeEnd = rangeEnd, Limit = batchSize }, cancellationToken).ConfigureAwait(false);
            examined += range.Kvs.Count;
            var stale = new List<KeyValue>();
            foreach (var kv in range.Kvs)
            {
                if (!ValueProtector.TryReadKeyId(kv.Value, out var id) || id != p.CurrentKeyId) stale.Add(kv);
            }
            if (stale.Count > 0)
            {
                if (beforeWrite is not null) await beforeWrite(stale).ConfigureAwait(false);
                if (await TryResealAsync(stale, p, cancellationToken).ConfigureAwait(false))
                {
                    resealed += stale.Count;
                }
                else
                {
                    // Someone changed a key of the batch: one key at a time, each read again until its write holds.
                    foreach (var kv in stale)
                    {
                        var (done, wrote) = await ResealOneAsync(kv, p, cancellationToken).ConfigureAwait(false);
                        if (wrote) resealed++;
                        if (!done) remaining++;
                    }
                }
            }
            if (!range.More || range.Kvs.Count == 0) break;
            from = [.. range.Kvs[^1].Key, 0];
        }
        return new ResealResult(examined, resealed, remaining);
    }

    /// <summary>Re-seals <paramref name="kv"/>, reading it again while others change it (a few times at most). Done: it is under the current key or gone.</summary>
    private async Task<(bool Done, bool Wrote)> ResealOneAsync(KeyValue kv, ValueProtector p, CancellationToken cancellationToken)
    {
        for (var attempt = 0; attempt < 8; attempt++)
        {
            var (_, now) = await RawRangeAsync(new RangeRequest { Key = kv.Key }, cancellationToken).ConfigureAwait(false);
            if (now.Kvs.Count == 0) return (true, false);
            var current = now.Kvs[0];
            if (ValueProtector.TryReadKeyId(current.Value, out var id) && id == p.CurrentKeyId) return (true, false);
            if (await TryResealAsync([current], p, cancellationToken).ConfigureAwait(false)) return (true, true);
        }
        return (false, false);
    }

    /// <summary>One transaction: if every key's mod revision is still the one read, put each value sealed with the current key.</summary>
    private async Task<bool> TryResealAsync(List<KeyValue> kvs, ValueProtector p, CancellationToken cancellationToken)
    {
        var compares = new Compare[kvs.Count];
        var puts = new TxnOp[kvs.Count];
        for (var i = 0; i < kvs.Count; i++)
        {
            var kv = kvs[i];
            var plaintext = p.Open(kv.Key, kv.Value);
            compares[i] = new Compare { Key = kv.Key, Target = CompareTarget.Mod, Result = CompareResult.Equal, Number = kv.ModRevision };
            puts[i] = new TxnOp { Put = new PutRequest { Key = kv.Key, Value = p.Seal(kv.Key, plaintext), Lease = kv.Lease } };
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(plaintext);
        }
        var txn = new TxnRequest { Compares = compares, Success = puts };
        var (_, response) = await CallAsync(MessageType.Txn, w => Messages.WriteTxn(w, txn), Parsers.Txn, idempotent: false, null, cancellationToken).ConfigureAwait(false);
        return response.Succeeded;
    }

    /// <summary>A range read whose values are left sealed.</summary>
    private Task<Answer<RangeResponse>> RawRangeAsync(RangeRequest request, CancellationToken cancellationToken) =>
        CallAsync(MessageType.Range, w => Messages.WriteRange(w, request, Consistency.Linearizable), Parsers.Range, idempotent: true, null, cancellationToken);
}

/// <summary>What <see cref="CairnClient.ResealAsync(string, CancellationToken)"/> did.</summary>
/// <param name="Examined">Values read.</param>
/// <param name="Resealed">Values written back sealed with the current key.</param>
/// <param name="Remaining">Values still sealed with an older key because others kept changing them; run it again.</param>
public sealed record ResealResult(long Examined, long Resealed, long Remaining);
