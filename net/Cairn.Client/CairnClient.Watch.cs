using System.Runtime.CompilerServices;
using System.Text;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>Watches: a stream of changes that survives the loss of the member serving it.</summary>
public sealed partial class CairnClient
{
    /// <summary>Watches a key (UTF-8), or every key with the prefix when <paramref name="prefix"/>.</summary>
    public IAsyncEnumerable<WatchResponse> WatchAsync(string key, bool prefix = false, long startRevision = 0, bool prevKv = false, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(key);
        var k = Encoding.UTF8.GetBytes(key);
        return WatchAsync(new WatchRequest { Key = k.Length == 0 ? [0] : k, RangeEnd = prefix ? RangeRequest.Prefix(k) : [], StartRevision = startRevision, PrevKv = prevKv }, cancellationToken);
    }

    /// <summary>
    /// The changes to a key or range, in revision order, from <see cref="WatchRequest.StartRevision"/> (0: from now).
    /// Each response's header revision says every change up to it has been delivered. When the member serving the
    /// watch fails, the watch is created again on another member from the next revision owed, so no event is lost or
    /// delivered twice. It ends when the enumeration stops (the member is told to cancel it), or with a canceled
    /// response carrying <see cref="WatchResponse.CompactRevision"/> when the revisions it needs were compacted.
    /// </summary>
    /// <exception cref="CairnUnavailableException">No member could serve the watch within the request timeout.</exception>
    /// <exception cref="CairnValueProtectionException">With a <see cref="CairnClientOptions.ValueProtector"/>: an event's value does not open (the watch ends).</exception>
    public async IAsyncEnumerable<WatchResponse> WatchAsync(WatchRequest request, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var next = request.StartRevision; // the first revision not yet delivered (0: not known until the first member answers)
        while (true)
        {
            var (c, op, created) = await StartWatchAsync(request with { StartRevision = next }, cancellationToken).ConfigureAwait(false);
            if (next == 0) next = created.Revision + 1;
            var resume = false;
            try
            {
                while (true)
                {
                    var (response, lost) = await NextAsync(op, cancellationToken).ConfigureAwait(false);
                    if (lost)
                    {
                        resume = true;
                        break;
                    }
                    if (response!.Canceled && response.CompactRevision == 0)
                    {
                        // The member ended the watch without a reason the caller must act on (it is stopping): carry on elsewhere.
                        resume = true;
                        break;
                    }
                    next = Math.Max(next, response.Header.Revision + 1);
                    if (response.Events.Count > 0) next = Math.Max(next, response.Events[^1].Kv.ModRevision + 1);
                    yield return Protector is { } p ? Open(response, p) : response;
                    if (response.Canceled) yield break;
                }
            }
            finally
            {
                if (!resume) await CancelWatchAsync(c, op).ConfigureAwait(false);
            }
            await LeaveAsync(c).ConfigureAwait(false);
        }
    }

    /// <summary>The next response, or lost = true when the watch must be created again elsewhere.</summary>
    private static async Task<(WatchResponse? Response, bool Lost)> NextAsync(WatchOp op, CancellationToken cancellationToken)
    {
        try
        {
            if (!await op.Events.WaitToReadAsync(cancellationToken).ConfigureAwait(false)) return (null, true);
            op.Events.TryRead(out var r);
            return (r, false);
        }
        catch (ConnectionLostException)
        {
            return (null, true);
        }
        catch (CairnException e) when (e.Code is ErrorCode.Internal or ErrorCode.Stopping or ErrorCode.Corrupt)
        {
            return (null, true); // Corrupt: the member's database is damaged (it stopped applying): another member carries on
        }
    }

    /// <summary>Creates the watch on the current member, moving on (until the request timeout) when one cannot serve it.</summary>
    private async Task<(Connection Connection, WatchOp Op, WireHeader Created)> StartWatchAsync(WatchRequest request, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.RequestTimeout);
        var backoff = new StrongBox<TimeSpan>(_options.RetryBackoff);
        Exception? last = null;
        while (true)
        {
            Connection c;
            try
            {
                c = await CurrentAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (CairnUnavailableException e) when (!deadline.IsCancellationRequested)
            {
                last = e;
                if (!await BackoffAsync(backoff, deadline.Token).ConfigureAwait(false)) throw GaveUp(MessageType.WatchCreate, last, cancellationToken);
                continue;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw GaveUp(MessageType.WatchCreate, last, cancellationToken);
            }
            var op = new WatchOp(NextId());
            if (!c.TryStart(op, w => Messages.WriteWatchCreate(w, request)))
            {
                await DropAsync(c).ConfigureAwait(false);
                continue;
            }
            try
            {
                var created = await op.Created.WaitAsync(deadline.Token).ConfigureAwait(false);
                return (c, op, created);
            }
            catch (ConnectionLostException e)
            {
                last = e;
                await DropAsync(c).ConfigureAwait(false);
            }
            catch (CairnException e) when (e.Code is ErrorCode.Stopping or ErrorCode.Internal or ErrorCode.Busy or ErrorCode.TooManyRequests or ErrorCode.Corrupt)
            {
                last = e;
                await LeaveAsync(c).ConfigureAwait(false);
                if (!await BackoffAsync(backoff, deadline.Token).ConfigureAwait(false)) throw GaveUp(MessageType.WatchCreate, last, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                c.Forget(op);
                if (cancellationToken.IsCancellationRequested) throw;
                throw GaveUp(MessageType.WatchCreate, last, cancellationToken);
            }
        }
    }

    /// <summary>Tells the member to stop a watch the caller no longer reads (waits a moment for the acknowledgement).</summary>
    private async Task CancelWatchAsync(Connection c, WatchOp op)
    {
        c.Forget(op);
        if (op.Ended || !c.IsOpen) return;
        var cancel = new UnaryOp<bool>(MessageType.WatchCancel, NextId(), Parsers.None);
        if (!c.TryStart(cancel, w => w.U64(op.Id))) return;
        try
        {
            await cancel.Task.WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            Interlocked.Increment(ref _watchCancels);
        }
        catch (Exception e) when (e is CairnException or ConnectionLostException or TimeoutException)
        {
            c.Forget(cancel);
        }
    }

    private long _watchCancels;

    /// <summary>Watch cancellations the members acknowledged (for tests).</summary>
    internal long WatchCancelsAcknowledged => Interlocked.Read(ref _watchCancels);
}
