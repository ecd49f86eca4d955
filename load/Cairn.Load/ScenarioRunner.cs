using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Load.Scenarios;

namespace Cairn.Load;

/// <summary>
/// Drives a scenario through its load simulations and times its main step.
/// <para>
/// Closed loop: copy i of the scenario runs while i is below the current number of copies, each iteration timed from
/// its own start; a controller moves that number (linearly, when ramping) every 20 ms. Client i uses connection
/// i mod N, and clients are prepared (<see cref="Scenario.InitClientAsync"/>) before anything is timed.
/// </para>
/// <para>
/// Open loop: requests are due on an <see cref="InjectionTimeline"/>; the injector dispatches each when due without
/// waiting for earlier ones, and each is timed from the moment it was <i>due</i>, not from when it was sent. A target
/// that stalls therefore charges the stall to every request scheduled during it (no coordinated omission), and so does
/// an injector that falls behind (its lag is reported). Requests past <see cref="LoadOptions.MaxInFlight"/> wait for a
/// slot, still timed from their due time. Clients come from a pool and are prepared on first use, inside the timing.
/// </para>
/// When the phases end, requests still in flight get the request timeout to answer; those that do not are canceled
/// and counted as failures.
/// </summary>
internal sealed class ScenarioRunner : IAsyncDisposable
{
    private static readonly long TicksPerMs = Stopwatch.Frequency / 1000;

    private readonly Scenario _scenario;
    private readonly ScenarioContext _context;
    private readonly StepStats _main;
    private readonly TimeSpan _drainTimeout;
    private readonly SemaphoreSlim _slots;
    private readonly Dictionary<int, Task> _copies = [];                       // copy id → its loop; touched by the controller only
    private readonly ConcurrentDictionary<int, ScenarioClient> _closedClients = new();
    private readonly ConcurrentBag<ScenarioClient> _pool = [];                 // open-loop clients not in use
    private CancellationTokenSource _requests = new();                         // canceled to give up on requests in flight
    private int _nextOpenClientId = 1_000_000;                                 // open-loop client ids, apart from the copies'
    private int _targetCopies;                                                 // copy i iterates while i < this
    private int _inFlight;
    private int _maxInFlight;
    private long _maxLagTicks;
    private string _lastInitFailure = "client setup failed";

    public ScenarioRunner(Scenario scenario, ScenarioContext context, StepStats main, int maxInFlight, TimeSpan drainTimeout)
    {
        _scenario = scenario;
        _context = context;
        _main = main;
        _drainTimeout = drainTimeout;
        _slots = new SemaphoreSlim(maxInFlight, maxInFlight);
    }

    /// <summary>Requests in flight now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>The most requests that were in flight at once.</summary>
    public int MaxInFlight => Volatile.Read(ref _maxInFlight);

    /// <summary>Copies the closed loop runs now.</summary>
    public int Copies => Volatile.Read(ref _targetCopies);

    /// <summary>How late the open-loop injector sent its latest-sent request, in milliseconds (0 for closed loops).</summary>
    public double MaxInjectionLagMs => Interlocked.Read(ref _maxLagTicks) * 1000.0 / Stopwatch.Frequency;

    /// <summary>Prepares closed-loop clients 0 … <paramref name="count"/> − 1 (their keys, their leases) before anything is timed.</summary>
    public async Task PrepareClientsAsync(int count, CancellationToken cancellationToken)
    {
        for (var i = 0; i < count; i += 256)
        {
            await Task.WhenAll(Enumerable.Range(i, Math.Min(256, count - i)).Select(async id =>
            {
                var client = _closedClients.GetOrAdd(id, NewClient);
                await _scenario.InitClientAsync(client, cancellationToken);
                client.Initialized = true;
            }));
        }
    }

    /// <summary>Runs the phases one after another, then waits for the requests in flight (see the class summary).</summary>
    public async Task RunAsync(IReadOnlyList<LoadSimulation> phases, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(phases);
        if (_requests.IsCancellationRequested)
        {
            _requests.Dispose();
            _requests = new CancellationTokenSource();
        }
        using var abort = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var _ = cancellationToken.Register(() => _requests.Cancel());
        double closedLevel = 0, openLevel = 0;
        try
        {
            foreach (var phase in phases)
            {
                switch (phase)
                {
                    case LoadSimulation.RampingConstant r:
                        await HoldCopiesAsync((int)closedLevel, r.Copies, r.During, abort.Token);
                        break;
                    case LoadSimulation.KeepConstant k:
                        await HoldCopiesAsync(k.Copies, k.Copies, k.During, abort.Token);
                        break;
                    case LoadSimulation.RampingInject r:
                        SetCopies(0);
                        await InjectAsync(openLevel, r.Rate, r.During, abort.Token);
                        break;
                    case LoadSimulation.Inject i:
                        SetCopies(0);
                        await InjectAsync(i.Rate, i.Rate, i.During, abort.Token);
                        break;
                }
                (closedLevel, openLevel) = phase.IsOpen ? (0.0, phase.Level) : (phase.Level, 0.0);
            }
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
        }
        SetCopies(0);
        await DrainAsync();
    }

    private ScenarioClient NewClient(int id) => new(id, _context.Connections[id % _context.Connections.Count], _context);

    // ---- closed loop ----

