using System.Collections.Concurrent;
using System.Diagnostics.Tracing;

namespace Cairn.Bench;

/// <summary>
/// `-- allocs put|get [N]`: runs the server path of <see cref="ServerPathBenchmarks"/> N times (64 requests each) and
/// prints which types were allocated, from the runtime's allocation-tick events (one sample per ~100 KB, on every
/// thread). It answers "where do the bytes per request go" when the MemoryDiagnoser's total is not 0.
/// </summary>
internal sealed class AllocationSampler : EventListener
{
    private readonly ConcurrentDictionary<string, long> _bytes = new();
    private volatile bool _on;

    protected override void OnEventSourceCreated(EventSource source)
    {
        if (source.Name == "Microsoft-Windows-DotNETRuntime") EnableEvents(source, EventLevel.Verbose, (EventKeywords)0x1); // GC keyword: AllocationTick
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (!_on || e.EventName is null || !e.EventName.StartsWith("GCAllocationTick", StringComparison.Ordinal) || e.Payload is null) return;
        var name = e.PayloadNames!.IndexOf("TypeName") is var i and >= 0 ? e.Payload[i] as string ?? "?" : "?";
        var amount = e.PayloadNames.IndexOf("AllocationAmount64") is var j and >= 0 ? Convert.ToInt64(e.Payload[j], System.Globalization.CultureInfo.InvariantCulture) : 100_000;
        _bytes.AddOrUpdate(name, amount, (_, v) => v + amount);
    }

    public static int Run(string[] args)
    {
        var mode = args.Length > 1 ? args[1] : "put";
        var rounds = args.Length > 2 ? int.Parse(args[2], System.Globalization.CultureInfo.InvariantCulture) : 2000;
        var bench = new ServerPathBenchmarks();
        bench.Setup();
        Func<int> op = mode == "get" ? bench.Get : bench.Put;
        for (var i = 0; i < 100; i++) op();   // (the setup has put 40,000 times: the Raft log is at its working size)
        using var sampler = new AllocationSampler();
        var before = GC.GetTotalAllocatedBytes(precise: true);
        sampler._on = true;
        for (var i = 0; i < rounds; i++) op();
        sampler._on = false;
        var total = GC.GetTotalAllocatedBytes(precise: true) - before;
        bench.Cleanup();
        var requests = rounds * 64L;
        Console.WriteLine($"{mode}: {total / (double)requests:F0} B per request over {requests} requests (all threads)");
        foreach (var (type, bytes) in sampler._bytes.OrderByDescending(kv => kv.Value).Take(30))
        {
            Console.WriteLine($"{bytes / (double)requests,10:F1} B/req  {type}");
        }
        return 0;
    }
}
