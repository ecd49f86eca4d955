namespace Cairn.Load;

/// <summary>cairn-load: see <see cref="LoadOptions.Usage"/> and load/README.md.</summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        using var cancel = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;   // stop the load, then report what was measured
            cancel.Cancel();
        };
        return await LoadCommand.RunAsync(args, Console.Out, Console.Error, progressInPlace: !Console.IsErrorRedirected, cancel.Token);
    }
}
