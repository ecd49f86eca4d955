using System.Diagnostics;
using System.Globalization;
using Cairn.Client;
using Cairn.Protocol;

namespace Cairn.Bench;

/// <summary>
/// Throughput of a running member or cluster through the client library over loopback:
/// `dotnet run -c Release --project bench/Cairn.Bench -- wire --endpoints 127.0.0.1:9379 --op put --connections 4 --depth 64 --seconds 10`.
/// Each connection is its own client (one multiplexed socket) with `depth` requests in flight (pipelining);
/// depth 1 is the unpipelined figure. Prints one line: ops/s and latency percentiles. scripts/bench-wire.sh runs the
/// whole comparison with redis-benchmark; `scripts/bench-wire.sh tls` runs one member with and without TLS
/// (`--cacert FILE [--cert FILE --key FILE]` here).
/// </summary>
internal static class WireBench
{
    public static async Task<int> RunAsync(string[] args)
    {
        string Arg(string name, string fallback)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : fallback;
        }
        var endpoints = Arg("--endpoints", "127.0.0.1:9379").Split(',');
        var op = Arg("--op", "put");
        var connections = int.Parse(Arg("--connections", "4"), CultureInfo.InvariantCulture);
        var depth = int.Parse(Arg("--depth", "64"), CultureInfo.InvariantCulture);
        var seconds = double.Parse(Arg("--seconds", "10"), CultureInfo.InvariantCulture);
        var valueSize = int.Parse(Arg("--value-size", "256"), CultureInfo.InvariantCulture);
        var keys = int.Parse(Arg("--keys", "10000"), CultureInfo.InvariantCulture);
        var consistency = Arg("--consistency", "s") == "l" ? Consistency.Linearizable : Consistency.Serializable;
        var label = Arg("--label", $"{op} c={connections} d={depth}");
        // TLS: --cacert names the CA that signed the member's certificate; --cert/--key add a client certificate.
        var tls = Arg("--cacert", "") is { Length: > 0 } ca
            ? new CairnTlsOptions { CaFile = ca, CertFile = Arg("--cert", "") is { Length: > 0 } cert ? cert : null, KeyFile = Arg("--key", "") is { Length: > 0 } key ? key : null }
            : null;

        var clients = new List<CairnClient>();
        for (var c = 0; c < connections; c++)
        {
            // Spread connections over the endpoints; no discovery, so each client keeps to its member.
            var client = new CairnClient(new CairnClientOptions { Endpoints = [endpoints[c % endpoints.Length]], DiscoverEndpoints = false, RequestTimeout = TimeSpan.FromSeconds(30), Tls = tls });
            await client.ConnectAsync();
            clients.Add(client);
        }
        var value = new byte[valueSize];
        Random.Shared.NextBytes(value);
        var keyBytes = Enumerable.Range(0, keys).Select(i => System.Text.Encoding.UTF8.GetBytes($"bench/{i:D8}")).ToArray();
        if (op == "get")
        {
            // The keys exist before reads are timed.
            var fill = clients[0];
            for (var i = 0; i < keys; i += 256) await Task.WhenAll(Enumerable.Range(i, Math.Min(256, keys - i)).Select(k => fill.PutAsync(keyBytes[k], value)));
        }
        var stop = Stopwatch.StartNew();
        var until = TimeSpan.FromSeconds(seconds);
        var latencies = new List<long>[connections * depth];
        var errors = 0L;
        var kinds = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        async Task Loop(CairnClient client, int slot)
        {
            var mine = latencies[slot] = new List<long>(1 << 16);
            var random = new Random(slot);
            while (stop.Elapsed < until)
            {
                var key = keyBytes[random.Next(keys)];
                var t0 = Stopwatch.GetTimestamp();
                try
                {
                    if (op == "put") await client.PutAsync(key, value);
                    else await client.GetAsync(key, consistency);
                }
                catch (CairnException e)
                {
                    Interlocked.Increment(ref errors);
                    kinds.AddOrUpdate($"{e.GetType().Name} {e.Code}: {e.Message}", 1, (_, n) => n + 1);
                    continue;
                }
                mine.Add(Stopwatch.GetTimestamp() - t0);
            }
        }
        var loops = new List<Task>();
        for (var c = 0; c < connections; c++)
        {
            for (var d = 0; d < depth; d++) loops.Add(Loop(clients[c], c * depth + d));
        }
        await Task.WhenAll(loops);
        var elapsed = stop.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).Order().ToArray();
        foreach (var c in clients) await c.DisposeAsync();
        double Ms(double q) => all.Length == 0 ? 0 : all[Math.Min(all.Length - 1, (int)(q * all.Length))] * 1000.0 / Stopwatch.Frequency;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{label}: {all.Length / elapsed:F0} ops/s, p50 {Ms(0.50):F2} ms, p99 {Ms(0.99):F2} ms, p99.9 {Ms(0.999):F2} ms, errors {errors}, {all.Length} ops in {elapsed:F1} s"));
        foreach (var (kind, n) in kinds) Console.WriteLine($"  {n} × {kind}");
        return errors > 0 ? 1 : 0;
    }
}
