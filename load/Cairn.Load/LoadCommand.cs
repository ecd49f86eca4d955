using System.Diagnostics;
using System.Globalization;
using Cairn.Load.Scenarios;
using Cairn.Load.Targets;

namespace Cairn.Load;

/// <summary>
/// One run of the tool: parse, connect, prepare the scenario, warm up, run the load simulations with the live
/// progress line (sampling the timeline once a second), settle, report, and say by the exit code whether failures
/// stayed under the threshold. Exit codes: 0 done, 1 too many failures (or the scenario could not be prepared), 2 bad
/// configuration or unreachable endpoints.
/// </summary>
internal static class LoadCommand
{
    public const int Done = 0;
    public const int TooManyErrors = 1;
    public const int BadConfiguration = 2;

    /// <summary>Runs with the command line <paramref name="args"/>; <paramref name="createTarget"/> replaces the real targets in tests.</summary>
    public static async Task<int> RunAsync(IReadOnlyList<string> args, TextWriter stdout, TextWriter stderr, bool progressInPlace,
        CancellationToken cancellationToken, Func<LoadOptions, ILoadTarget>? createTarget = null)
    {
        ArgumentNullException.ThrowIfNull(args);
        ArgumentNullException.ThrowIfNull(stdout);
        ArgumentNullException.ThrowIfNull(stderr);
        if (args.Contains("--help") || args.Contains("-h"))
        {
            stdout.WriteLine(LoadOptions.UsageText);
            return Done;
        }
        LoadOptions options;
        Scenario scenario;
        try
        {
            options = LoadOptions.Parse(args);
            scenario = ScenarioCatalog.Create(options);
        }
        catch (LoadConfigurationException e)
        {
            stderr.WriteLine($"cairn-load: {e.Message}");
            return BadConfiguration;
        }

        await using var scenarioLifetime = scenario;
        await using var target = (createTarget ?? TargetCatalog.Create)(options);
        try
        {
            await target.ConnectAsync(cancellationToken);
        }
        catch (LoadConfigurationException e)
        {
            stderr.WriteLine($"cairn-load: {e.Message}");
            return BadConfiguration;
        }

        var context = new ScenarioContext(target, options);
        var main = context.AddStep(scenario.StepName);
        var runner = new ScenarioRunner(scenario, context, main, options.MaxInFlight, options.RequestTimeout + TimeSpan.FromSeconds(1));
        try
        {
            try
            {
                await scenario.InitAsync(context, cancellationToken);
                await runner.PrepareClientsAsync(LoadSimulation.MaxCopies(options.Simulations), cancellationToken);
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                stderr.WriteLine($"cairn-load: preparing the {scenario.Name} scenario against {target.Name} failed: {target.Classify(e)} ({FirstLine(e.Message)})");
                return TooManyErrors;
            }

            if (options.WarmUp > TimeSpan.Zero)
            {
                var first = options.Simulations[0];
                LoadSimulation warm = first.IsOpen ? new LoadSimulation.Inject(first.Level, options.WarmUp) : new LoadSimulation.KeepConstant((int)first.Level, options.WarmUp);
                if (options.Progress) stderr.WriteLine($"cairn-load: warming up for {Duration.Format(options.WarmUp)} ({warm})");
                await runner.RunAsync([warm], cancellationToken);
            }
            foreach (var step in context.Steps) step.Reset();
            context.MeasuringSince = Stopwatch.GetTimestamp();

            var report = await MeasureAsync(options, scenario, context, runner, stderr, progressInPlace, cancellationToken);
            ReportWriter.WriteConsole(report, stdout);
            var dir = options.ReportDir ?? Path.Combine("load-reports",
                $"{report.Started.UtcDateTime.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture)}-{options.Target}-{options.Scenario}");
            try
            {
                Directory.CreateDirectory(dir);
                await File.WriteAllTextAsync(Path.Combine(dir, "report.md"), ReportWriter.Markdown(report), cancellationToken);
                await File.WriteAllTextAsync(Path.Combine(dir, "report.csv"), ReportWriter.Csv(report), cancellationToken);
                await File.WriteAllTextAsync(Path.Combine(dir, "timeline.csv"), ReportWriter.TimelineCsv(report), cancellationToken);
                LatencyChart.Save(report, Path.Combine(dir, "latency.png"));
                stdout.WriteLine($"report: {Path.Combine(dir, "report.md")} (and report.csv, timeline.csv, latency.png)");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                stderr.WriteLine($"cairn-load: cannot write the report to {dir}: {e.Message}");
                return TooManyErrors;
            }

            if (report.ErrorRate * 100 > options.MaxErrorPercent)
            {
                stderr.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"cairn-load: {report.TotalErrors:N0} of {report.TotalOk + report.TotalErrors:N0} requests failed ({report.ErrorRate * 100:0.###}%), above --max-error-percent {options.MaxErrorPercent:0.###}"));
                return TooManyErrors;
            }
            return Done;
        }
        finally
        {
            await runner.DisposeAsync();
        }
    }

    private static async Task<LoadReport> MeasureAsync(LoadOptions options, Scenario scenario, ScenarioContext context, ScenarioRunner runner,
        TextWriter stderr, bool progressInPlace, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        var clock = Stopwatch.StartNew();
        var cpu = new CpuMeter();
        var total = LoadSimulation.Total(options.Simulations).TotalSeconds;
        var progress = options.Progress ? new ProgressLine(stderr, progressInPlace) : null;
        var run = runner.RunAsync(options.Simulations, cancellationToken);
        var lastSample = 0.0;
        var shown = false;

        void SampleAll(bool show = true)
        {
            var now = clock.Elapsed.TotalSeconds;
            TimelinePoint mainPoint = default;
            for (var i = 0; i < context.Steps.Count; i++)
            {
                var p = context.Steps[i].Sample(now, keepEmpty: show);
                if (i == 0) mainPoint = p;
            }
            if (show)
            {
                progress?.Update(now, total, context.Steps[0], mainPoint, now - lastSample, runner.Copies, runner.InFlight);
                shown = true;
            }
            lastSample = now;
        }

        using (var ticker = new PeriodicTimer(TimeSpan.FromSeconds(1)))
        {
            while (!run.IsCompleted)
            {
                var tick = ticker.WaitForNextTickAsync(CancellationToken.None).AsTask();
                await Task.WhenAny(run, tick);
                if (tick.IsCompleted) SampleAll();
            }
        }
        await run;
        var loadSeconds = Math.Min(clock.Elapsed.TotalSeconds, total);
        var cpuPercent = cpu.PercentOfOneCore();
        await scenario.FinishAsync(context, CancellationToken.None);
        SampleAll(show: !shown); // a run shorter than a tick still shows its one line
        progress?.Done();

        var notes = context.Notes.ToList();
        if (options.Simulations.Any(s => s.IsOpen))
        {
            notes.Add(string.Create(CultureInfo.InvariantCulture,
                $"open loop: latency measured from each request's scheduled time; the injector was at most {runner.MaxInjectionLagMs:0.##} ms late; at most {runner.MaxInFlight:N0} requests in flight"));
        }
        var steps = context.Steps.Select(s => s.ToReport(loadSeconds)).ToList();
        return new LoadReport(context.Target.Name, options.Endpoints, scenario.Name, string.Join(",", options.Simulations),
            LoadSimulation.MaxCopies(options.Simulations), context.Connections.Count, started, loadSeconds, cpuPercent, steps, notes);
    }

    private static string FirstLine(string message)
    {
        var end = message.IndexOfAny(['\r', '\n']);
        return end < 0 ? message : message[..end];
    }
}
