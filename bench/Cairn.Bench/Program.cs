using BenchmarkDotNet.Running;

namespace Cairn.Bench;

/// <summary>Entry point: `dotnet run -c Release --project bench/Cairn.Bench -- --filter '*Cipher*'`, or `-- wire ...` for the wire benchmark.</summary>
public static class Program
{
    public static int Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "wire") return WireBench.RunAsync(args).GetAwaiter().GetResult();
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
        return 0;
    }
}
