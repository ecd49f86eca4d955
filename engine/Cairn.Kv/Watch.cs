using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Threading.Channels;

namespace Cairn.Kv;

/// <summary>
/// Delivers committed changes to watchers. A watcher is either synced (fed live by <see cref="Publish"/> through a
/// bounded queue) or catching up (fed from the store). A watcher whose queue is full drops to catching up instead of
/// blocking the writer or growing without bound, and its reader replays from the store until it is level again.
/// Every watcher sees each event once, in revision order, across the switch (it tracks the next revision it owes).
/// </summary>
public sealed class WatchHub
{
    private readonly KvStateMachine _machine;
    private readonly Lock _lock = new();
    private readonly List<Watcher> _synced = [];
    private long _published;

    internal WatchHub(KvStateMachine machine, long revision, int queueCapacity)
    {
        _machine = machine;
        _published = revision;
        QueueCapacity = queueCapacity;
    }

    /// <summary>Responses a synced watcher may have queued before it falls back to catching up.</summary>
    public int QueueCapacity { get; }

    /// <summary>Watchers now.</summary>
    public int Count { get { lock (_lock) return _all; } }

    private int _all;

    /// <summary>
    /// Hands a committed batch's events to the synced watchers. With <paramref name="eventsSkipped"/> the batch made
    /// changes without events (nobody watched when it began): a watcher that joined meanwhile drops to catching up and
    /// reads them from the store, as a slow one does.
    /// </summary>
    internal void Publish(List<WatchEvent> events, long revision, bool eventsSkipped = false)
    {
        lock (_lock)
        {
            _published = revision;
            if (eventsSkipped)
            {
                _synced.Clear();
                return;
            }
            for (var i = _synced.Count - 1; i >= 0; i--)
            {
                var w = _synced[i];
                if (!w.Offer(events, revision))
                {
                    _synced.RemoveAt(i); // slow: catch up from the store
                }
            }
        }
    }

    /// <summary>
    /// The store's state was replaced (a snapshot installed) at <paramref name="revision"/>: every synced watcher drops
    /// to catching up, so its reader replays the new store's changes from the revision it is owed — or learns that
    /// they were compacted — exactly as a slow watcher does. Called while no change can be published.
    /// </summary>
    internal void Reset(long revision)
    {
        lock (_lock)
        {
            _published = revision;
            _synced.Clear();
        }
    }

    /// <summary>Sends a progress notification to every synced watcher that asked for them.</summary>
    public void NotifyProgress()
    {
        lock (_lock)
        {
            foreach (var w in _synced)
            {
                if (w.Request.ProgressNotify) w.OfferProgress(_published);
            }
        }
    }

    /// <summary>Starts a watch; read it with <see cref="Watcher.ReadAllAsync"/>.</summary>
    public Watcher Watch(WatchRequest request)
    {
        ArgumentNullException.ThrowIfNull(request);
        if (request.Key.Length == 0) throw new ArgumentException("The key is empty; watch [0] with range end [0] for every key.");
        lock (_lock)
        {
            _all++;
            var start = request.StartRevision > 0 ? request.StartRevision : _published + 1;
            return new Watcher(this, request, start);
        }
    }

    /// <summary>Under the lock: level with the store? Then join the live feed.</summary>
    internal bool TryJoin(Watcher w, long next)
    {
        lock (_lock)
        {
            if (next <= _published) return false;
            _synced.Add(w);
            return true;
        }
    }

    internal void Leave(Watcher w)
    {
        lock (_lock)
        {
            _synced.Remove(w);
            _all--;
        }
    }

    internal KvStateMachine Machine => _machine;

    /// <summary>The latest revision whose events have been handed to watchers.</summary>
    public long PublishedRevision { get { lock (_lock) return _published; } }

    /// <summary>The published revision if <paramref name="w"/> is synced with nothing queued, else null.</summary>
    internal long? IdleRevision(Watcher w)
    {
        lock (_lock) return _synced.Contains(w) && w.QueueIsEmpty ? _published : null;
    }

    internal bool IsSynced(Watcher w)
    {
        lock (_lock) return _synced.Contains(w);
    }
}

/// <summary>One watch. Dispose it (or cancel the enumeration) to stop.</summary>
public sealed class Watcher : IDisposable
{
    private readonly WatchHub _hub;
    private readonly Channel<WatchResponse> _queue;
    private long _next;          // the next revision owed to the reader; guarded by the hub's lock while synced
    private bool _disposed;

