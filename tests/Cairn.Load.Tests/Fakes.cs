using Cairn.Load;
using Cairn.Load.Scenarios;
using Cairn.Load.Targets;

namespace Cairn.Load.Tests;

/// <summary>An exception a fake target names by its message.</summary>
internal sealed class FakeFailure(string kind) : Exception(kind);

/// <summary>A target with <paramref name="connections"/> fake connections; failures are classified by their message.</summary>
internal sealed class FakeTarget(int connections = 1, Func<byte[], byte[], CancellationToken, ValueTask<long>>? put = null) : ILoadTarget
{
    private readonly List<ITargetConnection> _connections = [.. Enumerable.Range(0, connections).Select(i => new FakeConnection($"fake:{i + 1}", put))];

    public string Name => "fake";

    public IReadOnlyList<ITargetConnection> Connections => _connections;

    public Task ConnectAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public string Classify(Exception exception) => exception is FakeFailure f ? f.Message : exception.GetType().Name;

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

internal sealed class FakeConnection(string endpoint, Func<byte[], byte[], CancellationToken, ValueTask<long>>? put) : ITargetConnection
{
    private long _revision;

    public string Endpoint => endpoint;

    public ValueTask<long> PutAsync(byte[] key, byte[] value, CancellationToken cancellationToken) =>
        put is null ? ValueTask.FromResult(Interlocked.Increment(ref _revision)) : put(key, value, cancellationToken);

    public ValueTask<bool> GetAsync(byte[] key, bool linearizable, CancellationToken cancellationToken) => ValueTask.FromResult(true);

    public ValueTask<int> RangeAsync(byte[] key, byte[] rangeEnd, bool linearizable, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<(bool Swapped, long ModRevision)> CompareAndSwapAsync(byte[] key, long expectedModRevision, byte[] value, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<long> LeaseGrantAsync(long ttlSeconds, CancellationToken cancellationToken) => throw new NotSupportedException();

    public ValueTask<ILeaseSession> OpenLeaseSessionAsync(long leaseId, CancellationToken cancellationToken) => throw new NotSupportedException();

    public Task WatchAsync(byte[] prefix, int watchers, WatchEventHandler onEvent, CancellationToken cancellationToken) => throw new NotSupportedException();
}

/// <summary>A scenario whose step is a delegate.</summary>
internal sealed class DelegateScenario(Func<ScenarioClient, CancellationToken, ValueTask<Response>> run) : Scenario
{
    public override string Name => "delegate";

    public override string StepName => "step";

    public override ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken) => run(client, cancellationToken);
}

/// <summary>A runner over a fake target, with the context and main step it records into.</summary>
internal sealed class Harness : IAsyncDisposable
{
    public Harness(Scenario scenario, int connections = 1, int maxInFlight = 10_000)
    {
        Target = new FakeTarget(connections);
        Context = new ScenarioContext(Target, new LoadOptions());
        Main = Context.AddStep(scenario.StepName);
        Runner = new ScenarioRunner(scenario, Context, Main, maxInFlight, TimeSpan.FromSeconds(5));
    }

    public FakeTarget Target { get; }

    public ScenarioContext Context { get; }

    public StepStats Main { get; }

    public ScenarioRunner Runner { get; }

    public async Task<StepReport> RunAsync(params LoadSimulation[] phases)
    {
        await Runner.RunAsync(phases, CancellationToken.None);
        Main.Sample(1);
        return Main.ToReport(LoadSimulation.Total(phases).TotalSeconds);
    }

    public ValueTask DisposeAsync() => Runner.DisposeAsync();
}