    private async Task HoldCopiesAsync(int from, int to, TimeSpan during, CancellationToken abort)
    {
        var start = Stopwatch.GetTimestamp();
        var ticks = (long)(during.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            var elapsed = Stopwatch.GetTimestamp() - start;
            var f = ticks == 0 ? 1 : Math.Clamp((double)elapsed / ticks, 0, 1);
            SetCopies(from == to ? to : (int)Math.Round(from + (to - from) * f));
            if (elapsed >= ticks) return;
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Clamp((ticks - elapsed) / (double)TicksPerMs, 1, 20)), abort);
        }
    }

    private void SetCopies(int n)
    {
        Volatile.Write(ref _targetCopies, n);
        for (var id = 0; id < n; id++)
        {
            if (!_copies.TryGetValue(id, out var loop) || loop.IsCompleted) _copies[id] = CopyAsync(id);
        }
    }

    private async Task CopyAsync(int id)
    {
        await Task.Yield();
        var client = _closedClients.GetOrAdd(id, NewClient);
        while (id < Volatile.Read(ref _targetCopies) && !_requests.IsCancellationRequested)
        {
            if (!client.Initialized && !await InitAsync(client))
            {
                await Task.Delay(100);   // a client that cannot even start: do not spin on the failure
                continue;
            }
            Enter();
            var start = Stopwatch.GetTimestamp();
            var response = await InvokeAsync(client);
            _main.Record(response, start, Stopwatch.GetTimestamp());
            Leave();
        }
    }

    // ---- open loop ----

    /// <summary>
    /// Runs the injector on a thread of its own: it sleeps or yields between due times, and a thread-pool thread doing
    /// that would starve the continuations of the very requests it sends (the pool adds threads only every half second).
    /// </summary>
    private Task InjectAsync(double from, double to, TimeSpan during, CancellationToken abort) =>
        Task.Factory.StartNew(() => Inject(from, to, during, abort), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);

    private void Inject(double from, double to, TimeSpan during, CancellationToken abort)
    {
        var timeline = new InjectionTimeline(from, to, during);
        var start = Stopwatch.GetTimestamp();
        for (long k = 0; k < timeline.Count; k++)
        {
            var due = start + (long)(timeline.DueSeconds(k) * Stopwatch.Frequency);
            WaitUntil(due, abort);
            _slots.Wait(abort);
            var lag = Stopwatch.GetTimestamp() - due;
            if (lag > Interlocked.Read(ref _maxLagTicks)) Interlocked.Exchange(ref _maxLagTicks, lag);
            Enter();
            _ = DispatchAsync(due);
        }
        WaitUntil(start + (long)(during.TotalSeconds * Stopwatch.Frequency), abort);
    }

    private async Task DispatchAsync(long due)
    {
        try
        {
            if (!_pool.TryTake(out var client)) client = NewClient(Interlocked.Increment(ref _nextOpenClientId));
            var response = client.Initialized || await InitAsync(client) ? await InvokeAsync(client) : Response.Fail(_lastInitFailure);
            _main.Record(response, due, Stopwatch.GetTimestamp());
            if (client.Initialized) _pool.Add(client);
        }
        finally
        {
            Leave();
            _slots.Release();
        }
    }

    /// <summary>Waits until the Stopwatch reaches <paramref name="due"/>: sleeps while more than 2 ms remain, then yields the thread in a loop.</summary>
    private static void WaitUntil(long due, CancellationToken abort)
    {
        while (true)
        {
            var remaining = due - Stopwatch.GetTimestamp();
            if (remaining <= 0) return;
            abort.ThrowIfCancellationRequested();
            if (remaining > 2 * TicksPerMs) Thread.Sleep(TimeSpan.FromMilliseconds(Math.Min(50, (remaining - TicksPerMs) / (double)TicksPerMs)));
            else Thread.Yield();
        }
    }

    // ---- both ----

    private async ValueTask<bool> InitAsync(ScenarioClient client)
    {
        try
        {
            await _scenario.InitClientAsync(client, _requests.Token);
            client.Initialized = true;
            return true;
        }
        catch (Exception e)
        {
            _lastInitFailure = "client setup: " + _context.Target.Classify(e);
            _main.RecordError(_lastInitFailure);
            return false;
        }
    }

    private async ValueTask<Response> InvokeAsync(ScenarioClient client)
    {
        try
        {
            return await _scenario.RunAsync(client, _requests.Token);
        }
        catch (Exception e)
        {
            return Response.Fail(_context.Target.Classify(e));
        }
    }

    private void Enter()
    {
        var n = Interlocked.Increment(ref _inFlight);
        int max;
        while (n > (max = Volatile.Read(ref _maxInFlight)) && Interlocked.CompareExchange(ref _maxInFlight, n, max) != max)
        {
        }
    }

    private void Leave() => Interlocked.Decrement(ref _inFlight);

    private async Task DrainAsync()
    {
        var copies = Task.WhenAll(_copies.Values);
        var deadline = Stopwatch.StartNew();
        while ((!copies.IsCompleted || InFlight > 0) && deadline.Elapsed < _drainTimeout) await Task.Delay(5);
        if (!copies.IsCompleted || InFlight > 0)
        {
            await _requests.CancelAsync();
            var grace = Stopwatch.StartNew();   // a target that ignores cancellation is left behind after 5 s
            while ((!copies.IsCompleted || InFlight > 0) && grace.Elapsed < TimeSpan.FromSeconds(5)) await Task.Delay(5);
        }
        _copies.Clear();
    }

    /// <summary>Disposes every client's scenario state that is disposable (lease sessions).</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var client in _closedClients.Values.Concat(_pool))
        {
            if (client.State is IAsyncDisposable d) await d.DisposeAsync();
        }
        _requests.Dispose();
        _slots.Dispose();
    }
}
