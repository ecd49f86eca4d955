using System.Globalization;

namespace Cairn.Fuzz;

/// <summary>
/// Long fuzzing runs (scripts/fuzz.sh drives it):
/// <code>
/// Cairn.Fuzz list
/// Cairn.Fuzz mutate TARGET [--seed N] [--seconds S] [--iterations N] [--from I]   the mutation fuzzer
/// Cairn.Fuzz seeds TARGET DIR                                                      writes the seed inputs (AFL's -i)
/// Cairn.Fuzz afl TARGET                                                            SharpFuzz harness, under afl-fuzz
/// Cairn.Fuzz repro TARGET FILE...                                                  runs saved inputs
/// </code>
/// Exit code 0: no failure; 1: a failure (printed with its input); 2: bad usage.
/// </summary>
public static class Program
{
    /// <summary>Every target by name.</summary>
    public static FuzzTarget Create(string name) => name switch
    {
        "protocol" => new ProtocolTarget(),
        "peer" => new PeerTarget(),
        "peer-frames" => new PeerTarget { WithoutSocket = true },
        "storage" => new StorageTarget(encrypted: false),
        "storage-encrypted" => new StorageTarget(encrypted: true),
        "wal" => new WalTarget(),
        _ => throw new ArgumentException($"unknown target '{name}'; one of: {string.Join(", ", Targets)}"),
    };

    /// <summary>Target names.</summary>
    public static readonly string[] Targets = ["protocol", "peer", "peer-frames", "storage", "storage-encrypted", "wal"];

    /// <summary>Entry point.</summary>
    public static int Main(string[] args)
    {
        try
        {
            return Run(args);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return 2;
        }
    }

    private static int Run(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help")
        {
            Console.WriteLine("usage: Cairn.Fuzz list | mutate TARGET [--seed N] [--seconds S] [--iterations N] [--from I] | seeds TARGET DIR | afl TARGET | repro TARGET FILE...");
            return args.Length == 0 ? 2 : 0;
        }
        switch (args[0])
        {
            case "list":
                foreach (var t in Targets) Console.WriteLine(t);
                return 0;
            case "mutate":
                return Mutate(args);
            case "seeds":
            {
                if (args.Length != 3) throw new ArgumentException("usage: seeds TARGET DIR");
                using var target = Create(args[1]);
                Directory.CreateDirectory(args[2]);
                for (var i = 0; i < target.Seeds.Count; i++) File.WriteAllBytes(Path.Combine(args[2], $"seed-{i:D3}.bin"), target.Seeds[i]);
                Console.WriteLine($"{target.Seeds.Count} seeds of {target.Name} written to {args[2]}");
                return 0;
            }
            case "afl":
            {
                if (args.Length != 2) throw new ArgumentException("usage: afl TARGET");
                using var target = Create(args[1]);
                SharpFuzz.Fuzzer.OutOfProcess.Run(stream =>
                {
                    using var ms = new MemoryStream();
                    stream.CopyTo(ms);
                    try
                    {
                        target.Run(ms.ToArray());
                    }
                    catch (Exception e) when (target.IsClean(e))
                    {
                    }
                });
                return 0;
            }
            case "repro":
            {
                if (args.Length < 3) throw new ArgumentException("usage: repro TARGET FILE...");
                using var target = Create(args[1]);
                var failed = 0;
                foreach (var file in args.Skip(2))
                {
                    try
                    {
                        var error = FuzzRunner.Execute(target, File.ReadAllBytes(file), () => file);
                        if (error is not null && !target.IsClean(error))
                        {
                            failed++;
                            Console.WriteLine($"{file}: UNCLEAN {error}");
                        }
                        else
                        {
                            Console.WriteLine($"{file}: {(error is null ? "accepted" : "refused cleanly: " + error.GetType().Name + ": " + error.Message)}");
                        }
                    }
                    catch (FuzzFailureException e)
                    {
                        failed++;
                        Console.WriteLine(e.Message);
                    }
                }
                return failed == 0 ? 0 : 1;
            }
            default:
                throw new ArgumentException($"unknown command '{args[0]}'");
        }
    }

    private static int Mutate(string[] args)
    {
        if (args.Length < 2) throw new ArgumentException("usage: mutate TARGET [--seed N] [--seconds S] [--iterations N] [--from I]");
        ulong seed = 1;
        double? seconds = null;
        long iterations = long.MaxValue, from = 0;
        for (var i = 2; i < args.Length; i += 2)
        {
            if (i + 1 >= args.Length) throw new ArgumentException($"{args[i]} needs a value");
            var v = args[i + 1];
            switch (args[i])
            {
                case "--seed": seed = ulong.Parse(v, CultureInfo.InvariantCulture); break;
                case "--seconds": seconds = double.Parse(v, CultureInfo.InvariantCulture); break;
                case "--iterations": iterations = long.Parse(v, CultureInfo.InvariantCulture); break;
                case "--from": from = long.Parse(v, CultureInfo.InvariantCulture); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (seconds is null && iterations == long.MaxValue) seconds = 60;
        using var target = Create(args[1]);
        try
        {
            var report = FuzzRunner.Run(target, seed, iterations, seconds is { } s ? TimeSpan.FromSeconds(s) : null,
                r => Console.WriteLine("  ... " + r), from);
            Console.WriteLine(report);
            return 0;
        }
        catch (FuzzFailureException e)
        {
            Console.WriteLine(e.Message);
            return 1;
        }
    }
}
