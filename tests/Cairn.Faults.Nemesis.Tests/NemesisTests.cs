using Xunit.Abstractions;
using Cairn.Faults.Nemesis;

namespace Cairn.Faults.Nemesis.Tests;

/// <summary>
/// Short nemesis runs for CI, one per fault family, each injecting every fault of its family twice (fixed seeds) against
/// real `cairn serve` processes. Each passes only if the history is linearizable, every watcher saw exactly the
/// committed writes, every member holds the same key space, nothing crashed by itself, every fault was carried out,
/// and the cluster served again afterwards. On failure the message is the run's whole report.
/// </summary>
[Trait("Category", "Nemesis")]
public sealed class NemesisTests(ITestOutputHelper output)
{
    private async Task<RunReport> RunAsync(RunOptions options)
    {
        var report = await Runner.RunAsync(options with { Rounds = options.Rounds ?? 2, Log = output.WriteLine });
        output.WriteLine(report.ToString());
        Assert.True(report.Ok, report.ToString());
        var faults = Nemesis.Expand(options.Faults);
        foreach (var fault in faults) Assert.Contains(report.Faults, f => f.Contains($" {fault} ", StringComparison.Ordinal));
        Assert.DoesNotContain(report.Faults, f => f.Contains("not done", StringComparison.Ordinal));
        Assert.True(report.History.Operations.Count(o => o.Outcome == Outcome.Ok) > 100, "the workload hardly ran");
        return report;
    }

    [Fact]
    public async Task Kill_9_of_a_member_the_leader_and_two_of_five()
    {
        var report = await RunAsync(new RunOptions { Seed = 101, Members = 5, Faults = ["kill"] });
        Assert.True(report.LinksRelayed > 0, "the members talked through the proxies");
    }

    [Fact]
    public async Task SIGSTOP_of_a_member_and_of_the_leader_past_the_election_timeout() =>
        await RunAsync(new RunOptions { Seed = 102, Members = 3, Faults = ["pause"] });

    [Fact]
    public async Task Partitions_a_member_cut_off_the_leader_cut_off_from_its_peers_and_a_bridge()
    {
        var report = await RunAsync(new RunOptions { Seed = 103, Members = 5, Faults = ["partition"] });
        Assert.True(report.LinksRefused > 0, "the proxies cut or refused links");
    }

    [Fact]
    public async Task Member_replacement_and_leadership_transfer_under_load() =>
        await RunAsync(new RunOptions { Seed = 104, Members = 3, Faults = ["membership"] });

    [Fact]
    public async Task A_full_disk_and_a_damaged_log_and_database()
    {
        // Each member's data on a 64 MiB tmpfs: mounting must work (root), or the test fails here, loudly.
        var report = await RunAsync(new RunOptions { Seed = 105, Members = 3, Faults = ["disk"], TmpfsMiB = 64 });
        // This run's mounts are gone (another run on the machine may have its own under cairn-nemesis meanwhile).
        Assert.DoesNotContain(File.ReadAllLines("/proc/mounts"), l => l.Contains(report.Root, StringComparison.Ordinal));
    }
}

/// <summary>A long run of every fault (tests/faults/run.sh is the usual way): dotnet test --filter Category=Soak.</summary>
[Trait("Category", "Soak")]
public sealed class NemesisSoakTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Every_fault_at_random_for_a_long_time()
    {
        var minutes = double.Parse(Environment.GetEnvironmentVariable("CAIRN_NEMESIS_MINUTES") ?? "10", System.Globalization.CultureInfo.InvariantCulture);
        var seed = int.Parse(Environment.GetEnvironmentVariable("CAIRN_NEMESIS_SEED") ?? "1", System.Globalization.CultureInfo.InvariantCulture);
        var report = await Runner.RunAsync(new RunOptions
        {
            Seed = seed,
            Duration = TimeSpan.FromMinutes(minutes),
            Members = 5,
            Faults = ["all"],
            TmpfsMiB = 256,
            Log = output.WriteLine,
        });
        output.WriteLine(report.ToString());
        Assert.True(report.Ok, report.ToString());
    }
}
