using System.Collections.Concurrent;
using System.Text;
using Cairn.Client;
using Cairn.Kv;

namespace Cairn.Faults.Nemesis;

/// <summary>
/// Client tasks doing puts, linearizable gets, deletes and compare-and-swaps over a few keys, each recorded in a
/// <see cref="HistoryRecorder"/> (docs/faults.md, "The model"), and watchers on the keys' prefix recording every event.
/// Every value put is unique ("p{process}.{n}"), so a read names the write it saw.
/// </summary>
internal sealed class Workload
{
    public const string Prefix = "k/";
    private readonly Cluster _cluster;
    private readonly int _clients;
    private readonly string[] _keys;
    private readonly int _seed;
    private readonly ConcurrentDictionary<(long, string), Change> _committed = new();   // writes whose revision a response told
    private readonly List<Watcher> _watchers = [];
    private readonly List<Task> _tasks = [];
    private readonly CancellationTokenSource _stop = new();
    private long _okAfter;            // ok operations completed after the mark
    private volatile bool _counting;

    public Workload(Cluster cluster, int clients, int keys, int watchers, int seed)
    {
        _cluster = cluster;
        _clients = clients;
        _keys = [.. Enumerable.Range(0, keys).Select(i => $"{Prefix}{i}")];
        _seed = seed;
        for (var i = 0; i < watchers; i++) _watchers.Add(new Watcher(i, cluster));
    }

    public HistoryRecorder Recorder { get; } = new();

    public IReadOnlyList<Watcher> Watchers => _watchers;

    public IReadOnlyCollection<Change> AcknowledgedWrites => [.. _committed.Values];

    public IReadOnlyList<string> Keys => _keys;

    public void Start()
    {
        foreach (var w in _watchers) _tasks.Add(w.RunAsync(_stop.Token));
        for (var p = 0; p < _clients; p++) _tasks.Add(ClientAsync(p, _stop.Token));
    }

    /// <summary>Starts counting ok operations (to see the cluster serve again after the faults are healed).</summary>
    public void MarkRecovery()
    {
        Interlocked.Exchange(ref _okAfter, 0);
        _counting = true;
    }

    public long OkSinceMark => Interlocked.Read(ref _okAfter);

