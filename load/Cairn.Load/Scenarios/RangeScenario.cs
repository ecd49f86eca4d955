namespace Cairn.Load.Scenarios;

/// <summary>Reads of a range of N keys (a prefix holding exactly N keys, filled before the run).</summary>
internal sealed class RangeScenario(LoadOptions options) : Scenario
{
    private readonly KeySpace _keys = new("range/", options.RangeSize, options.KeySize, sequential: true);
    private byte[] _end = [];

    public override string Name => $"range of {options.RangeSize} ({(options.Linearizable ? "linearizable" : "serializable")})";

    public override string StepName => "range";

    public override async Task InitAsync(ScenarioContext context, CancellationToken cancellationToken)
    {
        _end = Kv.RangeRequest.Prefix(_keys.Prefix);
        await _keys.FillAsync(context.Connections, KeySpace.Value(options.ValueSize), cancellationToken);
        context.Note($"filled {_keys.Count} keys of {options.ValueSize} bytes under '{System.Text.Encoding.UTF8.GetString(_keys.Prefix)}' before the run");
    }

    public override async ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken)
    {
        var n = await client.Connection.RangeAsync(_keys.Prefix, _end, options.Linearizable, cancellationToken);
        return n == options.RangeSize ? Response.Ok : Response.Fail("range came back short");
    }
}
