using System.Runtime.CompilerServices;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>
/// A client of a Cairn cluster (docs/client.md). It keeps one multiplexed connection per member it talks to and sends
/// requests to the current member; when that member fails it moves to the next endpoint. Requests that only read
/// (ranges, status, member and lease listings, keep-alives, hashes, alarms) are retried transparently until
/// <see cref="CairnClientOptions.RequestTimeout"/>; writes are retried only when they provably were not applied — the
/// member said NoLeader, Busy or Stopping, or the request never left this process — and otherwise end in a
/// <see cref="CairnUnknownOutcomeException"/>. A read answered Corrupt (the member's database is damaged there) is
/// asked of the next endpoint. Every answer comes as an <see cref="Answer{T}"/>: the member's
/// <see cref="WireHeader"/> (cluster, member, revision, term) with the body. Thread-safe; dispose to close.
/// </summary>
public sealed partial class CairnClient : IAsyncDisposable
{
    private readonly CairnClientOptions _options;
    private readonly Lock _lock = new();
    private readonly List<string> _endpoints;                              // given, then discovered; guarded by _lock
    private int _current;                                                  // index in _endpoints of the member serving requests; guarded by _lock
    private readonly Dictionary<string, Task<Connection>> _connections = []; // endpoint → its connection (or the attempt); guarded by _lock
    private readonly CancellationTokenSource _disposed = new();
    private long _nextId;
    private readonly ClientTlsContext? _tls;                               // TLS material loaded once; null: plaintext