    /// <summary>Stops the clients (their operations in flight end as they may); the watchers keep going until <see cref="StopWatchersAsync"/>.</summary>
    public async Task StopClientsAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await Task.WhenAll(_tasks.Skip(_watchers.Count)).ConfigureAwait(false);
    }

    public async Task StopWatchersAsync()
    {
        foreach (var w in _watchers) w.Stop();
        await Task.WhenAll(_tasks.Take(_watchers.Count)).ConfigureAwait(false);
    }

    private CairnClient NewClient() => new(new CairnClientOptions
    {
        Endpoints = _cluster.ClientEndpoints,
        ConnectTimeout = TimeSpan.FromSeconds(1),
        RequestTimeout = TimeSpan.FromSeconds(3),
        DiscoverEndpoints = false,
    });

    private async Task ClientAsync(int process, CancellationToken stop)
    {
        var random = new Random(_seed * 1000 + process);
        var seq = 0;
        var seen = new Dictionary<string, string?>();     // last value this client saw per key: what its swaps expect
        await using var client = NewClient();
        while (!stop.IsCancellationRequested)
        {
            var key = _keys[random.Next(_keys.Length)];
            var roll = random.Next(100);
            var value = $"p{process}.{seq++}";
            // A request is not canceled by the stop: canceling it would only turn its outcome unknown.
            if (roll < 35) await GetAsync(client, process, key, seen).ConfigureAwait(false);
            else if (roll < 70) await PutAsync(client, process, key, value).ConfigureAwait(false);
            else if (roll < 80) await DeleteAsync(client, process, key).ConfigureAwait(false);
            else await SwapAsync(client, process, key, seen.GetValueOrDefault(key), value).ConfigureAwait(false);
        }
    }

    private void Ok()
    {
        if (_counting) Interlocked.Increment(ref _okAfter);
    }

    private static void Settle(PendingOperation op, Exception e, bool read = false)
    {
        if (e is CairnException { Code: { } code } && (CairnException.IsNotApplied(code) || code == Protocol.ErrorCode.NoSpace)) op.Failed();
        else if (read && e is CairnException) op.Failed();     // a read that returned no value changed nothing: dropped either way
        else op.Unknown();
    }

    private async Task GetAsync(CairnClient client, int process, string key, Dictionary<string, string?> seen)
    {
        var op = Recorder.Get(process, key);
        try
        {
            var (_, kv) = await client.GetAsync(key).ConfigureAwait(false);
            var v = kv is null ? null : Encoding.UTF8.GetString(kv.Value);
            op.Observed(v);
            seen[key] = v;
            Ok();
        }
        catch (Exception e) when (e is CairnException or IOException or OperationCanceledException or TimeoutException)
        {
            Settle(op, e, read: true);
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    private async Task PutAsync(CairnClient client, int process, string key, string value)
    {
        var op = Recorder.Put(process, key, value);
        try
        {
            var (h, _) = await client.PutAsync(key, value).ConfigureAwait(false);
            op.Ok();
            Acknowledge(Change.Put(h.Revision, key, value));
            Ok();
        }
        catch (Exception e) when (e is CairnException or IOException or OperationCanceledException or TimeoutException)
        {
            Settle(op, e);
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    private async Task DeleteAsync(CairnClient client, int process, string key)
    {
        var op = Recorder.Delete(process, key);
        try
        {
            var (h, r) = await client.DeleteAsync(key).ConfigureAwait(false);
            op.DeletedCount(r.Deleted);
            if (r.Deleted > 0) Acknowledge(Change.Delete(h.Revision, key));
            Ok();
        }
        catch (Exception e) when (e is CairnException or IOException or OperationCanceledException or TimeoutException)
        {
            Settle(op, e);
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    private async Task SwapAsync(CairnClient client, int process, string key, string? expected, string value)
    {
        var op = Recorder.CompareAndSwap(process, key, expected, value);
        var k = Encoding.UTF8.GetBytes(key);
        var compare = expected is null
            ? new Compare { Key = k, Target = CompareTarget.Create, Result = CompareResult.Equal, Number = 0 }
            : new Compare { Key = k, Target = CompareTarget.Value, Result = CompareResult.Equal, Value = Encoding.UTF8.GetBytes(expected) };
        try
        {
            var (h, r) = await client.TxnAsync(new TxnRequest
            {
                Compares = [compare],
                Success = [new TxnOp { Put = new PutRequest { Key = k, Value = Encoding.UTF8.GetBytes(value) } }],
            }).ConfigureAwait(false);
            op.Swapped(r.Succeeded);
            if (r.Succeeded) Acknowledge(Change.Put(h.Revision, key, value));
            Ok();
        }
        catch (Exception e) when (e is CairnException or IOException or OperationCanceledException or TimeoutException)
        {
            Settle(op, e);
            await Task.Delay(20).ConfigureAwait(false);
        }
    }

    private void Acknowledge(Change c)
    {
        if (!_committed.TryAdd((c.Revision, c.Key), c) && _committed[(c.Revision, c.Key)] != c)
            throw new InvalidOperationException($"two acknowledged writes claim revision {c.Revision} of {c.Key}: {_committed[(c.Revision, c.Key)]} and {c}");
    }
}

/// <summary>
/// Watches the workload's prefix from revision 1 for the whole run and keeps every event. If the client gives the
/// watch up (no member reachable for a while), it is created again from the next revision owed, as the client does.
/// </summary>
internal sealed class Watcher(int index, Cluster cluster)
{
    private readonly List<Change> _events = [];   // guarded by itself
    private readonly CancellationTokenSource _stop = new();
    private long _header;

    public int Index => index;

    public int Restarts { get; private set; }

    public string? LastError { get; private set; }

    /// <summary>The latest response header revision: every change up to it has been delivered.</summary>
    public long SyncedThrough => Interlocked.Read(ref _header);

    public IReadOnlyList<Change> Events
    {
        get { lock (_events) return [.. _events]; }
    }

    public void Stop() => _stop.Cancel();

    public async Task RunAsync(CancellationToken _)
    {
        await using var client = new CairnClient(new CairnClientOptions
        {
            Endpoints = cluster.ClientEndpoints,
            ConnectTimeout = TimeSpan.FromSeconds(1),
            RequestTimeout = TimeSpan.FromSeconds(3),
            DiscoverEndpoints = false,
        });
        long next = 1;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await foreach (var r in client.WatchAsync(Workload.Prefix, prefix: true, startRevision: next, cancellationToken: _stop.Token).ConfigureAwait(false))
                {
                    if (r.Canceled) throw new InvalidOperationException($"the watch was canceled (compacted to {r.CompactRevision})");
                    lock (_events)
                    {
                        foreach (var e in r.Events)
                        {
                            var key = Encoding.UTF8.GetString(e.Kv.Key);
                            _events.Add(e.Type == WatchEventType.Put
                                ? Change.Put(e.Kv.ModRevision, key, Encoding.UTF8.GetString(e.Kv.Value))
                                : Change.Delete(e.Kv.ModRevision, key));
                            next = Math.Max(next, e.Kv.ModRevision + 1);
                        }
                    }
                    if (r.Header.Revision > Interlocked.Read(ref _header)) Interlocked.Exchange(ref _header, r.Header.Revision);
                    next = Math.Max(next, r.Header.Revision + 1);
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (CairnException e)
            {
                LastError = e.Message;
                Restarts++;
                await Task.Delay(100, CancellationToken.None).ConfigureAwait(false);
            }
        }
    }
}
