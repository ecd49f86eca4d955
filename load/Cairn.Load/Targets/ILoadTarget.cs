namespace Cairn.Load.Targets;

/// <summary>
/// A system under load: a cluster reached through its own client library over <see cref="Connections"/>. Scenarios
/// are written against this interface only, so the same definition runs against Cairn and etcd.
/// </summary>
internal interface ILoadTarget : IAsyncDisposable
{
    /// <summary>"cairn" or "etcd" (fakes in tests say what they are).</summary>
    string Name { get; }

    /// <summary>The connections opened by <see cref="ConnectAsync"/>; client i of a run uses connection i mod Count.</summary>
    IReadOnlyList<ITargetConnection> Connections { get; }

    /// <summary>Opens every connection and checks that its member answers.</summary>
    /// <exception cref="LoadConfigurationException">An endpoint does not answer; the message names it and why.</exception>
    Task ConnectAsync(CancellationToken cancellationToken);

    /// <summary>The kind a failure counts under in the report ("NoLeader", "DeadlineExceeded", "unknown outcome", ...).</summary>
    string Classify(Exception exception);
}

/// <summary>Receives one watch event: which of the connection's watchers saw it, the key and the value.</summary>
internal delegate void WatchEventHandler(int watcher, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value);

/// <summary>One connection to one member, shared by the clients assigned to it. Every call is safe to make concurrently.</summary>
internal interface ITargetConnection
{
    /// <summary>The member's HOST:PORT.</summary>
    string Endpoint { get; }

    /// <summary>Puts a key; returns the revision of the put (the key's mod revision).</summary>
    ValueTask<long> PutAsync(byte[] key, byte[] value, CancellationToken cancellationToken);

    /// <summary>Reads one key; returns whether it exists.</summary>
    ValueTask<bool> GetAsync(byte[] key, bool linearizable, CancellationToken cancellationToken);

    /// <summary>Reads [key, rangeEnd); returns how many keys came back.</summary>
    ValueTask<int> RangeAsync(byte[] key, byte[] rangeEnd, bool linearizable, CancellationToken cancellationToken);

    /// <summary>
    /// A compare-and-swap transaction: if the key's mod revision is <paramref name="expectedModRevision"/>, put
    /// <paramref name="value"/>, else read the key. Returns whether it swapped and the key's mod revision after.
    /// </summary>
    ValueTask<(bool Swapped, long ModRevision)> CompareAndSwapAsync(byte[] key, long expectedModRevision, byte[] value, CancellationToken cancellationToken);

    /// <summary>Grants a lease of <paramref name="ttlSeconds"/>; returns its id.</summary>
    ValueTask<long> LeaseGrantAsync(long ttlSeconds, CancellationToken cancellationToken);

    /// <summary>Opens what renews one lease (etcd: a keep-alive stream; Cairn: unary renewals).</summary>
    ValueTask<ILeaseSession> OpenLeaseSessionAsync(long leaseId, CancellationToken cancellationToken);

    /// <summary>
    /// Opens <paramref name="watchers"/> watches of every key starting with <paramref name="prefix"/>, from now on, and
    /// hands every event to <paramref name="onEvent"/> until <paramref name="cancellationToken"/> is canceled (then
    /// the task completes). Events of one watcher arrive in revision order.
    /// </summary>
    Task WatchAsync(byte[] prefix, int watchers, WatchEventHandler onEvent, CancellationToken cancellationToken);
}

/// <summary>Renews one lease; one renewal at a time.</summary>
internal interface ILeaseSession : IAsyncDisposable
{
    /// <summary>Renews the lease once; returns its TTL in seconds (0 or less: the lease is gone).</summary>
    ValueTask<long> KeepAliveOnceAsync(CancellationToken cancellationToken);
}
