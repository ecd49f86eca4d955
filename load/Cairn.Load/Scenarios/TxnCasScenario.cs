using System.Text;

namespace Cairn.Load.Scenarios;

/// <summary>
/// Compare-and-swap transactions: each client owns one key and swaps its value when the key's mod revision is the one
/// it last saw (so every swap should succeed; a miss means another writer or a lost answer, and counts as a failure).
/// </summary>
internal sealed class TxnCasScenario(LoadOptions options) : Scenario
{
    private readonly byte[] _value = KeySpace.Value(options.ValueSize);

    public override string Name => "txn compare-and-swap";

    public override string StepName => "txn";

    public override async ValueTask InitClientAsync(ScenarioClient client, CancellationToken cancellationToken)
    {
        var key = Encoding.UTF8.GetBytes($"cas/{client.Id:D8}");
        var revision = await client.Connection.PutAsync(key, _value, cancellationToken);
        client.State = new Owned(key, revision);
    }

    public override async ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken)
    {
        var owned = (Owned)client.State!;
        var (swapped, revision) = await client.Connection.CompareAndSwapAsync(owned.Key, owned.Revision, _value, cancellationToken);
        owned.Revision = revision;
        return swapped ? Response.Ok : Response.Fail("compare failed (mod revision moved)");
    }

    private sealed class Owned(byte[] key, long revision)
    {
        public byte[] Key { get; } = key;

        public long Revision { get; set; } = revision;
    }
}
