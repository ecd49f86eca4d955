using System.Globalization;
using Cairn.Load.Scenarios;
using Cairn.Load.Targets;

namespace Cairn.Load;

/// <summary>
/// Everything one run is told: the target and how to reach it, the scenario and its parameters, the load simulation,
/// and where the report goes. <see cref="Parse"/> reads the command line; <see cref="Validate"/> refuses what cannot
/// work with a message that names the flag to fix.
/// </summary>
internal sealed record LoadOptions
{
    public string Target { get; init; } = "cairn";

    public IReadOnlyList<string> Endpoints { get; init; } = [];

    /// <summary>Connections to open (spread over the endpoints in order); 0: one per endpoint.</summary>
    public int Connections { get; init; }

    public string Scenario { get; init; } = "put";

    public IReadOnlyList<LoadSimulation> Simulations { get; init; } = [new LoadSimulation.KeepConstant(16, TimeSpan.FromSeconds(10))];

    /// <summary>Runs the first phase's level for this long before measuring; what it measures is discarded.</summary>
    public TimeSpan WarmUp { get; init; }

    /// <summary>Open loops: requests in flight beyond this wait for a slot (still timed from their scheduled time).</summary>
    public int MaxInFlight { get; init; } = 10_000;

    public int KeyCount { get; init; } = 10_000;

    public int KeySize { get; init; } = 16;

    public int ValueSize { get; init; } = 256;

    public bool SequentialKeys { get; init; }

    public bool Linearizable { get; init; } = true;

    public int RangeSize { get; init; } = 100;

    public double ReadRatio { get; init; } = 0.9;

    public int Watchers { get; init; } = 100;

    public long LeaseTtlSeconds { get; init; } = 60;

    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(5);

    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Exit with 1 when more than this share of requests (percent) failed.</summary>
    public double MaxErrorPercent { get; init; } = 1;

    /// <summary>Where report.md, report.csv, timeline.csv and latency.png go; null: load-reports/STAMP-TARGET-SCENARIO.</summary>
    public string? ReportDir { get; init; }

    /// <summary>Print the live progress line.</summary>
    public bool Progress { get; init; } = true;

    public const string Usage = """
        usage: cairn-load [--target cairn|etcd] [--endpoints HOST:PORT,...] [--connections N] [--scenario NAME]
                          [--clients C | --rate R] [--duration D] [--ramp-up D] [--load PHASES] [--warm-up D]
                          [scenario flags] [--report-dir DIR] [--max-error-percent P] [--quiet]

        Runs one scenario against a Cairn or etcd cluster and reports throughput, failures by kind and latency
        percentiles (console table, report.md, report.csv, timeline.csv, latency.png). Exit 0: done; 1: more
        failures than --max-error-percent (default 1); 2: bad configuration or unreachable endpoints.

        target
          --target cairn|etcd        cairn (Cairn.Client) or etcd (dotnet-etcd, gRPC); default cairn
          --endpoints HOST:PORT,...  members to load; default 127.0.0.1:9379 (cairn) or 127.0.0.1:2379 (etcd)
          --connections N            connections opened, spread over the endpoints; default one per endpoint
          --connect-timeout D        default 5s      --request-timeout D   default 10s

        load simulation (NBomber's): closed loop (C clients, each sends when its last answer came) or open loop
        (R requests per second on a timeline, latency measured from each request's scheduled time)
          --clients C                closed loop with C clients (default 16)
          --rate R                   open loop at R requests per second
          --duration D               how long to keep the load constant (default 10s; durations: 500ms, 10s, 2m)
          --ramp-up D                ramp from 0 to C clients (or R per second) over D first
          --load PHASES              the phases explicitly, comma-separated KIND:LEVEL:DURATION with KIND one of
                                     ramping-constant, keep-constant (LEVEL: clients), ramping-inject, inject
                                     (LEVEL: requests/s); e.g. ramping-constant:64:5s,keep-constant:64:30s
          --warm-up D                run the first phase's level for D before measuring (default 0s)
          --max-in-flight N          open loop: most requests outstanding at once (default 10000)

        scenarios (--scenario)
        {scenarios}
        scenario flags
          --key-count N (10000)  --key-size N (16)  --value-size N (256)  --keys random|sequential (random)
          --consistency linearizable|serializable (linearizable)  --range-size N (100)  --read-ratio F (0.9)
          --watchers N (100)  --lease-ttl SECONDS (60)
        """;

    public static string UsageText => Usage.Replace("{scenarios}",
        string.Join(Environment.NewLine, ScenarioCatalog.All.Select(s => $"  {s.Name,-26} {s.What}")), StringComparison.Ordinal);

