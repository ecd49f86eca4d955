using BenchmarkDotNet.Running;

namespace Cairn.Bench;

/// <summary>Entry point: `dotnet run -c Release --project bench/Cairn.Bench -- --filter '*Cipher*'`, `-- wire ...` for the wire benchmark, or `-- allocs put|get [rounds]` for where the server path's bytes go.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "wire") return WireBench.RunAsync(args).GetAwaiter().GetResult();
        if (args.Length > 0 && args[0] == "allocs") return AllocationSampler.Run(args);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
