using System.Diagnostics;
using System.Text.Json;

namespace Cairn.Server.Tests;

/// <summary>
/// etcd's JSON gateway on the etcd API port, called with curl as Patroni and shell scripts call it: protobuf's JSON
/// mapping (base64 bytes, 64-bit integers as strings), errors as grpc-gateway writes them, the token in Authorization.
/// </summary>
public sealed class EtcdJsonGatewayTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(1);
    private Member _member = null!;

    public async Task InitializeAsync()
    {
        _cluster.Customize = (_, o) => o with { ListenGrpc = "127.0.0.1:0" };
        await _cluster.StartAllAsync();
        _member = _cluster.Running.Single();
    }

    public async Task DisposeAsync() => await _cluster.DisposeAsync();

    private static string B64(string s) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(s));

    private static string Text(JsonElement e) => System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(e.GetString()!));

    /// <summary>curl -X POST; returns the HTTP status and the body. <paramref name="maxSeconds"/> bounds a streaming answer.</summary>
    private async Task<(int Status, string Body)> Curl(string path, string json, string? token = null, int maxSeconds = 20)
    {
        var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-s", "-N", "-m", maxSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture), "-X", "POST", "-w", "\n%{http_code}", "-d", json }) psi.ArgumentList.Add(a);
        if (token is not null)
        {
            psi.ArgumentList.Add("-H");
            psi.ArgumentList.Add($"Authorization: {token}");
        }
        psi.ArgumentList.Add($"http://{_member.GrpcEndpoint}{path}");
        using var p = Process.Start(psi) ?? throw new InvalidOperationException("curl is not installed: run scripts/setup-test.sh");
        var output = await p.StandardOutput.ReadToEndAsync();
        await p.WaitForExitAsync();
        var cut = output.LastIndexOf('\n');
        return (int.Parse(output[(cut + 1)..], System.Globalization.CultureInfo.InvariantCulture), output[..cut]);
    }

    private async Task<JsonElement> Ok(string path, string json, string? token = null)
    {
        var (status, body) = await Curl(path, json, token);
        Assert.True(status == 200, $"{path} answered {status}: {body}");
        return JsonDocument.Parse(body).RootElement;
    }

    [Fact]
    public async Task Range_put_txn_and_leases_in_protobufs_json_mapping()
    {
        var put = await Ok("/v3/kv/put", $$"""{"key":"{{B64("foo")}}","value":"{{B64("bar")}}"}""");
        var revision = long.Parse(put.GetProperty("header").GetProperty("revision").GetString()!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(_member.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), put.GetProperty("header").GetProperty("member_id").GetString());
        var range = await Ok("/v3/kv/range", $$"""{"key":"{{B64("foo")}}"}""");
        var kv = range.GetProperty("kvs")[0];
        Assert.Equal("bar", Text(kv.GetProperty("value")));
        Assert.Equal(revision.ToString(System.Globalization.CultureInfo.InvariantCulture), kv.GetProperty("mod_revision").GetString());
        Assert.Equal("1", range.GetProperty("count").GetString());

        var foo = B64("foo");
        var txnJson = "{\"compare\":[{\"key\":\"" + foo + "\",\"target\":\"VALUE\",\"result\":\"EQUAL\",\"value\":\"" + B64("bar") + "\"}]," +
            "\"success\":[{\"request_put\":{\"key\":\"" + foo + "\",\"value\":\"" + B64("swapped") + "\"}}]," +
            "\"failure\":[{\"request_range\":{\"key\":\"" + foo + "\"}}]}";
        var txn = await Ok("/v3/kv/txn", txnJson);
        Assert.True(txn.GetProperty("succeeded").GetBoolean());
        Assert.Equal("swapped", Text((await Ok("/v3/kv/range", $$"""{"key":"{{B64("foo")}}"}""")).GetProperty("kvs")[0].GetProperty("value")));

        var lease = await Ok("/v3/lease/grant", """{"TTL":"30"}""");
        var id = lease.GetProperty("ID").GetString()!;
        Assert.Equal("30", lease.GetProperty("TTL").GetString());
        await Ok("/v3/kv/put", $$"""{"key":"{{B64("leased")}}","value":"{{B64("v")}}","lease":"{{id}}"}""");
        var ttl = await Ok("/v3/lease/timetolive", $$"""{"ID":"{{id}}","keys":true}""");
        Assert.Equal("leased", Text(ttl.GetProperty("keys")[0]));
        var (status, keepAlive) = await Curl("/v3/lease/keepalive", $$"""{"ID":"{{id}}"}""");
        Assert.Equal(200, status);
        Assert.Equal(id, JsonDocument.Parse(keepAlive.Trim()).RootElement.GetProperty("result").GetProperty("ID").GetString());
        await Ok("/v3/lease/revoke", $$"""{"ID":"{{id}}"}""");
        Assert.False((await Ok("/v3/kv/range", $$"""{"key":"{{B64("leased")}}"}""")).TryGetProperty("kvs", out _));

        // A refusal: grpc-gateway's body and HTTP status for the gRPC code.
        var (refusedStatus, refused) = await Curl("/v3/kv/range", $$"""{"key":"{{B64("foo")}}","revision":"{{revision + 100}}"}""");
        Assert.Equal(400, refusedStatus);
        var error = JsonDocument.Parse(refused).RootElement;
        Assert.Equal("etcdserver: mvcc: required revision is a future revision", error.GetProperty("error").GetString());
        Assert.Equal(11, error.GetProperty("code").GetInt32()); // OutOfRange
    }

    [Fact]
    public async Task A_watch_streams_one_result_per_line()
    {
        await Ok("/v3/kv/put", $$"""{"key":"{{B64("w")}}","value":"{{B64("1")}}"}""");
        await Ok("/v3/kv/put", $$"""{"key":"{{B64("w")}}","value":"{{B64("2")}}"}""");
        // The stream stays open: read its lines as they come, and end curl once the history has arrived.
        var psi = new ProcessStartInfo("curl") { RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[] { "-s", "-N", "-X", "POST", "-d", "{\"create_request\":{\"key\":\"" + B64("w") + "\",\"start_revision\":\"1\"}}", $"http://{_member.GrpcEndpoint}/v3/watch" })
            psi.ArgumentList.Add(a);
        using var curl = Process.Start(psi)!;
        var results = new List<JsonElement>();
        var values = new List<string>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            while (values.Count < 2 && await curl.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
            {
                var result = JsonDocument.Parse(line).RootElement.GetProperty("result");
                results.Add(result);
                if (result.TryGetProperty("events", out var events)) values.AddRange(events.EnumerateArray().Select(e => Text(e.GetProperty("kv").GetProperty("value"))));
            }
        }
        finally
        {
            curl.Kill();
        }
        Assert.True(results[0].GetProperty("created").GetBoolean());
        Assert.Equal(["1", "2"], values);
    }

    [Fact]
    public async Task With_auth_on_the_token_goes_in_the_Authorization_header()
    {
        await Ok("/v3/auth/user/add", """{"name":"root","password":"pw"}""");
        await Ok("/v3/auth/user/grant", """{"user":"root","role":"root"}""");
        await Ok("/v3/auth/enable", "{}");
        var (status, body) = await Curl("/v3/kv/put", $$"""{"key":"{{B64("a")}}","value":"{{B64("1")}}"}""");
        Assert.Equal(400, status);
        Assert.Equal("etcdserver: user name is empty", JsonDocument.Parse(body).RootElement.GetProperty("error").GetString());
        var token = (await Ok("/v3/auth/authenticate", """{"name":"root","password":"pw"}""")).GetProperty("token").GetString()!;
        await Ok("/v3/kv/put", $$"""{"key":"{{B64("a")}}","value":"{{B64("1")}}"}""", token);
        Assert.Equal("1", Text((await Ok("/v3/kv/range", $$"""{"key":"{{B64("a")}}"}""", token)).GetProperty("kvs")[0].GetProperty("value")));
        var (badStatus, _) = await Curl("/v3/kv/range", $$"""{"key":"{{B64("a")}}"}""", "not-a-token");
        Assert.Equal(401, badStatus);
        await Ok("/v3/auth/disable", "{}", token);
    }

    [Fact]
    public async Task Version_and_health_answer_as_etcds()
    {
        using var http = new HttpClient();
        var version = JsonDocument.Parse(await http.GetStringAsync($"http://{_member.GrpcEndpoint}/version")).RootElement;
        Assert.StartsWith("3.4", version.GetProperty("etcdcluster").GetString(), StringComparison.Ordinal);
        var health = JsonDocument.Parse(await http.GetStringAsync($"http://{_member.GrpcEndpoint}/health")).RootElement;
        Assert.Equal("true", health.GetProperty("health").GetString());
    }
}