    /// <summary>A client of the members at <paramref name="options"/>' endpoints. Connects on the first request (or <see cref="ConnectAsync"/>).</summary>
    public CairnClient(CairnClientOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        _options = options;
        _tls = options.Tls is { } tls ? new ClientTlsContext(tls) : null;
        _endpoints = [.. options.Endpoints.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>A client of the members at <paramref name="endpoints"/> (HOST:PORT), with default options.</summary>
    public CairnClient(params string[] endpoints) : this(new CairnClientOptions { Endpoints = endpoints }) { }

    /// <summary>The options it was created with.</summary>
    public CairnClientOptions Options => _options;

    /// <summary>Every endpoint known: those given, then those discovered.</summary>
    public IReadOnlyList<string> Endpoints
    {
        get { lock (_lock) return [.. _endpoints]; }
    }

    /// <summary>The endpoint requests go to now.</summary>
    public string CurrentEndpoint
    {
        get { lock (_lock) return _endpoints[_current]; }
    }

    /// <summary>Connects to the first reachable endpoint (and discovers the others) now rather than on the first request.</summary>
    /// <returns>The member's hello: protocol version, cluster id, member id, frame limit.</returns>
    /// <exception cref="CairnUnavailableException">No endpoint answered; the message names each one and why.</exception>
    public async Task<HelloResponse> ConnectAsync(CancellationToken cancellationToken = default)
    {
        var c = await CurrentAsync(cancellationToken).ConfigureAwait(false);
        return c.Hello;
    }

    private ulong NextId() => (ulong)Interlocked.Increment(ref _nextId);

    /// <summary>
    /// Sends one request and waits for its answer, with the retry rules of the class summary. <paramref name="endpoint"/>
    /// pins the request to one member (no failover); null sends it to the current member.
    /// </summary>
    internal async Task<Answer<T>> CallAsync<T>(MessageType type, Action<FrameWriter>? body, BodyParser<T> parse, bool idempotent, string? endpoint, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(_options.RequestTimeout);
        var backoff = new StrongBox<TimeSpan>(_options.RetryBackoff);
        var reachedOne = false;      // once a member answered, an unreachable cluster is a failover in progress: keep trying
        var reauthenticated = false;
        var corruptAnswers = 0;       // reads answered Corrupt (a damaged member): each is asked of the next endpoint
        Exception? last = null;
        while (true)
        {
            Connection c;
            try
            {
                c = endpoint is null ? await CurrentAsync(deadline.Token).ConfigureAwait(false) : await PinnedAsync(endpoint, deadline.Token).ConfigureAwait(false);
            }
            catch (CairnUnavailableException e) when (reachedOne && endpoint is null && !deadline.IsCancellationRequested)
            {
                last = e;
                if (!await BackoffAsync(backoff, deadline.Token).ConfigureAwait(false)) throw GaveUp(type, last, cancellationToken);
                continue;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw GaveUp(type, last, cancellationToken);
            }
            reachedOne = true;
            var op = new UnaryOp<T>(type, NextId(), parse);
            if (!c.TryStart(op, body))
            {
                await DropAsync(c).ConfigureAwait(false); // died before anything was sent: safe to send elsewhere
                continue;
            }
            try
            {
                return await op.Task.WaitAsync(deadline.Token).ConfigureAwait(false);
            }
            catch (ConnectionLostException e)
            {
                await DropAsync(c).ConfigureAwait(false);
                if (e.Written && !idempotent)
                {
                    throw new CairnUnknownOutcomeException(null,
                        $"the connection to {c.Endpoint} was lost after the {type} request was sent ({e.Reason}); it may or may not have been applied — read before retrying", c.Endpoint, e);
                }
                if (endpoint is not null && !deadline.IsCancellationRequested)
                {
                    // A pinned request gets one reconnect to its member; a second loss ends it.
                    if (last is ConnectionLostException) throw new CairnUnavailableException([(c.Endpoint, e.Reason)], e);
                }
                last = e;
            }
            catch (CairnException e) when (e.Code == ErrorCode.InvalidAuthToken && _options.Credentials is not null && !reauthenticated)
            {
                // The token ended (or auth was enabled after this connection opened): log in again and resend — the
                // member refused the request before doing anything.
                reauthenticated = true;
                last = e;
                await AuthenticateConnectionAsync(c, withPassword: true, deadline.Token).ConfigureAwait(false);
            }
            catch (CairnCorruptException e) when (idempotent && endpoint is null && ++corruptAnswers < EndpointCount)
            {
                // This member's copy of the data is damaged where the read looked (it raised the CORRUPT alarm): the
                // others hold intact copies. Ask the next one; once every endpoint answered Corrupt, give up with it.
                last = e;
                Rotate(c.Endpoint);
            }
            catch (CairnException e) when (e.Code is { } code && (CairnException.IsNotApplied(code) || (idempotent && code == ErrorCode.Timeout)))
            {
                last = e;
                if (endpoint is null)
                {
                    if (code == ErrorCode.Stopping) await LeaveAsync(c).ConfigureAwait(false);
                    else if (code == ErrorCode.NoLeader) Rotate(c.Endpoint); // this member may be cut off from the quorum: ask another next time
                }
                else if (code == ErrorCode.Stopping)
                {
                    throw;
                }
                if (!await BackoffAsync(backoff, deadline.Token).ConfigureAwait(false)) throw GaveUp(type, last, cancellationToken);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                c.Forget(op);
                if (!idempotent && op.Written)
                {
                    throw new CairnUnknownOutcomeException(null,
                        $"{c.Endpoint} did not answer the {type} request within {_options.RequestTimeout.TotalSeconds:0.###} s; it may or may not have been applied — read before retrying", c.Endpoint);
                }
                throw GaveUp(type, last ?? new CairnException(ErrorCode.Timeout, $"{c.Endpoint} did not answer the {type} request within {_options.RequestTimeout.TotalSeconds:0.###} s", c.Endpoint), cancellationToken);
            }
            catch (OperationCanceledException)
            {
                c.Forget(op);
                throw;
            }
        }
    }

    /// <summary>Waits one backoff step (doubling it); false when the deadline came first.</summary>
    private async ValueTask<bool> BackoffAsync(StrongBox<TimeSpan> backoff, CancellationToken deadline)
    {
        try
        {
            await Task.Delay(backoff.Value, deadline).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        backoff.Value = TimeSpan.FromTicks(Math.Min(backoff.Value.Ticks * 2, _options.MaxRetryBackoff.Ticks));
        return true;
    }

    /// <summary>The exception for a call that ran out of time (or was canceled) after <paramref name="last"/>.</summary>
    private Exception GaveUp(MessageType type, Exception? last, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested) return new OperationCanceledException(cancellationToken);
        return last switch
        {
            CairnException e => e,
            ConnectionLostException e => new CairnUnavailableException([(e.Endpoint, e.Reason)], e),
            _ => new CairnException(ErrorCode.Timeout, $"the {type} request got no answer within {_options.RequestTimeout.TotalSeconds:0.###} s"),
        };
    }

    /// <summary>
    /// The connection to the current member, or — when it is down — to the next endpoint that answers, in order.
    /// A member reached for the first time is asked for the member list when discovery is on.
    /// </summary>
    private async Task<Connection> CurrentAsync(CancellationToken cancellationToken)
    {
        string[] order;
        int start;
        lock (_lock)
        {
            order = [.. _endpoints];
            start = _current;
        }
        var failures = new List<(string, string)>();
        for (var i = 0; i < order.Length; i++)
        {
            var endpoint = order[(start + i) % order.Length];
            Connection c;
            try
            {
                c = await ConnectionToAsync(endpoint, cancellationToken).ConfigureAwait(false);
            }
            catch (ConnectFailedException e)
            {
                failures.Add((endpoint, e.Reason));
                continue;
            }
            lock (_lock)
            {
                var at = _endpoints.IndexOf(endpoint);
                if (at >= 0 && _current == start) _current = at;
            }
            if (_options.DiscoverEndpoints && Interlocked.Exchange(ref c.Discovered, 1) == 0) await DiscoverAsync(c, cancellationToken).ConfigureAwait(false);
            return c;
        }
        throw new CairnUnavailableException(failures);
    }

    /// <summary>The connection to one given member (for status, defragment, hash of that member).</summary>
    private async Task<Connection> PinnedAsync(string endpoint, CancellationToken cancellationToken)
    {
        try
        {
            return await ConnectionToAsync(endpoint, cancellationToken).ConfigureAwait(false);
        }
        catch (ConnectFailedException e)
        {
            throw new CairnUnavailableException([(endpoint, e.Reason)], e);
        }
    }

    /// <summary>The open connection to <paramref name="endpoint"/>, or a new one (shared by every caller that asks meanwhile).</summary>
    private async Task<Connection> ConnectionToAsync(string endpoint, CancellationToken cancellationToken)
    {
        Task<Connection> attempt;
        Task<Connection>? stale = null;
        lock (_lock)
        {
            ObjectDisposedException.ThrowIf(_disposed.IsCancellationRequested, this);
            if (!_connections.TryGetValue(endpoint, out var known) || known.IsFaulted || known.IsCanceled || (known.IsCompletedSuccessfully && !known.Result.IsOpen))
            {
                stale = known;
                known = OpenAsync(endpoint);
                _connections[endpoint] = known;
            }
            attempt = known;
        }
        if (stale is { IsCompletedSuccessfully: true }) await stale.Result.DisposeAsync().ConfigureAwait(false);
        try
        {
            return await attempt.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (_disposed.IsCancellationRequested)
        {
            throw new ObjectDisposedException(nameof(CairnClient));
        }
    }

    /// <summary>Forgets a dead (or stopping) member's connection and moves on to the next endpoint.</summary>
    private async Task DropAsync(Connection c)
    {
        lock (_lock)
        {
            if (_connections.TryGetValue(c.Endpoint, out var t) && t.IsCompletedSuccessfully && ReferenceEquals(t.Result, c)) _connections.Remove(c.Endpoint);
            if (_endpoints[_current] == c.Endpoint) _current = (_current + 1) % _endpoints.Count;
        }
        await c.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>
    /// Moves away from a member that cannot serve (stopping, or failing a watch): a dead connection is dropped; a live
    /// one leaves the pool and closes once the requests still on it are answered (closing it now would turn their
    /// definite answers into unknown outcomes).
    /// </summary>
    private async Task LeaveAsync(Connection c)
    {
        if (!c.IsOpen)
        {
            await DropAsync(c).ConfigureAwait(false);
            return;
        }
        lock (_lock)
        {
            if (_connections.TryGetValue(c.Endpoint, out var t) && t.IsCompletedSuccessfully && ReferenceEquals(t.Result, c)) _connections.Remove(c.Endpoint);
            if (_endpoints[_current] == c.Endpoint) _current = (_current + 1) % _endpoints.Count;
        }
        _ = CloseWhenIdleAsync(c);
    }

    private async Task CloseWhenIdleAsync(Connection c)
    {
        var until = DateTime.UtcNow + _options.RequestTimeout;
        while (c.IsOpen && c.PendingCount > 0 && DateTime.UtcNow < until) await Task.Delay(20).ConfigureAwait(false);
        await c.DisposeAsync().ConfigureAwait(false);
    }

    private int EndpointCount
    {
        get { lock (_lock) return _endpoints.Count; }
    }

    /// <summary>Makes the endpoint after <paramref name="endpoint"/> current (its connection stays open).</summary>
    private void Rotate(string endpoint)
    {
        lock (_lock)
        {
            if (_endpoints.Count > 1 && _endpoints[_current] == endpoint) _current = (_current + 1) % _endpoints.Count;
        }
    }

    /// <summary>Adds every member's published client address to the endpoints (failures are ignored: discovery is a help, not a need).</summary>
    private async Task DiscoverAsync(Connection c, CancellationToken cancellationToken)
    {
        var op = new UnaryOp<IReadOnlyList<MemberInfo>>(MessageType.MemberList, NextId(), Parsers.Members);
        if (!c.TryStart(op, null)) return;
        try
        {
            var members = await op.Task.WaitAsync(_options.RequestTimeout, cancellationToken).ConfigureAwait(false);
            lock (_lock)
            {
                foreach (var m in members.Body)
                {
                    if (Endpoint.IsDialable(m.ClientUrl) && !_endpoints.Contains(m.ClientUrl)) _endpoints.Add(m.ClientUrl);
                }
            }
        }
        catch (Exception e) when (e is CairnException or ConnectionLostException or TimeoutException)
        {
            c.Forget(op);
        }
    }

    /// <summary>Connections open now (for tests and diagnostics).</summary>
    internal int OpenConnections
    {
        get
        {
            lock (_lock) return _connections.Values.Count(t => t.IsCompletedSuccessfully && t.Result.IsOpen);
        }
    }

    /// <summary>Requests waiting for answers over the open connections (for tests).</summary>
    internal int PendingRequests
    {
        get
        {
            lock (_lock) return _connections.Values.Where(t => t.IsCompletedSuccessfully).Sum(t => t.Result.PendingCount);
        }
    }

    /// <summary>Socket writes and request frames over the open connections (for tests: coalescing shows as fewer writes than frames).</summary>
    internal (long Writes, long Frames) WriteCounters
    {
        get
        {
            lock (_lock)
            {
                var open = _connections.Values.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result.WriteCounters).ToList();
                return (open.Sum(c => c.Writes), open.Sum(c => c.Frames));
            }
        }
    }

    /// <summary>Closes every connection; watches end and calls in flight fail.</summary>
    public async ValueTask DisposeAsync()
    {
        List<Task<Connection>> all;
        lock (_lock)
        {
            if (_disposed.IsCancellationRequested) return;
            _disposed.Cancel();
            all = [.. _connections.Values];
            _connections.Clear();
        }
        foreach (var t in all)
        {
            try
            {
                var c = await t.ConfigureAwait(false);
                await c.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e) when (e is ConnectFailedException or OperationCanceledException or CairnException)
            {
            }
        }
        _disposed.Dispose();
    }
}
