using Cairn.Load.Targets;

namespace Cairn.Load.Scenarios;

/// <summary>
/// A workload, in NBomber's terms: what one virtual client does in one iteration (<see cref="RunAsync"/>, the
/// scenario's main step, timed by the runner), with the setup it needs first (<see cref="InitAsync"/> on the target,
/// <see cref="InitClientAsync"/> per client) and what it measures besides (further steps it adds to the context).
/// Written against <see cref="ITargetConnection"/> only, so one definition runs against every target.
/// </summary>
internal abstract class Scenario : IAsyncDisposable
{
    /// <summary>The name in the report ("put", "get (serializable)").</summary>
    public abstract string Name { get; }

    /// <summary>The name of the step <see cref="RunAsync"/> is ("put", "get", "txn").</summary>
    public abstract string StepName { get; }

    /// <summary>Prepares the target (keys a read needs, watchers) before anything is measured.</summary>
    public virtual Task InitAsync(ScenarioContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Prepares one client's state (its own key, its lease) before its first iteration.</summary>
    public virtual ValueTask InitClientAsync(ScenarioClient client, CancellationToken cancellationToken) => ValueTask.CompletedTask;

    /// <summary>One iteration. A failure is <see cref="Response.Fail"/> or an exception (the target names its kind).</summary>
    public abstract ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken);

    /// <summary>After the load stops and every request answered: settles what is still owed (watch deliveries).</summary>
    public virtual Task FinishAsync(ScenarioContext context, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Releases what the scenario holds (watches).</summary>
    public virtual ValueTask DisposeAsync() => ValueTask.CompletedTask;
}

/// <summary>What a scenario shares across clients: the target, the run's settings, the steps measured.</summary>
internal sealed class ScenarioContext
{
    private readonly List<StepStats> _steps = [];
    private readonly List<string> _notes = [];

    public ScenarioContext(ILoadTarget target, LoadOptions options)
    {
        Target = target;
        Options = options;
    }

    public ILoadTarget Target { get; }

    public IReadOnlyList<ITargetConnection> Connections => Target.Connections;

    public LoadOptions Options { get; }

    /// <summary>The Stopwatch timestamp measurement began at (after the warm-up); anything sent before it is not counted.</summary>
    public long MeasuringSince { get; set; }

    /// <summary>Every step measured, the scenario's own first.</summary>
    public IReadOnlyList<StepStats> Steps => _steps;

    /// <summary>Lines for the report (what was prepared, what was owed and never came).</summary>
    public IReadOnlyList<string> Notes
    {
        get { lock (_notes) return [.. _notes]; }
    }

    /// <summary>Adds a measured step.</summary>
    public StepStats AddStep(string name)
    {
        var step = new StepStats(name);
        _steps.Add(step);
        return step;
    }

    public void Note(string line)
    {
        lock (_notes) _notes.Add(line);
    }
}

/// <summary>One virtual client: its id, the connection it uses, its own random source and whatever state the scenario keeps for it.</summary>
internal sealed class ScenarioClient
{
    public ScenarioClient(int id, ITargetConnection connection, ScenarioContext context)
    {
        Id = id;
        Connection = connection;
        Context = context;
        Random = new Random(id * 7919 + 17);
    }

    public int Id { get; }

    public ITargetConnection Connection { get; }

    public ScenarioContext Context { get; }

    public Random Random { get; }

    /// <summary>Whether <see cref="Scenario.InitClientAsync"/> has run for this client.</summary>
    public bool Initialized { get; set; }

    /// <summary>The scenario's per-client state (disposed at the end when it is <see cref="IAsyncDisposable"/>).</summary>
    public object? State { get; set; }
}
