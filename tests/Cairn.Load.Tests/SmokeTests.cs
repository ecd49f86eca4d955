using Cairn.Load;
using Cairn.Server;

namespace Cairn.Load.Tests;

/// <summary>
/// The tool and the client end to end against one Cairn member started in this process (what CI runs; the side-by-side
/// comparison with etcd is load/compare.sh): each scenario for a second, no failures, the report files written.
/// </summary>
public sealed class SmokeTests : IAsyncLifetime
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "cairn-load-tests", Guid.NewGuid().ToString("N"));
    private Member? _member;

    private string Endpoint => $"127.0.0.1:{_member!.ClientEndpoint.Port}";

    public async Task InitializeAsync()
    {
        _member = Member.Start(new MemberOptions
        {
            Name = "m1",
            DataDir = Path.Combine(_root, "m1"),
            ListenClient = $"127.0.0.1:{LoadCommandTests.FreePort()}",
            ListenPeer = $"127.0.0.1:{LoadCommandTests.FreePort()}",
            ListenMetrics = "",
            HeartbeatInterval = TimeSpan.FromMilliseconds(50),
            ElectionTimeout = TimeSpan.FromMilliseconds(500),
            MeasureProcessMemory = false,
        });
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!_member.IsLeader)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the member did not lead within 15 s");
            await Task.Delay(20);
        }
    }

    public async Task DisposeAsync()
    {
        if (_member is not null) await _member.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private async Task<string[]> RunAsync(string name, params string[] args)
    {
        var dir = Path.Combine(_root, name);
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await LoadCommand.RunAsync(["--target", "cairn", "--endpoints", Endpoint, "--report-dir", dir, "--max-error-percent", "0", .. args],
            stdout, stderr, progressInPlace: false, CancellationToken.None);
        Assert.True(code == 0, $"exit {code}\n{stdout}\n{stderr}");
        Assert.True(File.Exists(Path.Combine(dir, "report.md")));
        Assert.True(File.Exists(Path.Combine(dir, "latency.png")));
        Assert.Contains("] ", stderr.ToString(), StringComparison.Ordinal);   // the progress line
        return File.ReadAllLines(Path.Combine(dir, "report.csv"));
    }

    private static (string Step, long Ok, long Errors) Row(string line)
    {
        var f = System.Text.RegularExpressions.Regex.Matches(line, "(?:^|,)(\"(?:[^\"]|\"\")*\"|[^,]*)").Select(m => m.Groups[1].Value.Trim('"')).ToArray();
        return (f[2], long.Parse(f[7], System.Globalization.CultureInfo.InvariantCulture), long.Parse(f[8], System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task Every_scenario_runs_against_a_member()
    {
        var put = Row(( await RunAsync("put", "--scenario", "put", "--clients", "8", "--connections", "2", "--duration", "1500ms"))[1]);
        Assert.Equal("put", put.Step);
        Assert.True(put.Ok > 50, $"{put.Ok} puts");

        foreach (var (name, args) in new (string, string[])[]
        {
            ("get-l", ["--scenario", "get", "--key-count", "200", "--clients", "4", "--duration", "1s"]),
            ("get-s", ["--scenario", "get", "--consistency", "serializable", "--key-count", "200", "--rate", "300", "--duration", "1s"]),
            ("range", ["--scenario", "range", "--range-size", "20", "--clients", "4", "--duration", "1s"]),
            ("txn", ["--scenario", "txn-cas", "--clients", "4", "--duration", "1s"]),
            ("mixed", ["--scenario", "mixed", "--key-count", "200", "--read-ratio", "0.5", "--load", "ramping-constant:4:500ms,keep-constant:4:500ms"]),
            ("lease", ["--scenario", "lease-keep-alive", "--clients", "4", "--duration", "1s"]),
        })
        {
            var row = Row((await RunAsync(name, args))[1]);
            Assert.True(row.Ok > 10 && row.Errors == 0, $"{name}: {row}");
        }

        var watch = await RunAsync("watch", "--scenario", "watch", "--watchers", "20", "--connections", "2", "--rate", "50", "--duration", "1s");
        var puts = Row(watch[1]);
        var delivery = Row(watch[2]);
        Assert.Equal("watch delivery", delivery.Step);
        Assert.Equal(puts.Ok * 20, delivery.Ok);
        Assert.Equal(0, delivery.Errors);
    }
}
