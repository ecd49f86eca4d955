using System.Net;
using System.Net.Sockets;
using Cairn.Load;

namespace Cairn.Load.Tests;

public class LoadCommandTests
{
    private static async Task<(int Code, string Out, string Err)> RunAsync(string[] args, Func<LoadOptions, Targets.ILoadTarget>? target = null)
    {
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await LoadCommand.RunAsync(args, stdout, stderr, progressInPlace: false, CancellationToken.None, target);
        return (code, stdout.ToString(), stderr.ToString());
    }

    internal static int FreePort() => Cairn.Tests.TestPorts.Next();

    private static void AssertOneLine(string err, string expected)
    {
        var lines = err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one line, got:\n{err}");
        Assert.StartsWith("cairn-load: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", err, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(new[] { "--scenario", "puut" }, "unknown scenario 'puut'; known: put, get, range, txn-cas, mixed, watch, lease-keep-alive")]
    [InlineData(new[] { "--target", "zookeeper" }, "unknown target 'zookeeper'; use cairn or etcd")]
    [InlineData(new[] { "--clients", "16", "--rate", "100" }, "give --clients (closed loop) or --rate (open loop), not both")]
    [InlineData(new[] { "--duration", "forever" }, "--duration 'forever' is not a duration")]
    [InlineData(new[] { "--clients", "0" }, "--clients '0' is not a whole number from 1 to 100000")]
    [InlineData(new[] { "--consistency", "eventual" }, "--consistency 'eventual': use linearizable or serializable")]
    [InlineData(new[] { "--endpoints", "localhost" }, "--endpoints: 'localhost' is not HOST:PORT")]
    [InlineData(new[] { "--frobnicate", "1" }, "unknown flag '--frobnicate'")]
    [InlineData(new[] { "--clients" }, "--clients needs a value")]
    [InlineData(new[] { "--load", "keep-constant:4:1s", "--clients", "4" }, "--load gives the phases itself")]
    [InlineData(new[] { "--scenario", "watch", "--value-size", "4" }, "--value-size must be at least 9 for the watch scenario")]
    public async Task Bad_configuration_is_one_line_and_exit_2(string[] args, string expected)
    {
        var (code, _, err) = await RunAsync(args);
        Assert.Equal(LoadCommand.BadConfiguration, code);
        AssertOneLine(err, expected);
    }

    [Theory]
    [InlineData("cairn")]
    [InlineData("etcd")]
    public async Task Unreachable_endpoints_are_one_line_and_exit_2(string target)
    {
        var port = FreePort();   // nothing listens there
        var (code, _, err) = await RunAsync(["--target", target, "--endpoints", $"127.0.0.1:{port}", "--connect-timeout", "2s", "--duration", "1s"]);
        Assert.Equal(LoadCommand.BadConfiguration, code);
        AssertOneLine(err, $"cannot reach {target} at 127.0.0.1:{port}");
        Assert.Contains("check --endpoints", err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Help_lists_every_scenario()
    {
        var (code, stdout, _) = await RunAsync(["--help"]);
        Assert.Equal(0, code);
        foreach (var (name, _) in Scenarios.ScenarioCatalog.All) Assert.Contains($"  {name} ", stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_many_failures_exit_1_after_writing_the_report()
    {
        var dir = Path.Combine(Path.GetTempPath(), "cairn-load-tests", Guid.NewGuid().ToString("N"));
        var calls = 0L;
        try
        {
            var (code, stdout, err) = await RunAsync(
                ["--scenario", "put", "--clients", "2", "--duration", "500ms", "--report-dir", dir, "--max-error-percent", "5"],
                _ => new FakeTarget(put: async (_, _, _) =>
                {
                    await Task.Delay(1, CancellationToken.None);
                    // Every other call fails, the first included: over the 5 % bound however few calls a loaded machine makes in 500 ms.
                    if (Interlocked.Increment(ref calls) % 2 == 1) throw new FakeFailure("NoLeader");
                    return 1;
                }));
            Assert.Equal(LoadCommand.TooManyErrors, code);
            Assert.Contains("above --max-error-percent 5", err, StringComparison.Ordinal);
            Assert.Contains("× NoLeader", stdout, StringComparison.Ordinal);
            var csv = File.ReadAllLines(Path.Combine(dir, "report.csv"));
            Assert.Equal(ReportWriter.CsvHeader, csv[0]);
            Assert.StartsWith("fake,put,put,keep-constant:2:500ms,2,1,", csv[1], StringComparison.Ordinal);
            Assert.Matches(@",NoLeader=\d+$", csv[1]);
            Assert.Contains("| put |", File.ReadAllText(Path.Combine(dir, "report.md")), StringComparison.Ordinal);
            Assert.True(new FileInfo(Path.Combine(dir, "latency.png")).Length > 1000);
        }
        finally
        {
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
        }
    }
}