    /// <summary>Reads the command line.</summary>
    /// <exception cref="LoadConfigurationException">A flag is unknown, lacks its value, or its value is bad.</exception>
    public static LoadOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var o = new LoadOptions();
        string? endpoints = null;
        int? clients = null;
        double? rate = null;
        TimeSpan? duration = null, rampUp = null;
        string? load = null;
        for (var i = 0; i < args.Count; i++)
        {
            var flag = args[i];
            if (flag == "--quiet")
            {
                o = o with { Progress = false };
                continue;
            }
            if (!flag.StartsWith("--", StringComparison.Ordinal)) throw new LoadConfigurationException($"unexpected argument '{flag}' (flags start with --; see --help)");
            if (i + 1 >= args.Count) throw new LoadConfigurationException($"{flag} needs a value");
            var v = args[++i];
            switch (flag)
            {
                case "--target": o = o with { Target = v }; break;
                case "--endpoints": endpoints = v; break;
                case "--connections": o = o with { Connections = Whole(flag, v, 1, 10_000) }; break;
                case "--scenario": o = o with { Scenario = v }; break;
                case "--clients": clients = Whole(flag, v, 1, 100_000); break;
                case "--rate": rate = Number(flag, v, 0.001, 10_000_000); break;
                case "--duration": duration = Duration.Parse(flag, v); break;
                case "--ramp-up": rampUp = Duration.Parse(flag, v); break;
                case "--load": load = v; break;
                case "--warm-up": o = o with { WarmUp = Duration.Parse(flag, v) }; break;
                case "--max-in-flight": o = o with { MaxInFlight = Whole(flag, v, 1, 1_000_000) }; break;
                case "--key-count": o = o with { KeyCount = Whole(flag, v, 1, 10_000_000) }; break;
                case "--key-size": o = o with { KeySize = Whole(flag, v, 1, 4096) }; break;
                case "--value-size": o = o with { ValueSize = Whole(flag, v, 0, 1 << 20) }; break;
                case "--keys":
                    o = o with
                    {
                        SequentialKeys = v switch
                        {
                            "sequential" => true,
                            "random" => false,
                            _ => throw new LoadConfigurationException($"--keys '{v}': use sequential or random"),
                        },
                    };
                    break;
                case "--consistency":
                    o = o with
                    {
                        Linearizable = v switch
                        {
                            "linearizable" or "l" => true,
                            "serializable" or "s" => false,
                            _ => throw new LoadConfigurationException($"--consistency '{v}': use linearizable or serializable"),
                        },
                    };
                    break;
                case "--range-size": o = o with { RangeSize = Whole(flag, v, 1, 1_000_000) }; break;
                case "--read-ratio": o = o with { ReadRatio = Number(flag, v, 0, 1) }; break;
                case "--watchers": o = o with { Watchers = Whole(flag, v, 1, 1_000_000) }; break;
                case "--lease-ttl": o = o with { LeaseTtlSeconds = Whole(flag, v, 1, 1_000_000) }; break;
                case "--connect-timeout": o = o with { ConnectTimeout = Duration.Parse(flag, v) }; break;
                case "--request-timeout": o = o with { RequestTimeout = Duration.Parse(flag, v) }; break;
                case "--max-error-percent": o = o with { MaxErrorPercent = Number(flag, v, 0, 100) }; break;
                case "--report-dir": o = o with { ReportDir = v }; break;
                default: throw new LoadConfigurationException($"unknown flag '{flag}' (see --help)");
            }
        }

        if (load is not null)
        {
            if (clients is not null || rate is not null || duration is not null || rampUp is not null)
            {
                throw new LoadConfigurationException("--load gives the phases itself; leave out --clients, --rate, --duration and --ramp-up");
            }
            o = o with { Simulations = LoadSimulation.Parse(load) };
        }
        else
        {
            if (clients is not null && rate is not null) throw new LoadConfigurationException("give --clients (closed loop) or --rate (open loop), not both");
            var d = duration ?? TimeSpan.FromSeconds(10);
            if (d <= TimeSpan.Zero) throw new LoadConfigurationException("--duration must be above 0");
            var phases = new List<LoadSimulation>();
            if (rate is { } r)
            {
                if (rampUp is { } ru && ru > TimeSpan.Zero) phases.Add(new LoadSimulation.RampingInject(r, ru));
                phases.Add(new LoadSimulation.Inject(r, d));
            }
            else
            {
                var c = clients ?? 16;
                if (rampUp is { } ru && ru > TimeSpan.Zero) phases.Add(new LoadSimulation.RampingConstant(c, ru));
                phases.Add(new LoadSimulation.KeepConstant(c, d));
            }
            o = o with { Simulations = phases };
        }
        o = o with { Endpoints = (endpoints ?? TargetCatalog.DefaultEndpoint(o.Target)).Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) };
        if (o.Connections == 0) o = o with { Connections = o.Endpoints.Count };
        o.Validate();
        return o;
    }

    /// <summary>Refuses settings that cannot work.</summary>
    /// <exception cref="LoadConfigurationException">The message names the flag to fix.</exception>
    public void Validate()
    {
        if (!TargetCatalog.Names.Contains(Target)) throw new LoadConfigurationException($"unknown target '{Target}'; use {string.Join(" or ", TargetCatalog.Names)}");
        if (!ScenarioCatalog.All.Any(s => s.Name == Scenario)) throw ScenarioCatalog.Unknown(Scenario);
        if (Endpoints.Count == 0) throw new LoadConfigurationException("--endpoints is empty; give HOST:PORT,...");
        foreach (var e in Endpoints)
        {
            var colon = e.LastIndexOf(':');
            if (colon <= 0 || !int.TryParse(e.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is < 1 or > 65535)
            {
                throw new LoadConfigurationException($"--endpoints: '{e}' is not HOST:PORT (e.g. {TargetCatalog.DefaultEndpoint(Target)})");
            }
        }
        if (Connections < 1) throw new LoadConfigurationException("--connections must be at least 1");
        if (Simulations.Count == 0) throw new LoadConfigurationException("no load simulation: give --clients, --rate or --load");
        if (ConnectTimeout <= TimeSpan.Zero) throw new LoadConfigurationException("--connect-timeout must be above 0");
        if (RequestTimeout <= TimeSpan.Zero) throw new LoadConfigurationException("--request-timeout must be above 0");
        if (Scenario == "watch" && ValueSize < 9) throw new LoadConfigurationException("--value-size must be at least 9 for the watch scenario (a value carries its send time)");
    }

    private static int Whole(string flag, string text, int min, int max) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw new LoadConfigurationException($"{flag} '{text}' is not a whole number from {min} to {max}");

    private static double Number(string flag, string text, double min, double max) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
            ? v
            : throw new LoadConfigurationException(string.Create(CultureInfo.InvariantCulture, $"{flag} '{text}' is not a number from {min} to {max}"));
}
