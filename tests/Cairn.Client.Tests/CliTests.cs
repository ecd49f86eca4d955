using System.Text;
using System.Text.Json;
using Cairn.Cli;
using Cairn.Server;

namespace Cairn.Client.Tests;

/// <summary>The `cairn` verbs against a real member, with their output captured.</summary>
public sealed class CliTests(SingleMember member) : IClassFixture<SingleMember>
{
    /// <summary>A writer that may be read while another thread writes (a watch printing events).</summary>
    internal sealed class LockedWriter : TextWriter
    {
        private readonly StringBuilder _text = new();

        public override Encoding Encoding => Encoding.UTF8;

        public override void Write(char value)
        {
            lock (_text) _text.Append(value);
        }

        public override void Write(string? value)
        {
            lock (_text) _text.Append(value);
        }

        public string Text
        {
            get { lock (_text) return _text.ToString(); }
        }
    }

    private async Task<(int Code, string Out, string Err)> CairnWithInput(string stdin, params string[] args)
    {
        var stdout = new LockedWriter { NewLine = "\n" };
        var stderr = new LockedWriter { NewLine = "\n" };
        var code = await ClientVerbs.RunAsync(["--endpoints", member.Endpoint, .. args], stdout, stderr, new StringReader(stdin), CancellationToken.None);
        return (code, stdout.Text, stderr.Text);
    }

    private Task<(int Code, string Out, string Err)> Cairn(params string[] args) => CairnWithInput("", args);

    [Fact]
    public async Task Put_get_and_del_print_as_etcdctl_does()
    {
        Assert.Equal((0, "OK\n", ""), await Cairn("put", "cli/a", "1"));
        Assert.Equal((0, "OK\ncli/a\n1\n", ""), await Cairn("put", "cli/a", "2", "--prev-kv"));
        Assert.Equal((0, "OK\n", ""), await CairnWithInput("from stdin\n", "put", "cli/b"));
        Assert.Equal((0, "cli/a\n2\ncli/b\nfrom stdin\n", ""), await Cairn("get", "cli/", "--prefix"));
        Assert.Equal((0, "cli/a\ncli/b\n", ""), await Cairn("get", "cli/", "--prefix", "--keys-only"));
        Assert.Equal((0, "2\n", ""), await Cairn("get", "cli/", "--prefix", "--count-only"));
        Assert.Equal((0, "cli/a\n2\n", ""), await Cairn("get", "cli/a", "cli/b"));
        Assert.Equal((0, "cli/a\n2\n", ""), await Cairn("get", "cli/", "--prefix", "--limit", "1", "--consistency", "s"));

        var (code, json, _) = await Cairn("get", "cli/a", "-w", "json");
        Assert.Equal(0, code);
        using (var doc = JsonDocument.Parse(json))
        {
            var kv = doc.RootElement.GetProperty("kvs")[0];
            Assert.Equal("cli/a", Encoding.UTF8.GetString(kv.GetProperty("key").GetBytesFromBase64()));
            Assert.Equal("2", Encoding.UTF8.GetString(kv.GetProperty("value").GetBytesFromBase64()));
            Assert.Equal(2, kv.GetProperty("version").GetInt64());
            Assert.Equal(1, doc.RootElement.GetProperty("count").GetInt64());
            Assert.Equal(MemberOptions.MemberId("m1"), doc.RootElement.GetProperty("header").GetProperty("member_id").GetUInt64());
            var rev = doc.RootElement.GetProperty("header").GetProperty("revision").GetInt64();
            Assert.Equal(rev - 1, kv.GetProperty("mod_revision").GetInt64()); // the stdin put came after it
        }

        Assert.Equal((0, "1\ncli/a\n2\n", ""), await Cairn("del", "cli/a", "--prev-kv"));
        Assert.Equal((0, "1\n", ""), await Cairn("del", "cli/", "--prefix"));
        Assert.Equal((0, "", ""), await Cairn("get", "cli/", "--prefix"));
    }

    [Fact]
    public async Task Txn_reads_compares_and_both_branches_from_stdin()
    {
        await Cairn("put", "tx/k", "1");
        var script = "value(\"tx/k\") = \"1\"\nmod(\"tx/k\") > \"0\"\n\nput tx/k \"two words\"\nget tx/k\ndel tx/none\n\nput tx/k failed\n";
        Assert.Equal((0, "SUCCESS\n\nOK\n\ntx/k\ntwo words\n\n0\n", ""), await CairnWithInput(script, "txn"));
        Assert.Equal((0, "FAILURE\n\nOK\n", ""), await CairnWithInput(script, "txn"));
        Assert.Equal((0, "tx/k\nfailed\n", ""), await Cairn("get", "tx/k"));
        var bad = await CairnWithInput("size(\"tx/k\") = \"1\"\n\n\n", "txn");
        Assert.Equal(2, bad.Code);
        Assert.Contains("compare target 'size'", bad.Err);
    }

