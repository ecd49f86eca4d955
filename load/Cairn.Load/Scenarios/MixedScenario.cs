namespace Cairn.Load.Scenarios;

/// <summary>Reads and writes mixed at a ratio: each iteration reads a key with probability <c>--read-ratio</c>, else puts one.</summary>
internal sealed class MixedScenario(LoadOptions options) : Scenario
{
    private readonly KeySpace _keys = new("mixed/", options.KeyCount, options.KeySize, options.SequentialKeys);
    private readonly byte[] _value = KeySpace.Value(options.ValueSize);

    public override string Name => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"mixed {options.ReadRatio * 100:0.#}% reads ({(options.Linearizable ? "linearizable" : "serializable")})");

    public override string StepName => "read or write";

    public override async Task InitAsync(ScenarioContext context, CancellationToken cancellationToken)
    {
        await _keys.FillAsync(context.Connections, _value, cancellationToken);
        context.Note($"filled {_keys.Count} keys of {options.ValueSize} bytes before the run");
    }

    public override async ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken)
    {
        var key = _keys.Next(client.Random);
        if (client.Random.NextDouble() < options.ReadRatio)
        {
            return await client.Connection.GetAsync(key, options.Linearizable, cancellationToken) ? Response.Ok : Response.Fail("key not found");
        }
        await client.Connection.PutAsync(key, _value, cancellationToken);
        return Response.Ok;
    }
}
