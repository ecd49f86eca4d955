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
        // Standard input is the value exactly, as etcdctl reads it: its newline too.
        Assert.Equal((0, "cli/a\n2\ncli/b\nfrom stdin\n\n", ""), await Cairn("get", "cli/", "--prefix"));
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
    public async Task Etcdctl_flags_typed_from_habit_work_as_in_etcdctl()
    {
        await Cairn("put", "~fk/b", "2");
        await Cairn("put", "~fk/c", "1");
        await Cairn("put", "~fk/a", "3");
        await Cairn("put", "~fk/b", "22");
        Assert.Equal((0, "~fk/b\n22\n~fk/c\n1\n", ""), await Cairn("get", "~fk/b", "--from-key"));
        // Sorted by modification, newest first, then limited: the first N of the sorted whole, as etcd answers.
        Assert.Equal((0, "~fk/b\n22\n~fk/a\n3\n", ""), await Cairn("get", "~fk/", "--prefix", "--sort-by", "MODIFY", "--order", "DESCEND", "--limit", "2"));
        Assert.Equal((0, "~fk/c\n~fk/b\n~fk/a\n", ""), await Cairn("get", "~fk/", "--prefix", "--order", "DESCEND", "--keys-only"));
        Assert.Equal((0, "~fk/c\n1\n~fk/b\n22\n~fk/a\n3\n", ""), await Cairn("get", "~fk/", "--prefix", "--sort-by=value")); // bytewise: "22" < "3"
        Assert.Equal((0, "3\n22\n1\n", ""), await Cairn("get", "~fk/", "--prefix", "--print-value-only"));
        Assert.Equal(2, (await Cairn("get", "~fk/", "--prefix", "--sort-by", "SIZE")).Code);

        var (_, granted, _) = await Cairn("lease", "grant", "60");
        var lease = granted.Split(' ')[1];
        Assert.Equal((0, "OK\n", ""), await Cairn("put", "~fk/a", "--ignore-value", "--lease", lease));
        Assert.Equal((0, "~fk/a\n3\n", ""), await Cairn("get", "~fk/a"));
        Assert.Equal((0, "OK\n", ""), await Cairn("put", "~fk/a", "4", "--ignore-lease"));
        Assert.Contains("~fk/a", (await Cairn("lease", "timetolive", lease, "--keys")).Out, StringComparison.Ordinal);
        Assert.Equal((0, "~fk/a\n4\n", ""), await Cairn("get", "~fk/a"));
        var missing = await Cairn("put", "~fk/none", "--ignore-value");
        Assert.Equal(1, missing.Code);

        var (_, json, _) = await Cairn("get", "~fk/a", "-w", "json");
        using var doc = JsonDocument.Parse(json);
        var rev = doc.RootElement.GetProperty("header").GetProperty("revision").GetInt64();
        Assert.Equal((0, $"compacted revision {rev - 1}\n", ""), await Cairn("compaction", $"{rev - 1}"));
        Assert.Equal((0, "1\n", ""), await Cairn("delete", "~fk/c"));
    }

    [Fact]
    public async Task A_value_over_the_limit_on_standard_input_is_refused_after_reading_at_most_limit_plus_one_bytes()
    {
        var endless = new EndlessStream();
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        var code = await CairnCli.RunAsync(["--endpoints", member.Endpoint, "put", "big"], new CliIo(stdout, stderr, endless), CancellationToken.None);
        Assert.Equal(2, code);
        Assert.Contains("over 1,572,864 bytes", stderr.ToString(), StringComparison.Ordinal);
        Assert.True(endless.BytesRead <= ClientVerbs.MaxValueBytes + 1, $"read {endless.BytesRead} bytes");
        Assert.Equal("", stdout.ToString());
    }

    /// <summary>A stream of zeros that never ends, counting what was read from it.</summary>
    private sealed class EndlessStream : Stream
    {
        public long BytesRead;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => BytesRead; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            Array.Clear(buffer, offset, count);
            BytesRead += count;
            return count;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    [Fact]
    public async Task Interactive_watch_reads_watch_lines_and_prints_each_watchs_events()
    {
        await using var client = member.Cluster.Client();
        var start = (await client.PutAsync("iw/a", "1")).Header.Revision;
        await client.PutAsync("iw/b/x", "2");
        var stdout = new LockedWriter { NewLine = "\n" };
        var stderr = new LockedWriter { NewLine = "\n" };
        using var interrupt = new CancellationTokenSource();
        var lines = $"watch iw/a --rev {start}\nwatch iw/b/ --prefix --rev={start}\nwatch --bogus\n";
        var run = CairnCli.RunAsync(["--endpoints", member.Endpoint, "watch", "-i"], CliIo.Of(stdout, stderr, lines), interrupt.Token);
        await TestCluster.EventuallyAsync(() => Task.FromResult(stdout.Text.Contains("iw/a\n1\n", StringComparison.Ordinal) && stdout.Text.Contains("iw/b/x\n2\n", StringComparison.Ordinal)), "both watches printed their event");
        interrupt.Cancel();
        Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.Contains("unknown flag '--bogus'", stderr.Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Interactive_txn_prompts_for_each_part()
    {
        await Cairn("put", "itx/k", "1");
        var (code, output, prompts) = await CairnWithInput("value(\"itx/k\") = \"1\"\n\nput itx/k 2\n\n\n", "txn", "-i");
        Assert.Equal((0, "SUCCESS\n\nOK\n"), (code, output));
        Assert.Equal("compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n", prompts);
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