    [Fact]
    public async Task Status_and_member_list_as_json_describe_the_member()
    {
        var id = MemberOptions.MemberId("m1");
        var (code, json, err) = await Cairn("status", "-w", "json");
        Assert.Equal((0, ""), (code, err));
        using (var doc = JsonDocument.Parse(json))
        {
            var row = Assert.Single(doc.RootElement.EnumerateArray());
            Assert.Equal(member.Endpoint, row.GetProperty("Endpoint").GetString());
            var status = row.GetProperty("Status");
            Assert.Equal(id, status.GetProperty("header").GetProperty("member_id").GetUInt64());
            Assert.Equal(id, status.GetProperty("leader").GetUInt64());
            Assert.True(status.GetProperty("raftAppliedIndex").GetUInt64() > 0);
            Assert.True(status.GetProperty("dbSize").GetInt64() > 0);
        }
        (code, json, err) = await Cairn("member", "list", "-w", "json");
        Assert.Equal((0, ""), (code, err));
        using (var doc = JsonDocument.Parse(json))
        {
            var m = Assert.Single(doc.RootElement.GetProperty("members").EnumerateArray());
            Assert.Equal(id, m.GetProperty("ID").GetUInt64());
            Assert.Equal("m1", m.GetProperty("name").GetString());
            Assert.Equal(member.Endpoint, m.GetProperty("clientURLs")[0].GetString());
        }
        var hex = ClientVerbs.MemberId(id);
        Assert.Equal(id.ToString("x", System.Globalization.CultureInfo.InvariantCulture), hex); // as etcdctl prints it: %x, no padding
        var simple = await Cairn("member", "list");
        Assert.Equal((0, $"{hex}, started, m1, {member.Cluster.Members["m1"]!.Options.ListenPeer}, {member.Endpoint}, false\n", ""), simple);
        var table = await Cairn("status", "-w", "table");
        Assert.Equal(0, table.Code);
        Assert.Contains("| ENDPOINT", table.Out);
        Assert.Contains($"| {member.Endpoint} | {hex} | m1   | true ", table.Out);
    }

    [Fact]
    public async Task Leases_print_hex_ids_and_a_missing_lease_says_so()
    {
        var (code, granted, _) = await Cairn("lease", "grant", "30");
        Assert.Equal(0, code);
        var id = granted.Split(' ')[1];
        Assert.Matches("^lease [0-9a-f]{16} granted with TTL\\(30s\\)\n$", granted);
        Assert.Equal((0, "OK\n", ""), await Cairn("put", "cli/leased", "v", "--lease", id));
        var ttl = await Cairn("lease", "ttl", id, "--keys");
        Assert.Matches($"^lease {id} granted with TTL\\(30s\\), remaining\\(\\d+s\\), attached keys\\(\\[cli/leased\\]\\)\n$", ttl.Out);
        Assert.Equal((0, $"lease {id} keepalived with TTL(30)\n", ""), await Cairn("lease", "keep-alive", id, "--once"));
        Assert.Contains(id, (await Cairn("lease", "list")).Out);
        Assert.Equal((0, $"lease {id} revoked\n", ""), await Cairn("lease", "revoke", id));
        Assert.Equal((0, $"lease {id} already expired\n", ""), await Cairn("lease", "ttl", id));
        Assert.Equal((0, "", ""), await Cairn("get", "cli/leased"));
    }

    [Fact]
    public async Task Watch_prints_events_until_interrupted()
    {
        await using var client = member.Cluster.Client();
        var start = (await client.PutAsync("cw/x", "1")).Header.Revision;
        await client.DeleteAsync("cw/x");
        var stdout = new LockedWriter { NewLine = "\n" };
        var stderr = new LockedWriter { NewLine = "\n" };
        using var interrupt = new CancellationTokenSource();
        var run = ClientVerbs.RunAsync(["--endpoints", member.Endpoint, "watch", "cw/", "--prefix", "--rev", $"{start}"], stdout, stderr, new StringReader(""), interrupt.Token);
        await TestCluster.EventuallyAsync(() => Task.FromResult(stdout.Text.Length >= "PUT\ncw/x\n1\nDELETE\ncw/x\n\n".Length), "the watch printed both events");
        interrupt.Cancel();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Equal("PUT\ncw/x\n1\nDELETE\ncw/x\n\n", stdout.Text);
        Assert.Equal("", stderr.Text);
    }

    [Fact]
    public async Task Unreachable_members_and_bad_usage_are_explained()
    {
        var (holder, port) = TestCluster.ClosedPort();
        using var _ = holder;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await ClientVerbs.RunAsync(["get", "x", "--endpoints", $"127.0.0.1:{port}", "--dial-timeout", "1s"], stdout, stderr, new StringReader(""), CancellationToken.None);
        Assert.Equal(1, code);
        Assert.Equal($"cairn: no member reachable at 127.0.0.1:{port} (connection refused); start one with `cairn serve` or pass --endpoints{Environment.NewLine}", stderr.ToString());
        Assert.Equal("", stdout.ToString());

        Assert.Equal(2, (await Cairn("frobnicate")).Code);
        Assert.Equal(2, (await Cairn("get")).Code);
        var bad = await Cairn("get", "x", "-w", "yaml");
        Assert.Equal(2, bad.Code);
        Assert.Contains("-w 'yaml'", bad.Err);
        var compacted = await Cairn("get", "x", "--rev", "99999999");
        Assert.Equal(1, compacted.Code);
        Assert.StartsWith("cairn: FutureRevision: ", compacted.Err);
        Assert.True(ClientVerbs.Handles("get") && ClientVerbs.Handles("--endpoints") && ClientVerbs.Handles("-w") && !ClientVerbs.Handles("serve"));
    }

    [Fact]
    public async Task Scale_shows_the_autoscaler_view_and_refuses_units_when_the_cluster_runs_on_a_fixed_quota()
    {
        var (code, json, _) = await Cairn("scale", "-w", "json");
        Assert.Equal(0, code);
        using (var doc = JsonDocument.Parse(json))
        {
            Assert.False(doc.RootElement.GetProperty("enabled").GetBoolean());    // the fixture's member runs without units
            Assert.True(doc.RootElement.GetProperty("storageQuotaBytes").GetInt64() > 0);
        }
        var (setCode, _, err) = await Cairn("scale", "--units", "2");
        Assert.Equal(1, setCode);
        Assert.Contains("autoscaling is off", err, StringComparison.Ordinal);
    }
}
