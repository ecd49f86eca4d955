using System.Buffers.Binary;
using System.Diagnostics;

namespace Cairn.Load.Scenarios;

/// <summary>
/// Watch delivery latency: <c>--watchers</c> watchers on one prefix (spread over the connections) and clients that
/// put keys under it. Each value carries the time its put was sent; every watcher that receives the event records the
/// time from that send to its receipt in the step "watch delivery", so one put yields W samples. After the run, every
/// event owed for an acknowledged put and not received within a few seconds counts as a failure of that step.
/// </summary>
internal sealed class WatchScenario(LoadOptions options) : Scenario
{
    private const byte Barrier = 0x42;   // a put that only proves a watcher is live
    private const byte Payload = 0x50;   // a timed put: the Stopwatch timestamp of its send follows

    private static readonly byte[] Prefix = "watch/"u8.ToArray();
    private static readonly byte[] BarrierKey = "watch/_barrier"u8.ToArray();

    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _watches = [];
    private bool[][] _live = [];        // [connection][watcher]: saw a barrier; written by that connection's watch task
    private int _liveCount;
    private long _acknowledged;         // puts answered OK since measuring began
    private long _delivered;            // timed events received since measuring began
    private StepStats? _delivery;
    private ScenarioContext? _context;

    public override string Name => $"watch latency ({options.Watchers} watchers)";

    public override string StepName => "put";

    public override async Task InitAsync(ScenarioContext context, CancellationToken cancellationToken)
    {
        _context = context;
        _delivery = context.AddStep("watch delivery");
        var connections = context.Connections;
        _live = new bool[connections.Count][];
        for (var c = 0; c < connections.Count; c++)
        {
            var n = options.Watchers / connections.Count + (c < options.Watchers % connections.Count ? 1 : 0);
            _live[c] = new bool[n];
            if (n == 0) continue;
            var connection = c;
            _watches.Add(connections[c].WatchAsync(Prefix, n, (w, key, value) => OnEvent(connection, w, value), _stop.Token));
        }
        // Watches start "from now": put a barrier until every watcher has seen one, so none misses a timed put.
        var deadline = Stopwatch.StartNew();
        while (Volatile.Read(ref _liveCount) < options.Watchers)
        {
            if (_watches.FirstOrDefault(t => t.IsCompleted) is { } ended) await ended;   // a watch failed: say why
            if (deadline.Elapsed > options.RequestTimeout * 3)
            {
                throw new TimeoutException($"only {Volatile.Read(ref _liveCount)} of {options.Watchers} watchers were live after {deadline.Elapsed.TotalSeconds:0} s");
            }
            await connections[0].PutAsync(BarrierKey, [Barrier], cancellationToken);
            await Task.Delay(100, cancellationToken);
        }
        context.Note($"{options.Watchers} watchers on 'watch/' over {connections.Count} connection(s), live in {deadline.Elapsed.TotalSeconds:0.0} s");
    }

    private void OnEvent(int connection, int watcher, ReadOnlySpan<byte> value)
    {
        if (value.Length >= 9 && value[0] == Payload)
        {
            var sent = BinaryPrimitives.ReadInt64LittleEndian(value[1..]);
            if (!Measured(sent)) return;   // a warm-up put
            _delivery!.RecordOk(Stopwatch.GetTimestamp() - sent);
            Interlocked.Increment(ref _delivered);
        }
        else if (value.Length == 1 && value[0] == Barrier && !_live[connection][watcher])
        {
            _live[connection][watcher] = true;
            Interlocked.Increment(ref _liveCount);
        }
    }

    /// <summary>Whether a put sent at <paramref name="sent"/> belongs to the measurement (not to the warm-up).</summary>
    private bool Measured(long sent) => _context!.MeasuringSince != 0 && sent >= _context.MeasuringSince;

    public override async ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken)
    {
        var key = client.State as byte[] ?? (byte[])(client.State = System.Text.Encoding.UTF8.GetBytes($"watch/{client.Id:D8}"));
        var value = new byte[Math.Max(9, options.ValueSize)];
        value[0] = Payload;
        var sent = Stopwatch.GetTimestamp();
        BinaryPrimitives.WriteInt64LittleEndian(value.AsSpan(1), sent);
        await client.Connection.PutAsync(key, value, cancellationToken);
        if (Measured(sent)) Interlocked.Increment(ref _acknowledged);
        return Response.Ok;
    }

    public override async Task FinishAsync(ScenarioContext context, CancellationToken cancellationToken)
    {
        // Wait for what is owed while deliveries still come in (give up after 3 s without progress).
        var owed = Interlocked.Read(ref _acknowledged) * options.Watchers;
        var last = -1L;
        var idle = Stopwatch.StartNew();
        while (Interlocked.Read(ref _delivered) < owed && idle.Elapsed < TimeSpan.FromSeconds(3))
        {
            var now = Interlocked.Read(ref _delivered);
            if (now != last)
            {
                last = now;
                idle.Restart();
            }
            await Task.Delay(20, cancellationToken);
        }
        var delivered = Interlocked.Read(ref _delivered);
        if (delivered < owed) _delivery!.RecordError("event not delivered", owed - delivered);
        context.Note($"{owed:N0} events owed to the watchers for acknowledged puts, {Math.Min(delivered, owed):N0} delivered");
        await _stop.CancelAsync();
        try
        {
            await Task.WhenAll(_watches).WaitAsync(TimeSpan.FromSeconds(5), cancellationToken);
        }
        catch (TimeoutException)
        {
            context.Note("some watches did not close within 5 s of being canceled");
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            context.Note($"a watch ended with an error: {context.Target.Classify(e)}");
        }
    }

    public override async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _stop.Dispose();
        await base.DisposeAsync();
    }
}
