using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cairn.Server.Tests;

/// <summary>
/// An operator's ordinary mistakes at the command line (issue 15): a busy port, an address the host lacks, a mistyped
/// flag or config key, no verb at all. Each is run as a person runs it — a `cairn` process with an empty HOME in an
/// empty directory — and must end in one line on stderr and a non-zero exit code, with nothing written.
/// </summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are Unix's
public sealed class OperatorMistakeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-mistakes-").FullName;

    private string Cwd => Directory.CreateDirectory(Path.Combine(_dir, "cwd")).FullName;

    private string Home => Directory.CreateDirectory(Path.Combine(_dir, "home")).FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Nothing was written: the working directory is empty and HOME has no key or secret.</summary>
    private void AssertNothingWritten()
    {
        Assert.Empty(Directory.EnumerateFileSystemEntries(Cwd));
        Assert.Empty(Directory.EnumerateFileSystemEntries(Home));
    }

    private Task<CairnProcess.Result> Cairn(params string[] args) => CairnProcess.RunAsync(Cwd, Home, args);

    private static string[] ServeOn(int client, int peer, int metrics, params string[] more) =>
        ["serve", "--listen-grpc", "", "--listen-client", $"127.0.0.1:{client}", "--listen-peer", $"127.0.0.1:{peer}", "--listen-metrics", $"127.0.0.1:{metrics}", .. more];

    [Fact]
    public async Task A_second_member_on_a_port_in_use_is_refused_in_one_line_before_anything_is_written()
    {
        await using var cluster = new TestCluster(1);
        var running = cluster.Start("m1");
        var taken = running.ClientEndpoint.Port;

        var r = await Cairn(ServeOn(taken, TestCluster.FreePort(), TestCluster.FreePort(), "--data-dir", "other"));
        Assert.Equal(1, r.Code);
        Assert.Equal([$"cairn: cannot listen on 127.0.0.1:{taken} (client port): address already in use; another program (another member?) listens there: stop it or choose another --listen-client"], r.ErrLines);
        AssertNothingWritten();

        // The same for the peer port, in-process: with SO_REUSEPORT the second bind used to succeed and the two
        // members shared the port's connections.
        var again = cluster.Options("m1") with { DataDir = Path.Combine(_dir, "again"), ListenClient = $"127.0.0.1:{TestCluster.FreePort()}" };
        var e = Assert.Throws<MemberStartException>(() => Member.Start(again));
        Assert.Equal($"cannot listen on {running.PeerEndpoint} (peer port): address already in use; another program (another member?) listens there: stop it or choose another --listen-peer", e.Message);
        Assert.False(Directory.Exists(again.DataDir));
    }

    [Fact]
    public async Task A_busy_metrics_port_held_by_another_program_is_refused_too()
    {
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        holder.Listen();
        var port = ((IPEndPoint)holder.LocalEndPoint!).Port;
        var r = await Cairn(ServeOn(TestCluster.FreePort(), TestCluster.FreePort(), port));
        Assert.Equal(1, r.Code);
        Assert.Single(r.ErrLines);
        Assert.StartsWith($"cairn: cannot listen on 127.0.0.1:{port} (metrics port): address already in use", r.Err);
        AssertNothingWritten();
    }

    [Fact]
    public async Task An_address_the_host_lacks_is_refused_in_one_line()
    {
        var r = await Cairn("serve", "--listen-grpc", "", "--listen-peer", "192.0.2.1:9480", "--listen-client", $"127.0.0.1:{TestCluster.FreePort()}", "--listen-metrics", "");
        Assert.Equal(1, r.Code);
        Assert.Equal(["cairn: cannot listen on 192.0.2.1:9480 (peer port): this host has no such address; give --listen-peer an address of this host (e.g. 127.0.0.1 or 0.0.0.0)"], r.ErrLines);
        AssertNothingWritten();
    }

    [Theory]
    [InlineData("--data-dirr", "mydata", "did you mean --data-dir?")]
    [InlineData("--heartbeat", "50", "did you mean --heartbeat-interval?")]
    [InlineData("--listen-client-urls", "http://127.0.0.1:2379", "Cairn's is --listen-grpc HOST:PORT")]
    [InlineData("--initial-advertise-peer-urls", "http://127.0.0.1:2380", "Cairn's is --initial-cluster")]
    public async Task A_mistyped_or_foreign_serve_flag_is_refused_with_the_name_to_use_and_nothing_runs(string flag, string value, string hint)
    {
        var r = await Cairn("serve", flag, value);
        Assert.Equal(2, r.Code);
        Assert.Single(r.ErrLines);
        Assert.Contains(hint, r.Err, StringComparison.Ordinal);
        AssertNothingWritten();
    }

    [Fact]
    public async Task An_etcd_spelling_with_the_same_meaning_is_taken_as_the_cairn_flag()
    {
        // --quota-backend-bytes is etcd's name for --quota-bytes: its value is checked as --quota-bytes' is.
        var r = await Cairn("serve", "--quota-backend-bytes", "lots");
        Assert.Equal(2, r.Code);
        Assert.Equal(["cairn: --quota-bytes 'lots' is not a whole number"], r.ErrLines);
    }

    [Fact]
    public async Task An_unknown_config_key_is_refused_with_its_line_and_the_closest_key()
    {
        var config = Path.Combine(_dir, "member.conf");
        File.WriteAllText(config, "# m1\nname m1\ndata-dirr /tmp/nowhere\n");
        var r = await Cairn("serve", "--config", config);
        Assert.Equal(2, r.Code);
        Assert.Equal([$"cairn: {config} line 3: unknown setting 'data-dirr'; did you mean data-dir? (the settings are the flags of `cairn serve --help`)"], r.ErrLines);
        AssertNothingWritten();
    }

    [Fact]
    public async Task A_client_flag_that_nobody_knows_is_refused_not_read_as_a_value()
    {
        var r = await Cairn("get", "dir", "--prefix", "--bogus-flag", "--keys-only");
        Assert.Equal(2, r.Code);
        Assert.Equal(["cairn: unknown flag '--bogus-flag' for get (see `cairn get --help`; put '--' before a value that begins with '-')"], r.ErrLines);
        var typo = await Cairn("get", "dir", "--keys-onyl");
        Assert.Contains("did you mean --keys-only?", typo.Err, StringComparison.Ordinal);
        var sub = await Cairn("member", "lsit");
        Assert.Equal(2, sub.Code);
        Assert.Contains("did you mean list?", sub.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task No_verb_prints_usage_and_writes_nothing()
    {
        var r = await Cairn();
        Assert.Equal(0, r.Code);
        Assert.Contains("serve", r.Out, StringComparison.Ordinal);
        Assert.Contains("dev-cluster", r.Out, StringComparison.Ordinal);
        Assert.Equal("", r.Err);
        AssertNothingWritten();
    }

    [Fact]
    public async Task Help_goes_to_stdout_and_version_names_the_commit()
    {
        foreach (var args in new[] { new[] { "--help" }, ["serve", "--help"], ["get", "--help"], ["help", "member", "add"], ["member", "add", "-h"] })
        {
            var r = await Cairn(args);
            Assert.True(r.Code == 0, $"cairn {string.Join(' ', args)}: {r.Err}");
            Assert.Contains("Usage:", r.Out, StringComparison.Ordinal);
            Assert.Equal("", r.Err);
        }
        Assert.Contains("--data-dir", (await Cairn("serve", "--help")).Out, StringComparison.Ordinal);
        Assert.Contains("--peer-urls", (await Cairn("member", "add", "--help")).Out, StringComparison.Ordinal);
        foreach (var args in new[] { new[] { "--version" }, ["version"] })
        {
            var v = await Cairn(args);
            Assert.Equal(0, v.Code);
            Assert.Matches(@"^cairn \d+\.\d+\.\d+\S* \(commit [0-9a-f]{7,}\)", v.Out);
        }
        AssertNothingWritten();
    }

    [Fact]
    public async Task Errors_are_one_line_never_a_stack_trace()
    {
        var cases = new (string[] Args, int Code)[]
        {
            (["verify", Path.Combine(_dir, "missing.db")], 2),
            (["serve", "--heartbeat-interval", "soon"], 2),
            (["serve", "--initial-cluster-state", "maybe"], 2),
            (["serve", "--election-timeout", "100"], 2),
            (["get"], 2),
            (["get", "k", "-w", "yaml"], 2),
            (["put", "k", "v", "--lease", "zz"], 2),
            (["lease", "grant", "ten"], 2),
            (["get", "k", "--endpoints", "nonsense"], 2),
            (["stats", "--plain", Path.Combine(_dir, "missing.db")], 2),
        };
        foreach (var (args, code) in cases)
        {
            var r = await Cairn(args);
            Assert.True(code == r.Code, $"cairn {string.Join(' ', args)} exited {r.Code}: {r.Err}");
            Assert.True(r.ErrLines.Length == 1, $"cairn {string.Join(' ', args)} printed {r.ErrLines.Length} lines: {r.Err}");
            Assert.StartsWith("cairn: ", r.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", r.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("(Parameter '", r.Err, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task CAIRN_variables_stand_in_for_the_global_flags()
    {
        using var holder = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        holder.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)holder.LocalEndPoint!).Port;
        var r = await CairnProcess.RunAsync(Cwd, Home, ["get", "x"], env: new Dictionary<string, string> { ["CAIRN_ENDPOINTS"] = $"127.0.0.1:{port}", ["CAIRN_DIAL_TIMEOUT"] = "1s" });
        Assert.Equal(1, r.Code);
        Assert.Equal([$"cairn: no member reachable at 127.0.0.1:{port} (connection refused); start one with `cairn serve` or pass --endpoints"], r.ErrLines);
        var bad = await CairnProcess.RunAsync(Cwd, Home, ["get", "x"], env: new Dictionary<string, string> { ["CAIRN_DIAL_TIMEOUT"] = "soon" });
        Assert.Equal(2, bad.Code);
        Assert.Contains("--dial-timeout 'soon'", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_missing_key_file_for_a_data_directory_that_holds_data_is_refused_not_created()
    {
        var key = Path.Combine(_dir, "real.key");
        await using (var cluster = new TestCluster(1))
        {
            cluster.Customize = (_, o) => o with { MasterKey = Crypto.KeyFileProvider.OpenOrCreate(key), DataDir = Path.Combine(_dir, "data") };
            cluster.Start("m1");
            await cluster.LeaderAsync();
            await cluster.StopAsync("m1");
        }
        var data = Path.Combine(_dir, "data");
        var typo = Path.Combine(_dir, "reall.key");
        var r = await Cairn(ServeOn(TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort(), "--name", "m1", "--data-dir", data, "--key-file", typo));
        Assert.Equal(2, r.Code);
        Assert.Equal([$"cairn: the key file {typo} does not exist, but {data} holds data sealed with another key; pass the --key-file it was created with (check the path for a typo), or --plain if it is not encrypted"], r.ErrLines);
        Assert.False(File.Exists(typo));
        // The default key file is not made up either.
        var byDefault = await Cairn(ServeOn(TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort(), "--name", "m1", "--data-dir", data));
        Assert.Equal(2, byDefault.Code);
        Assert.Contains("holds data sealed with another key", byDefault.Err, StringComparison.Ordinal);
        AssertNothingWritten();
    }

    [Fact]
    public async Task A_key_file_others_can_read_or_that_holds_no_key_is_refused_in_one_line()
    {
        var open = Path.Combine(_dir, "open.key");
        File.WriteAllText(open, Convert.ToHexStringLower(new byte[32]) + "\n");
        File.SetUnixFileMode(open, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        var data = Path.Combine(_dir, "data");
        var r = await Cairn(ServeOn(TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort(), "--data-dir", data, "--key-file", open));
        Assert.Equal(1, r.Code);
        Assert.Single(r.ErrLines);
        Assert.Contains("chmod 600", r.Err, StringComparison.Ordinal);
        Assert.False(Directory.Exists(data));

        var garbage = Path.Combine(_dir, "garbage.key");
        File.WriteAllText(garbage, "not a key\n");
        File.SetUnixFileMode(garbage, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var bad = await Cairn(ServeOn(TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort(), "--data-dir", data, "--key-file", garbage));
        Assert.Equal(1, bad.Code);
        Assert.Single(bad.ErrLines);
        Assert.Contains("openssl rand -hex 32", bad.Err, StringComparison.Ordinal);
        Assert.DoesNotContain("FormatException", bad.Err, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_data_directory_another_cairn_serve_holds_is_refused_naming_its_pid()
    {
        var data = Path.Combine(_dir, "shared-data");
        var (c1, p1) = (TestCluster.FreePort(), TestCluster.FreePort());
        using var first = System.Diagnostics.Process.Start(CairnProcess.StartInfo(Cwd, Home, ServeOn(c1, p1, TestCluster.FreePort(), "--data-dir", data, "--plain")))!;
        first.BeginErrorReadLine();
        first.BeginOutputReadLine();
        try
        {
            var db = Path.Combine(data, "member", "kv.db");
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (!File.Exists(db) && DateTime.UtcNow < deadline) await Task.Delay(50);
            await Task.Delay(500);   // opened, and locked
            var r = await Cairn(ServeOn(TestCluster.FreePort(), TestCluster.FreePort(), TestCluster.FreePort(), "--data-dir", data, "--plain"));
            Assert.Equal(1, r.Code);
            Assert.Single(r.ErrLines);
            Assert.Contains($"is in use by another process (pid {first.Id})", r.Err, StringComparison.Ordinal);
            Assert.DoesNotContain("snapshot", r.Err, StringComparison.Ordinal);
        }
        finally
        {
            first.Kill();
            await first.WaitForExitAsync();
        }
    }

    [Fact]
    public async Task Values_are_bytes_from_standard_input_to_standard_output()
    {
        await using var cluster = new TestCluster(1);
        cluster.Start("m1");
        await cluster.LeaderAsync();
        var endpoint = cluster.ClientEndpoint("m1").ToString();
        var every = Enumerable.Range(0, 256).Select(i => (byte)i).ToArray();
        var put = await CairnProcess.RunAsync(Cwd, Home, ["--endpoints", endpoint, "put", "bytes"], stdin: every);
        Assert.Equal((0, "OK\n"), (put.Code, put.Out));
        var get = await CairnProcess.RunAsync(Cwd, Home, ["--endpoints", endpoint, "get", "bytes", "--print-value-only"]);
        Assert.Equal(0, get.Code);
        Assert.Equal([.. every, (byte)'\n'], get.OutBytes);
        var hex = await CairnProcess.RunAsync(Cwd, Home, ["--endpoints", endpoint, "get", "bytes", "--hex", "--keys-only"]);
        Assert.Equal(string.Concat("bytes"u8.ToArray().Select(b => $"\\x{b:x2}")) + "\n", hex.Out);
        Assert.Equal(Encoding.ASCII.GetBytes("OK\n"), put.OutBytes);
    }
}
