using System.Globalization;
using Cairn.Faults.Nemesis;

// cairn-nemesis: one run of the nemesis against real `cairn serve` processes (docs/faults.md, "Running the nemesis").
var options = new RunOptions { Log = line => Console.Error.WriteLine($"[{DateTime.Now:HH:mm:ss.f}] {line}") };
string? reportPath = null;
try
{
    for (var i = 0; i < args.Length; i++)
    {
        string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
        int Int() => int.Parse(Next(), CultureInfo.InvariantCulture);
        if (args[i] == "--report")
        {
            reportPath = Next();
            continue;
        }
        options = args[i] switch
        {
            "--seed" => options with { Seed = Int() },
            "--duration" => options with { Duration = Duration(Next()) },
            "--rounds" => options with { Rounds = Int() },
            "--members" => options with { Members = Int() },
            "--clients" => options with { Clients = Int() },
            "--keys" => options with { Keys = Int() },
            "--watchers" => options with { Watchers = Int() },
            "--faults" => options with { Faults = Next().Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) },
            "--tmpfs-mb" => options with { TmpfsMiB = Int() },
            "--dir" => options with { Root = Next() },
            "--keep" => options with { KeepOnFailure = true },
            _ => throw new ArgumentException($"unknown argument {args[i]}"),
        };
    }
    Nemesis.Expand(options.Faults);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine($"cairn-nemesis: {e.Message}");
    Console.Error.WriteLine("usage: cairn-nemesis [--seed N] [--duration 60s | --rounds N] [--members 3|5] [--clients N] [--keys N] [--watchers N]");
    Console.Error.WriteLine("                     [--faults kill,pause,partition,membership,disk|all|FAULT,...] [--tmpfs-mb N] [--dir DIR] [--keep] [--report FILE]");
    Console.Error.WriteLine($"faults: {string.Join("; ", Nemesis.Families.Select(f => $"{f.Key} = {string.Join(", ", f.Value)}"))}");
    return 2;
}

var report = await Runner.RunAsync(options);
var text = report.ToString();
Console.WriteLine(text);
if (reportPath is not null) await File.WriteAllTextAsync(reportPath, text);
return report.Ok ? 0 : 1;

static TimeSpan Duration(string s) =>
    s.EndsWith("ms", StringComparison.Ordinal) ? TimeSpan.FromMilliseconds(double.Parse(s[..^2], CultureInfo.InvariantCulture))
    : s.EndsWith('s') ? TimeSpan.FromSeconds(double.Parse(s[..^1], CultureInfo.InvariantCulture))
    : s.EndsWith('m') ? TimeSpan.FromMinutes(double.Parse(s[..^1], CultureInfo.InvariantCulture))
    : s.EndsWith('h') ? TimeSpan.FromHours(double.Parse(s[..^1], CultureInfo.InvariantCulture))
    : TimeSpan.FromSeconds(double.Parse(s, CultureInfo.InvariantCulture));