    internal Watcher(WatchHub hub, WatchRequest request, long start)
    {
        _hub = hub;
        Request = request;
        _next = start;
        StartRevision = start;
        _queue = Channel.CreateBounded<WatchResponse>(new BoundedChannelOptions(hub.QueueCapacity) { SingleReader = true, SingleWriter = false, FullMode = BoundedChannelFullMode.Wait });
    }

    /// <summary>What is watched.</summary>
    public WatchRequest Request { get; }

    /// <summary>The first revision this watch reports (a client resuming elsewhere asks for it again).</summary>
    public long StartRevision { get; }

    /// <summary>Asks for a progress notification (delivered in order with the events).</summary>
    public void RequestProgress() => _progressRequested = true;

    private volatile bool _progressRequested;

    /// <summary>Called by the hub under its lock; false when the queue is full (the watcher then catches up).</summary>
    internal bool Offer(List<WatchEvent> events, long revision)
    {
        List<WatchEvent>? mine = null;
        foreach (var e in events)
        {
            if (e.Kv.ModRevision < _next || !Wants(e)) continue;
            (mine ??= []).Add(Request.PrevKv ? e : e with { PrevKv = null });
        }
        if (mine is null)
        {
            _next = Math.Max(_next, revision + 1);
            return true;
        }
        if (!_queue.Writer.TryWrite(new WatchResponse(new ResponseHeader(revision), mine))) return false;
        _next = revision + 1;
        return true;
    }

    internal bool QueueIsEmpty => _queue.Reader.Count == 0;

    internal void OfferProgress(long revision) => _queue.Writer.TryWrite(new WatchResponse(new ResponseHeader(revision), []));

    private bool Wants(WatchEvent e) =>
        Request.Matches(e.Kv.Key) && !(e.Type == WatchEventType.Put && Request.NoPut) && !(e.Type == WatchEventType.Delete && Request.NoDelete);

    /// <summary>The responses, in revision order, until canceled (compaction) or disposed.</summary>
    public async IAsyncEnumerable<WatchResponse> ReadAllAsync([EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        try
        {
            while (!_disposed)
            {
                // Catching up: replay from the store until level with what the hub has published, then join it.
                while (true)
                {
                    var (events, revision, compacted) = _hub.Machine.ReadEvents(_next, 1000);
                    if (compacted > 0)
                    {
                        yield return new WatchResponse(new ResponseHeader(revision), [], Canceled: true, CompactRevision: compacted);
                        yield break;
                    }
                    var mine = new List<WatchEvent>();
                    var last = _next - 1;
                    foreach (var e in events)
                    {
                        last = e.Kv.ModRevision;
                        if (Wants(e)) mine.Add(Request.PrevKv ? e : e with { PrevKv = null });
                    }
                    // A batch that filled up may have stopped early (it always ends at a whole revision).
                    var more = events.Count >= 1000;
                    var readTo = more ? last : revision;
                    if (mine.Count > 0) yield return new WatchResponse(new ResponseHeader(readTo), mine);
                    _next = Math.Max(_next, readTo + 1);
                    if (!more && _hub.TryJoin(this, _next)) break;
                    cancellationToken.ThrowIfCancellationRequested();
                }
                // Synced: live responses from the queue, until the hub drops us for being slow.
                while (true)
                {
                    var reader = _queue.Reader;
                    // A requested progress notification goes out only with nothing queued ahead of it, at the
                    // revision published at that moment: every event up to it has then been delivered.
                    if (_progressRequested && _hub.IdleRevision(this) is { } idle)
                    {
                        _progressRequested = false;
                        yield return new WatchResponse(new ResponseHeader(idle), []);
                    }
                    if (reader.TryRead(out var r))
                    {
                        yield return r;
                        continue;
                    }
                    if (!IsSynced()) break;
                    using var wake = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                    wake.CancelAfter(TimeSpan.FromMilliseconds(200)); // re-check whether we were dropped
                    try
                    {
                        await reader.WaitToReadAsync(wake.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
                    {
                    }
                }
                // Dropped while the queue was full: what is still queued is owed first, then catch up from _next.
                while (_queue.Reader.TryRead(out var r)) yield return r;
            }
        }
        finally
        {
            Dispose();
        }
    }

    private bool IsSynced() => _hub.IsSynced(this);

    /// <summary>Stops the watch.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _hub.Leave(this);
    }
}
