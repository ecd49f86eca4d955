using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// The watches of one client connection, each identified by the id of the request that created it. Events are pushed
/// as <see cref="MessageType.WatchEvents"/> frames with that id; a canceled watch ends with a frame flagged Last.
/// </summary>
internal sealed class SessionWatches(ClientResponder session)
{
    private readonly Dictionary<ulong, (Watcher Watcher, CancellationTokenSource Stop)> _watches = [];
    private readonly Lock _lock = new();

    public int Count { get { lock (_lock) return _watches.Count; } }

    /// <summary>Whether <paramref name="id"/> names an open watch.</summary>
    public bool Has(ulong id)
    {
        lock (_lock) return _watches.ContainsKey(id);
    }

    /// <summary>Starts a watch and answers its create request; false when the id is in use.</summary>
    public bool Create(Member member, ulong id, WatchRequest request)
    {
        Watcher watcher;
        var stop = CancellationTokenSource.CreateLinkedTokenSource(session.Closed);
        lock (_lock)
        {
            if (_watches.ContainsKey(id))
            {
                stop.Dispose();
                return false;
            }
            watcher = member.Machine.Watch(request);
            _watches[id] = (watcher, stop);
        }
        var w = session.Begin();
        try
        {
            w.BeginFrame(MessageType.WatchCreate, FrameFlags.Response, id);
            // The header's revision is the one before the watch's first: a client that resumes from header + 1 after a
            // failover misses nothing (the member's own revision may already be past the start by now).
            Messages.WriteHeader(w, member.Header(watcher.StartRevision - 1));
            w.EndFrame();
        }
        finally
        {
            session.End();
        }
        _ = PumpAsync(member, id, watcher, stop.Token);
        return true;
    }

    private async Task PumpAsync(Member member, ulong id, Watcher watcher, CancellationToken stop)
    {
        var canceledByServer = false;
        try
        {
            await foreach (var response in watcher.ReadAllAsync(stop).ConfigureAwait(false))
            {
                canceledByServer |= response.Canceled;
                var w = session.Begin();
                try
                {
                    w.BeginFrame(MessageType.WatchEvents, FrameFlags.Response | (response.Canceled ? FrameFlags.Last : 0), id);
                    Messages.WriteHeader(w, member.Header() with { Revision = response.Header.Revision });
                    Messages.WriteWatchEvents(w, response);
                    w.EndFrame();
                }
                finally
                {
                    session.End();
                }
                if (response.Canceled) break;
            }
        }
        catch (OperationCanceledException)
        {
            if (_failure is { } f && !session.Closed.IsCancellationRequested && session.IsOpen)
            {
                // Ended by the member (its apply stopped): say why, so the client watches from another member.
                canceledByServer = true;
                session.Error(MessageType.WatchEvents, id, f.Code, f.Message);
            }
        }
        catch (Storage.CorruptDatabaseException e)
        {
            member.OnDamage(e, "a watch replaying history");
            if (session.IsOpen) session.Error(MessageType.WatchEvents, id, ErrorCode.Corrupt, $"watch ended: member {member.Name}'s database is damaged: {e.Message}; watch from another member");
        }
        catch (Exception e) when (e is KvException or Storage.StorageException or ObjectDisposedException)
        {
            if (session.IsOpen) session.Error(MessageType.WatchEvents, id, ErrorCode.Internal, $"watch ended: {e.Message}");
        }
        finally
        {
            Remove(id, sendCanceled: !canceledByServer && session.IsOpen, member);
        }
    }

    /// <summary>Cancels watch <paramref name="id"/>; false when there is no such watch.</summary>
    public bool Cancel(ulong id)
    {
        lock (_lock)
        {
            if (!_watches.TryGetValue(id, out var w)) return false;
            w.Stop.Cancel();
            return true;
        }
    }

    private void Remove(ulong id, bool sendCanceled, Member member)
    {
        lock (_lock)
        {
            if (!_watches.Remove(id, out var w)) return;
            w.Watcher.Dispose();
            w.Stop.Dispose();
        }
        if (!sendCanceled) return;
        var wr = session.Begin();
        try
        {
            wr.BeginFrame(MessageType.WatchEvents, FrameFlags.Response | FrameFlags.Last, id);
            Messages.WriteHeader(wr, member.Header());
            Messages.WriteWatchEvents(wr, new WatchResponse(new ResponseHeader(member.Header().Revision), [], Canceled: true));
            wr.EndFrame();
        }
        finally
        {
            session.End();
        }
    }

    private volatile Failure? _failure;

    private sealed record Failure(ErrorCode Code, string Message);

    /// <summary>Ends every watch with an error frame saying why (the member can no longer feed them).</summary>
    public void FailAll(ErrorCode code, string message)
    {
        _failure = new Failure(code, message);
        CancelAll();
    }

    /// <summary>Asks every watch for a progress notification (delivered in order with its events).</summary>
    public void RequestProgress()
    {
        lock (_lock)
        {
            foreach (var w in _watches.Values) w.Watcher.RequestProgress();
        }
    }

    public void CancelAll()
    {
        lock (_lock)
        {
            foreach (var w in _watches.Values) w.Stop.Cancel();
        }
    }
}
