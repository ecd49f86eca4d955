using System.Diagnostics;
using System.Globalization;
using Cairn.Crypto;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>
/// Issue 15 as the operator met it: `cairn verify` finds a flipped byte in a member's kv.db, yet `cairn serve` started,
/// and the first `cairn get` that touched the page killed it ("fatal: CorruptDatabaseException", then "no member
/// reachable"). Now the get is answered Corrupt naming the page, the member keeps serving, and `cairn alarm list` shows
/// the alarm.
/// </summary>
public sealed class DamageProcessTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-damage-").FullName;
    private readonly List<string> _output = [];
    private Process? _serve;

    private string Home => Directory.CreateDirectory(Path.Combine(_dir, "home")).FullName;

    private string KeyFile => Path.Combine(_dir, "master.key");

    public void Dispose()
    {
        if (_serve is { HasExited: false })
        {
            _serve.Kill();
            _serve.WaitForExit();
        }
        _serve?.Dispose();
        lock (_output) foreach (var line in _output) log.WriteLine(line);
        Directory.Delete(_dir, recursive: true);
    }

    private Process Serve(int client, int peer, int metrics)
    {
        var psi = CairnProcess.StartInfo(_dir, Home,
        [
            "serve", "--listen-grpc", "", "--name", "m1", "--data-dir", Path.Combine(_dir, "m1"), "--key-file", KeyFile,
            "--listen-client", $"127.0.0.1:{client}", "--listen-peer", $"127.0.0.1:{peer}", "--listen-metrics", $"127.0.0.1:{metrics}",
            "--heartbeat-interval", "50", "--election-timeout", "500", "--scrub-interval", "24h",
        ]);
        var p = Process.Start(psi)!;
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.Add(e.Data); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    private static async Task WaitForLeaderAsync(int client)
    {
        await TestCluster.EventuallyAsync(async () =>
        {
            try
            {
                await using var c = await TestClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, client));
                return (await DamageTests.StatusAsync(c)).Leader != 0;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException)
            {
                return false;
            }
        }, "the member leads", TimeSpan.FromSeconds(60));
    }

    private Task<CairnProcess.Result> Cairn(int client, params string[] args) => CairnProcess.RunAsync(_dir, Home, ["--endpoints", $"127.0.0.1:{client}", .. args]);

    [Fact]
    public async Task Cairn_get_of_a_damaged_page_says_Corrupt_the_member_keeps_serving_and_alarm_list_shows_CORRUPT()
    {
        var (client, peer, metrics) = (TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort());
        KeyFileProvider.OpenOrCreate(KeyFile); // the key the member is started with (created now, so the test can read the file too)
        _serve = Serve(client, peer, metrics);
        await WaitForLeaderAsync(client);
        await using (var c = await TestClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, client)))
        {
            // kv.index holds no values: thirty small keys after each spread it over several leaves (k10's and k50's apart).
            for (var i = 0; i < 60; i++)
            {
                await c.PutAsync($"k{i:D2}", new string('v', 1000));
                for (var j = 0; j < 30; j++) await c.PutAsync($"k{i:D2}-{j:D2}", "f");
            }
        }
        using (var kill = Process.Start("kill", ["-TERM", _serve.Id.ToString(CultureInfo.InvariantCulture)])) await kill.WaitForExitAsync();
        await _serve.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, _serve.ExitCode);
        _serve.Dispose();

        var page = DamagedPage.Flip(Path.Combine(_dir, "m1", "member", "kv.db"), KeyFileProvider.Open(KeyFile), "kv.index", TestClient.Bytes("k10"), TestClient.Bytes("k50"));
        _serve = Serve(client, peer, metrics);
        await WaitForLeaderAsync(client);

        var get = await Cairn(client, "get", "k10");
        Assert.Equal(1, get.Code);
        Assert.Single(get.ErrLines);
        Assert.StartsWith("cairn: Corrupt: member m1's database is damaged: page ", get.Err, StringComparison.Ordinal);
        Assert.Contains($"page {page}: authentication tag mismatch", get.Err, StringComparison.Ordinal);
        Assert.False(_serve.HasExited, "cairn serve keeps running");

        var intact = await Cairn(client, "get", "k50", "--print-value-only");
        Assert.Equal(0, intact.Code);
        Assert.Equal(new string('v', 1000), intact.Out.TrimEnd('\n'));

        var id = MemberOptions.MemberId("m1");
        await TestCluster.EventuallyAsync(async () => (await Cairn(client, "alarm", "list")).Out.Contains($"memberID:{id} alarm:CORRUPT", StringComparison.Ordinal), "alarm list shows CORRUPT");
        var put = await Cairn(client, "put", "k00", "new");
        Assert.Equal(1, put.Code);
        Assert.StartsWith("cairn: Corrupt: ", put.Err, StringComparison.Ordinal);

        using var http = new HttpClient();
        var text = await http.GetStringAsync(new Uri($"http://127.0.0.1:{metrics}/metrics"));
        Assert.Contains("cairn_db_damaged_pages_total 1\n", text, StringComparison.Ordinal);
        Assert.False(_serve.HasExited);
        lock (_output)
        {
            Assert.Single(_output, l => l.Contains("database damaged", StringComparison.Ordinal));
            Assert.DoesNotContain(_output, l => l.Contains("fatal", StringComparison.Ordinal) || l.Contains("   at ", StringComparison.Ordinal));
        }
    }

    [Theory]
    [InlineData("500ms")]
    [InlineData("-1s")]
    public async Task A_scrub_interval_under_a_second_is_refused_naming_the_flag(string value)
    {
        var r = await CairnProcess.RunAsync(_dir, Home, ["serve", "--scrub-interval", value, "--listen-metrics", "", "--listen-grpc", ""]);
        Assert.Equal(2, r.Code);
        Assert.Single(r.ErrLines);
        Assert.Contains("--scrub-interval", r.Err, StringComparison.Ordinal);
    }
}
