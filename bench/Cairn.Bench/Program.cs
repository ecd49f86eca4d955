using BenchmarkDotNet.Running;

namespace Cairn.Bench;

/// <summary>Entry point: `dotnet run -c Release --project bench/Cairn.Bench -- --filter '*Cipher*'`.</summary>
public static class Program
{
    public static void Main(string[] args) => BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
}
