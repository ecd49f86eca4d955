using Cairn.Client;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Load.Targets;

/// <summary>
/// A Cairn cluster through Cairn.Client. A connection is one <see cref="CairnClient"/> pinned to one endpoint (no
/// discovery, so each keeps to its member; followers forward writes to the leader); connections are spread over the
/// endpoints in order.
/// </summary>
internal sealed class CairnTarget : ILoadTarget
{
    private readonly IReadOnlyList<string> _endpoints;
    private readonly int _connections;
    private readonly TimeSpan _connectTimeout;
    private readonly TimeSpan _requestTimeout;
    private readonly List<Connection> _open = [];

    public CairnTarget(IReadOnlyList<string> endpoints, int connections, TimeSpan connectTimeout, TimeSpan requestTimeout)
    {
        _endpoints = endpoints;
        _connections = connections;
        _connectTimeout = connectTimeout;
        _requestTimeout = requestTimeout;
    }

    public string Name => "cairn";

    public IReadOnlyList<ITargetConnection> Connections => _open;

    public async Task ConnectAsync(CancellationToken cancellationToken)
    {
        for (var i = 0; i < _connections; i++)
        {
            var endpoint = _endpoints[i % _endpoints.Count];
            CairnClient client;
            try
            {
                client = new CairnClient(new CairnClientOptions
                {
                    Endpoints = [endpoint],
                    DiscoverEndpoints = false,
                    ConnectTimeout = _connectTimeout,
                    RequestTimeout = _requestTimeout,
                });
            }
            catch (ArgumentException e)
            {
                throw new LoadConfigurationException($"--endpoints: {e.Message.Replace(" (Parameter 'text')", "", StringComparison.Ordinal)}", e);
            }
            _open.Add(new Connection(client, endpoint));
        }
        await Task.WhenAll(_open.Select(async c =>
        {
            try
            {
                await c.Client.ConnectAsync(cancellationToken);
            }
            catch (CairnException e)
            {
                throw new LoadConfigurationException($"cannot reach cairn at {c.Endpoint}: {e.Message}; is a member running there? (check --endpoints)", e);
            }
        }));
    }

    public string Classify(Exception exception) => exception switch
    {
        CairnUnknownOutcomeException e => e.Code is { } code ? $"unknown outcome ({code})" : "unknown outcome (connection lost or no answer)",
        CairnUnavailableException => "unavailable (no member reachable)",
        CairnException { Code: { } code } => code.ToString(),
        CairnException => "client error",
        OperationCanceledException => "canceled (no answer by the end of the run)",
        _ => exception.GetType().Name,
    };

    public async ValueTask DisposeAsync()
    {
        foreach (var c in _open) await c.Client.DisposeAsync();
        _open.Clear();
    }

    private sealed class Connection(CairnClient client, string endpoint) : ITargetConnection
    {
        public CairnClient Client { get; } = client;

        public string Endpoint { get; } = endpoint;

        public async ValueTask<long> PutAsync(byte[] key, byte[] value, CancellationToken cancellationToken) =>
            (await Client.PutAsync(key, value, cancellationToken: cancellationToken)).Header.Revision;

        public async ValueTask<bool> GetAsync(byte[] key, bool linearizable, CancellationToken cancellationToken) =>
            (await Client.GetAsync(key, Consistency(linearizable), cancellationToken)).Body is not null;

        public async ValueTask<int> RangeAsync(byte[] key, byte[] rangeEnd, bool linearizable, CancellationToken cancellationToken) =>
            (await Client.RangeAsync(new RangeRequest { Key = key, RangeEnd = rangeEnd }, Consistency(linearizable), cancellationToken)).Body.Kvs.Count;

        public async ValueTask<(bool Swapped, long ModRevision)> CompareAndSwapAsync(byte[] key, long expectedModRevision, byte[] value, CancellationToken cancellationToken)
        {
            var (header, txn) = await Client.TxnAsync(new TxnRequest
            {
                Compares = [new Compare { Key = key, Target = CompareTarget.Mod, Result = CompareResult.Equal, Number = expectedModRevision }],
                Success = [new TxnOp { Put = new PutRequest { Key = key, Value = value } }],
                Failure = [new TxnOp { Range = new RangeRequest { Key = key } }],
            }, cancellationToken);
            if (txn.Succeeded) return (true, header.Revision);
            var kvs = txn.Responses.Count > 0 ? txn.Responses[0].Range?.Kvs : null;
            return (false, kvs is { Count: > 0 } ? kvs[0].ModRevision : 0);
        }

        public async ValueTask<long> LeaseGrantAsync(long ttlSeconds, CancellationToken cancellationToken) =>
            (await Client.LeaseGrantAsync(ttlSeconds, cancellationToken: cancellationToken)).Body.Id;

        public ValueTask<ILeaseSession> OpenLeaseSessionAsync(long leaseId, CancellationToken cancellationToken) =>
            ValueTask.FromResult<ILeaseSession>(new LeaseSession(Client, leaseId));

        public async Task WatchAsync(byte[] prefix, int watchers, WatchEventHandler onEvent, CancellationToken cancellationToken)
        {
            var request = new WatchRequest { Key = prefix, RangeEnd = RangeRequest.Prefix(prefix) };
            await Task.WhenAll(Enumerable.Range(0, watchers).Select(async w =>
            {
                try
                {
                    await foreach (var response in Client.WatchAsync(request, cancellationToken))
                    {
                        foreach (var e in response.Events) onEvent(w, e.Kv.Key, e.Kv.Value);
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                }
            }));
        }

        private static Protocol.Consistency Consistency(bool linearizable) =>
            linearizable ? Protocol.Consistency.Linearizable : Protocol.Consistency.Serializable;
    }

    private sealed class LeaseSession(CairnClient client, long id) : ILeaseSession
    {
        public async ValueTask<long> KeepAliveOnceAsync(CancellationToken cancellationToken)
        {
            try
            {
                return (await client.LeaseKeepAliveAsync(id, cancellationToken)).Body.Ttl;
            }
            catch (CairnLeaseNotFoundException)
            {
                return 0;
            }
        }

        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }
}
