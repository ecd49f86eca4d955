namespace Cairn.Load.Scenarios;

/// <summary>Puts: a key from the key space (in order or at random) with a value of the configured size.</summary>
internal sealed class PutScenario(LoadOptions options) : Scenario
{
    private readonly KeySpace _keys = new("put/", options.KeyCount, options.KeySize, options.SequentialKeys);
    private readonly byte[] _value = KeySpace.Value(options.ValueSize);

    public override string Name => "put";

    public override string StepName => "put";

    public override async ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken)
    {
        await client.Connection.PutAsync(_keys.Next(client.Random), _value, cancellationToken);
        return Response.Ok;
    }
}
