using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>Leases: keys that live as long as someone keeps renewing.</summary>
public sealed partial class CairnClient
{
    /// <summary>Grants a lease of <paramref name="ttlSeconds"/>; <paramref name="id"/> 0 lets the cluster choose the id.</summary>
    public Task<Answer<LeaseGrantResponse>> LeaseGrantAsync(long ttlSeconds, long id = 0, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.LeaseGrant, w =>
        {
            w.I64(ttlSeconds);
            w.I64(id);
        }, Parsers.LeaseGrant, idempotent: false, null, cancellationToken);

    /// <summary>Revokes a lease: its keys are deleted at one revision.</summary>
    /// <exception cref="CairnLeaseNotFoundException">No such lease.</exception>
    public Task<Answer<LeaseRevokeResponse>> LeaseRevokeAsync(long id, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.LeaseRevoke, w => w.I64(id), Parsers.LeaseRevoke, idempotent: false, null, cancellationToken);

    /// <summary>Renews a lease once: it has its full TTL again.</summary>
    /// <exception cref="CairnLeaseNotFoundException">The lease expired or was revoked.</exception>
    public async Task<Answer<LeaseKeepAliveResponse>> LeaseKeepAliveAsync(long id, CancellationToken cancellationToken = default)
    {
        var answer = await CallAsync(MessageType.LeaseKeepAlive, w => w.I64(id), Parsers.LeaseKeepAlive, idempotent: true, null, cancellationToken).ConfigureAwait(false);
        if (answer.Body.Ttl <= 0) throw new CairnLeaseNotFoundException($"lease {id:x16} not found (it expired or was revoked); grant a new one");
        return answer;
    }

    /// <summary>
    /// Renews a lease every third of its TTL until <paramref name="cancellationToken"/> is canceled (then it throws
    /// <see cref="OperationCanceledException"/>, as cancellation does). A renewal that fails is retried sooner; the
    /// helper gives up only when the lease is gone.
    /// </summary>
    /// <exception cref="CairnLeaseNotFoundException">The lease expired (renewals failed for longer than its TTL) or was revoked.</exception>
    public async Task KeepLeaseAliveAsync(long id, CancellationToken cancellationToken)
    {
        var ttl = (await LeaseKeepAliveAsync(id, cancellationToken).ConfigureAwait(false)).Body.Ttl;
        var renewed = DateTime.UtcNow;
        while (true)
        {
            await Task.Delay(TimeSpan.FromSeconds(ttl / 3.0), cancellationToken).ConfigureAwait(false);
            while (true)
            {
                try
                {
                    ttl = (await LeaseKeepAliveAsync(id, cancellationToken).ConfigureAwait(false)).Body.Ttl;
                    renewed = DateTime.UtcNow;
                    break;
                }
                catch (CairnException e) when (e is not CairnLeaseNotFoundException && DateTime.UtcNow - renewed < TimeSpan.FromSeconds(ttl))
                {
                    await Task.Delay(TimeSpan.FromSeconds(Math.Min(ttl / 6.0, 0.5)), cancellationToken).ConfigureAwait(false);
                }
            }
        }
    }

    /// <summary>Starts renewing a lease in the background until the returned keeper is disposed (see <see cref="LeaseKeeper"/>).</summary>
    public LeaseKeeper KeepAlive(long id) => new(this, id);

    /// <summary>A lease's remaining time, granted TTL and (when <paramref name="keys"/>) its keys.</summary>
    /// <exception cref="CairnLeaseNotFoundException">No such lease.</exception>
    public Task<Answer<LeaseTimeToLiveResponse>> LeaseTimeToLiveAsync(long id, bool keys = false, CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.LeaseTimeToLive, w =>
        {
            w.I64(id);
            w.Bool(keys);
        }, Parsers.LeaseTimeToLive, idempotent: true, null, cancellationToken);

    /// <summary>Every lease's id.</summary>
    public Task<Answer<IReadOnlyList<long>>> LeaseListAsync(CancellationToken cancellationToken = default) =>
        CallAsync(MessageType.LeaseList, null, Parsers.Ids, idempotent: true, null, cancellationToken);
}

/// <summary>
/// Renews one lease every third of its TTL in the background (<see cref="CairnClient.KeepAlive"/>). Dispose to stop;
/// <see cref="Completion"/> faults with <see cref="CairnLeaseNotFoundException"/> if the lease is lost meanwhile.
/// </summary>
public sealed class LeaseKeeper : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();

    internal LeaseKeeper(CairnClient client, long id)
    {
        Id = id;
        Completion = RunAsync(client, id);
    }

    /// <summary>The lease kept alive.</summary>
    public long Id { get; }

    /// <summary>Completes when the keeper is disposed; faults when the lease was lost.</summary>
    public Task Completion { get; }

    private async Task RunAsync(CairnClient client, long id)
    {
        await Task.Yield();
        try
        {
            await client.KeepLeaseAliveAsync(id, _stop.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Stops renewing (the lease itself lives on until its TTL runs out, or revoke it).</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        try
        {
            await Completion.ConfigureAwait(false);
        }
        catch (CairnException)
        {
        }
        _stop.Dispose();
    }
}
