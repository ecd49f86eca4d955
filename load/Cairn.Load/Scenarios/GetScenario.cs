namespace Cairn.Load.Scenarios;

/// <summary>Reads of one key, linearizable or serializable, from a key space filled before the run.</summary>
internal sealed class GetScenario(LoadOptions options) : Scenario
{
    private readonly KeySpace _keys = new("get/", options.KeyCount, options.KeySize, options.SequentialKeys);

    public override string Name => options.Linearizable ? "get (linearizable)" : "get (serializable)";

    public override string StepName => "get";

    public override async Task InitAsync(ScenarioContext context, CancellationToken cancellationToken)
    {
        await _keys.FillAsync(context.Connections, KeySpace.Value(options.ValueSize), cancellationToken);
        context.Note($"filled {_keys.Count} keys of {options.ValueSize} bytes before the run");
    }

    public override async ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken) =>
        await client.Connection.GetAsync(_keys.Next(client.Random), options.Linearizable, cancellationToken) ? Response.Ok : Response.Fail("key not found");
}
