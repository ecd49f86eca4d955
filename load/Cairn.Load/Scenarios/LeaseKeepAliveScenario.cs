using Cairn.Load.Targets;

namespace Cairn.Load.Scenarios;

/// <summary>Lease renewals: each client holds one lease (granted before its first iteration) and renews it once per iteration.</summary>
internal sealed class LeaseKeepAliveScenario(LoadOptions options) : Scenario
{
    public override string Name => "lease keep-alive";

    public override string StepName => "keep-alive";

    public override async ValueTask InitClientAsync(ScenarioClient client, CancellationToken cancellationToken)
    {
        var id = await client.Connection.LeaseGrantAsync(options.LeaseTtlSeconds, cancellationToken);
        client.State = await client.Connection.OpenLeaseSessionAsync(id, cancellationToken);
    }

    public override async ValueTask<Response> RunAsync(ScenarioClient client, CancellationToken cancellationToken) =>
        await ((ILeaseSession)client.State!).KeepAliveOnceAsync(cancellationToken) > 0 ? Response.Ok : Response.Fail("lease not found");
}
