namespace Cairn.Load;

/// <summary>One step's figures (NBomber's step stats): latencies of the successes, failures by kind, throughput.</summary>
internal sealed record StepReport(
    string Name,
    long Ok,
    long Errors,
    double OpsPerSecond,
    double P50Ms,
    double P90Ms,
    double P99Ms,
    double P999Ms,
    double MaxMs,
    double MeanMs,
    IReadOnlyList<(string Kind, long Count)> ErrorsByKind,
    IReadOnlyList<TimelinePoint> Timeline)
{
    /// <summary>Failures as a share of everything the step did (0 … 1).</summary>
    public double ErrorRate => Ok + Errors == 0 ? 0 : (double)Errors / (Ok + Errors);
}

/// <summary>
/// The report of one run (NBomber's scenario stats): what ran against what, for how long, and each step's figures. The
/// first step is the scenario's own request; scenarios that measure something more (watch delivery) add steps.
/// </summary>
internal sealed record LoadReport(
    string Target,
    IReadOnlyList<string> Endpoints,
    string Scenario,
    string Simulation,
    int Clients,
    int Connections,
    DateTimeOffset Started,
    double Seconds,
    double LoadGeneratorCpuPercent,
    IReadOnlyList<StepReport> Steps,
    IReadOnlyList<string> Notes)
{
    public long TotalOk => Steps.Sum(s => s.Ok);

    public long TotalErrors => Steps.Sum(s => s.Errors);

    /// <summary>Failures as a share of everything every step did (0 … 1).</summary>
    public double ErrorRate => TotalOk + TotalErrors == 0 ? 0 : (double)TotalErrors / (TotalOk + TotalErrors);
}
