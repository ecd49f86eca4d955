using System.Security.Cryptography;
using System.Text;
using Cairn.Cli;
using Cairn.Crypto;
using Cairn.Kv;

namespace Cairn.Client.Tests;

/// <summary>
/// A client with a value protector against a real member: what the member stores is read back by a client without
/// one (raw), so each test sees both what the application sees and what the server holds.
/// </summary>
public sealed class ProtectedClientTests(SingleMember member) : IClassFixture<SingleMember>
{
    private static readonly byte[] Key1 = RandomNumberGenerator.GetBytes(32);
    private static readonly byte[] Key2 = RandomNumberGenerator.GetBytes(32);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    private static ValueKey K(int id) => new(id, new StaticKeyProvider(id == 1 ? Key1 : Key2, $"key {id}"));

    private CairnClient Protected(ValueProtector p) => new(new CairnClientOptions
    {
        Endpoints = member.Cluster.AllEndpoints,
        DiscoverEndpoints = false,
        RequestTimeout = TimeSpan.FromSeconds(8),
        ValueProtector = p,
    });

    /// <summary>What the member holds for <paramref name="key"/>: sealed with <paramref name="keyId"/>, the plaintext nowhere in it.</summary>
    private static async Task AssertStoredSealedAsync(CairnClient raw, string key, string plaintext, int keyId)
    {
        var (_, kv) = await raw.GetAsync(key);
        Assert.NotNull(kv);
        Assert.True(ValueProtector.IsSealed(kv!.Value), $"{key} is stored without an envelope");
        Assert.True(ValueProtector.TryReadKeyId(kv.Value, out var id) && id == keyId, $"{key} is sealed with key {id}, expected {keyId}");
        Assert.Equal(B(plaintext).Length + ValueProtector.Overhead, kv.Value.Length);
        if (plaintext.Length >= 4) Assert.Equal(-1, kv.Value.AsSpan().IndexOf(B(plaintext)));
    }

    [Fact]
    public async Task Puts_and_reads_round_trip_while_the_member_stores_only_ciphertext()
    {
        using var p = new ValueProtector(K(1));
        await using var client = Protected(p);
        await using var raw = member.Cluster.Client();
        await client.DeleteAsync("pv/", prefix: true);

        var (h1, _) = await client.PutAsync("pv/a", "alice@example.com");
        await client.PutAsync("pv/b", "");
        await client.PutAsync(B("pv/c"), B("social security 078-05-1120"));
        await AssertStoredSealedAsync(raw, "pv/a", "alice@example.com", 1);
        await AssertStoredSealedAsync(raw, "pv/b", "", 1);
        await AssertStoredSealedAsync(raw, "pv/c", "social security 078-05-1120", 1);

        var (_, a) = await client.GetAsync("pv/a");
        Assert.Equal("alice@example.com", S(a!.Value));
        Assert.Equal(h1.Revision, a.ModRevision);
        var (_, all) = await client.GetPrefixAsync("pv/");
        Assert.Equal(["alice@example.com", "", "social security 078-05-1120"], all.Kvs.Select(kv => S(kv.Value)));
        var (_, keysOnly) = await client.RangeAsync(new RangeRequest { Key = B("pv/"), RangeEnd = RangeRequest.Prefix(B("pv/")), KeysOnly = true });
        Assert.Equal(["pv/a", "pv/b", "pv/c"], keysOnly.Kvs.Select(kv => S(kv.Key)));
        var (_, count) = await client.RangeAsync(new RangeRequest { Key = B("pv/"), RangeEnd = RangeRequest.Prefix(B("pv/")), CountOnly = true });
        Assert.Equal(3, count.Count);
        var (_, old) = await client.RangeAsync(new RangeRequest { Key = B("pv/a"), Revision = h1.Revision });
        Assert.Equal("alice@example.com", S(old.Kvs[0].Value));

        var (_, put) = await client.PutAsync("pv/a", "bob@example.com", prevKv: true);
        Assert.Equal("alice@example.com", S(put.PrevKv!.Value));
        var (_, ignored) = await client.PutAsync(new PutRequest { Key = B("pv/a"), IgnoreValue = true, PrevKv = true });
        Assert.Equal("bob@example.com", S(ignored.PrevKv!.Value));
        Assert.Equal("bob@example.com", S((await client.GetAsync("pv/a")).Body!.Value));
        var (_, del) = await client.DeleteAsync("pv/", prefix: true, prevKv: true);
        Assert.Equal(["bob@example.com", "", "social security 078-05-1120"], del.PrevKvs.Select(kv => S(kv.Value)));
    }

    [Fact]
    public async Task Values_that_cannot_be_opened_raise_typed_errors_never_garbage()
    {
        using var p = new ValueProtector(K(1));
        await using var client = Protected(p);
        await using var raw = member.Cluster.Client();
        await client.PutAsync("pe/a", "value of a");
        var (_, sealedA) = await raw.GetAsync("pe/a");

        // Copied to another key: the key name is in the associated data.
        await raw.PutAsync(B("pe/copy"), sealedA!.Value);
        var copied = await Assert.ThrowsAsync<CairnValueProtectionException>(() => client.GetAsync("pe/copy"));
        Assert.Equal(ValueProtectionError.AuthenticationFailed, copied.Error);
        Assert.Equal("value of a", S((await client.GetAsync("pe/a")).Body!.Value));

        // One bit of ciphertext changed on the server.
        var tampered = (byte[])sealedA.Value.Clone();
        tampered[ValueProtector.HeaderSize + 3] ^= 0x04;
        await raw.PutAsync(B("pe/tampered"), tampered);
        Assert.Equal(ValueProtectionError.AuthenticationFailed, (await Assert.ThrowsAsync<CairnValueProtectionException>(() => client.GetAsync("pe/tampered"))).Error);
        await Assert.ThrowsAsync<CairnValueProtectionException>(() => client.GetPrefixAsync("pe/"));

        // Written without a protector.
        await raw.PutAsync("pe/plain", "not sealed at all");
        Assert.Equal(ValueProtectionError.NotSealed, (await Assert.ThrowsAsync<CairnValueProtectionException>(() => client.GetAsync("pe/plain"))).Error);

        // Sealed with a key this keyring lacks.
        using var p2 = new ValueProtector(K(2));
        await using var other = Protected(p2);
        await other.PutAsync("pe/k2", "under key 2");
        var unknown = await Assert.ThrowsAsync<CairnValueProtectionException>(() => client.GetAsync("pe/k2"));
        Assert.Equal((ValueProtectionError.UnknownKey, 2), (unknown.Error, unknown.KeyId));
        Assert.Contains("add key 2", unknown.Message, StringComparison.Ordinal);
        await client.DeleteAsync("pe/", prefix: true);
    }

    [Fact]
    public async Task Transactions_seal_their_puts_open_their_reads_and_refuse_value_compares()
    {
        using var p = new ValueProtector(K(1));
        await using var client = Protected(p);
        await using var raw = member.Cluster.Client();
        await client.DeleteAsync("pt/", prefix: true);
        await client.PutAsync("pt/x", "to be deleted");
        await client.PutAsync("pt/y", "y0");
        var y = (await client.GetAsync("pt/y")).Body!;

        var (_, txn) = await client.TxnAsync(new TxnRequest
        {
            Compares = [new Compare { Key = B("pt/y"), Target = CompareTarget.Mod, Result = CompareResult.Equal, Number = y.ModRevision }],
            Success =
            [
                new TxnOp { Put = new PutRequest { Key = B("pt/a"), Value = B("written in a txn") } },
                new TxnOp { Put = new PutRequest { Key = B("pt/y"), Value = B("y1"), PrevKv = true } },
                new TxnOp { Range = new RangeRequest { Key = B("pt/"), RangeEnd = RangeRequest.Prefix(B("pt/")) } },
                new TxnOp { Range = new RangeRequest { Key = B("pt/"), RangeEnd = RangeRequest.Prefix(B("pt/")), KeysOnly = true } },
                new TxnOp { Delete = new DeleteRangeRequest { Key = B("pt/x"), PrevKv = true } },
                new TxnOp { Txn = new TxnRequest { Success = [new TxnOp { Put = new PutRequest { Key = B("pt/nested"), Value = B("inner") } }, new TxnOp { Range = new RangeRequest { Key = B("pt/a") } }] } },
            ],
        });
        Assert.True(txn.Succeeded);
        Assert.Equal("y0", S(txn.Responses[1].Put!.PrevKv!.Value));
        Assert.Equal(["written in a txn", "to be deleted", "y1"], txn.Responses[2].Range!.Kvs.Select(kv => S(kv.Value)));
        Assert.Equal(["pt/a", "pt/x", "pt/y"], txn.Responses[3].Range!.Kvs.Select(kv => S(kv.Key)));
        Assert.Equal("to be deleted", S(txn.Responses[4].Delete!.PrevKvs[0].Value));
        Assert.Equal("written in a txn", S(txn.Responses[5].Txn!.Responses[1].Range!.Kvs[0].Value));
        await AssertStoredSealedAsync(raw, "pt/a", "written in a txn", 1);
        await AssertStoredSealedAsync(raw, "pt/nested", "inner", 1);
        await AssertStoredSealedAsync(raw, "pt/y", "y1", 1);

        // The failure branch is opened too.
        var (_, failed) = await client.TxnAsync(new TxnRequest
        {
            Compares = [new Compare { Key = B("pt/y"), Target = CompareTarget.Version, Result = CompareResult.Equal, Number = 99 }],
            Success = [new TxnOp { Put = new PutRequest { Key = B("pt/y"), Value = B("never") } }],
            Failure = [new TxnOp { Range = new RangeRequest { Key = B("pt/y") } }],
        });
        Assert.False(failed.Succeeded);
        Assert.Equal("y1", S(failed.Responses[0].Range!.Kvs[0].Value));

        // Comparing a value cannot work against ciphertext: refused before anything is sent, at any depth.
        var before = (await raw.GetAsync("pt/y")).Header.Revision;
        var refused = await Assert.ThrowsAsync<CairnValueProtectionException>(() => client.TxnAsync(new TxnRequest
        {
            Compares = [new Compare { Key = B("pt/y"), Target = CompareTarget.Value, Result = CompareResult.Equal, Value = B("y1") }],
            Success = [new TxnOp { Put = new PutRequest { Key = B("pt/y"), Value = B("y2") } }],
        }));
        Assert.Equal(ValueProtectionError.ValueCompare, refused.Error);
        Assert.Contains("mod revision", refused.Message, StringComparison.Ordinal);
        var nested = await Assert.ThrowsAsync<CairnValueProtectionException>(() => client.TxnAsync(new TxnRequest
        {
            Success = [new TxnOp { Txn = new TxnRequest { Compares = [new Compare { Key = B("pt/y"), Target = CompareTarget.Value, Value = B("y1") }] } }],
        }));
        Assert.Equal(ValueProtectionError.ValueCompare, nested.Error);
        Assert.Equal(before, (await raw.GetAsync("pt/y")).Header.Revision);
        await client.DeleteAsync("pt/", prefix: true);
    }

    [Fact]
    public async Task Watch_events_and_their_previous_values_arrive_opened()
    {
        using var p = new ValueProtector(K(1));
        await using var client = Protected(p);
        await using var raw = member.Cluster.Client();
        var start = (await client.PutAsync("pw/a", "first")).Header.Revision;
        await client.PutAsync("pw/a", "second");
        await client.DeleteAsync("pw/a");

        var events = new List<WatchEvent>();
        using (var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10)))
        {
            await foreach (var r in client.WatchAsync("pw/", prefix: true, startRevision: start, prevKv: true, cancellationToken: cts.Token))
            {
                events.AddRange(r.Events);
                if (events.Count >= 3) break;
            }
        }
        Assert.Equal([WatchEventType.Put, WatchEventType.Put, WatchEventType.Delete], events.Select(e => e.Type));
        Assert.Equal("first", S(events[0].Kv.Value));
        Assert.Null(events[0].PrevKv);
        Assert.Equal(("second", "first"), (S(events[1].Kv.Value), S(events[1].PrevKv!.Value)));
        Assert.Equal(("", "second"), (S(events[2].Kv.Value), S(events[2].PrevKv!.Value)));

        // The same history through a client without the protector: envelopes.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await foreach (var r in raw.WatchAsync("pw/", prefix: true, startRevision: start, cancellationToken: stop.Token))
        {
            if (r.Events.Count == 0) continue;
            Assert.True(ValueProtector.IsSealed(r.Events[0].Kv.Value));
            break;
        }
    }

    [Fact]
    public async Task Rotation_reseals_every_value_under_the_current_key_so_the_old_key_can_go()
    {
        await using var raw = member.Cluster.Client();
        using var old = new ValueProtector(K(1));
        await using var before = Protected(old);
        await before.DeleteAsync("pr/", prefix: true);
        var lease = (await before.LeaseGrantAsync(300)).Body.Id;
        for (var i = 0; i < 150; i++) await before.PutAsync($"pr/{i:d3}", $"value {i}", lease: i == 7 ? lease : 0);
        await before.PutAsync("pr0/outside", "not under the prefix");

        using var rotating = new ValueProtector(K(2), K(1));
        await using var during = Protected(rotating);
        await during.PutAsync("pr/new", "already under key 2");
        Assert.Equal("value 42", S((await during.GetAsync("pr/042")).Body!.Value));   // old values open with the old key kept

        var result = await during.ResealAsync("pr/");
        Assert.Equal(new ResealResult(151, 150, 0), result);
        var (_, stored) = await raw.GetPrefixAsync("pr/");
        Assert.All(stored.Kvs, kv => Assert.True(ValueProtector.TryReadKeyId(kv.Value, out var id) && id == 2, $"{S(kv.Key)} is not under key 2"));
        Assert.Equal(lease, stored.Kvs.Single(kv => S(kv.Key) == "pr/007").Lease);
        await AssertStoredSealedAsync(raw, "pr0/outside", "not under the prefix", 1);
        Assert.Equal(new ResealResult(151, 0, 0), await during.ResealAsync("pr/"));   // nothing left to do

        // Key 1 retired: every value opens with key 2 alone, and a keyring of key 1 alone opens none of them.
        using var retired = new ValueProtector(K(2));
        await using var after = Protected(retired);
        var (_, all) = await after.GetPrefixAsync("pr/");
        Assert.Equal(Enumerable.Range(0, 150).Select(i => $"value {i}").Append("already under key 2"), all.Kvs.Select(kv => S(kv.Value)));
        Assert.Equal(ValueProtectionError.UnknownKey, (await Assert.ThrowsAsync<CairnValueProtectionException>(() => before.GetAsync("pr/000"))).Error);
        await raw.DeleteAsync("pr/", prefix: true);
        await raw.DeleteAsync("pr0/", prefix: true);
        await raw.LeaseRevokeAsync(lease);
    }

    [Fact]
    public async Task Rotation_never_overwrites_a_value_written_between_its_read_and_its_write()
    {
        await using var raw = member.Cluster.Client();
        using var old = new ValueProtector(K(1));
        await using var writer = Protected(old);
        await writer.DeleteAsync("prr/", prefix: true);
        for (var i = 0; i < 10; i++) await writer.PutAsync($"prr/{i}", $"v{i}");

        using var rotating = new ValueProtector(K(2), K(1));
        await using var rotator = Protected(rotating);
        var raced = 0;
        var result = await rotator.ResealAsync(B("prr/"), RangeRequest.Prefix(B("prr/")), batchSize: 4, async batch =>
        {
            // Another client, still on key 1, changes one key of each batch and deletes another after it was read.
            raced++;
            await writer.PutAsync(batch[0].Key, B($"changed {raced}"));
            if (batch.Count > 1) await writer.DeleteAsync(batch[^1].Key);
        }, CancellationToken.None);

        Assert.Equal(3, raced);                       // batches of 4, 4, 2
        Assert.Equal(0, result.Remaining);
        var (_, stored) = await raw.GetPrefixAsync("prr/");
        Assert.All(stored.Kvs, kv => Assert.True(ValueProtector.TryReadKeyId(kv.Value, out var id) && id == 2));
        var (_, values) = await rotator.GetPrefixAsync("prr/");
        Assert.Equal(["changed 1", "v1", "v2", "changed 2", "v5", "v6", "changed 3"],
            values.Kvs.Select(kv => S(kv.Value)));
        Assert.Equal(7, result.Resealed);
        await raw.DeleteAsync("prr/", prefix: true);
    }

    [Fact]
    public async Task The_cairn_verbs_take_a_value_key_file()
    {
        var dir = Path.Combine(Path.GetTempPath(), "cairn-cli-value-keys", Guid.NewGuid().ToString("N"));
        try
        {
            var file = KeyFileProvider.OpenOrCreate(Path.Combine(dir, "value.key")).Path;
            var next = KeyFileProvider.OpenOrCreate(Path.Combine(dir, "next.key")).Path;
            async Task<(int Code, string Out, string Err)> Cairn(string stdin, params string[] args)
            {
                var stdout = new StringWriter { NewLine = "\n" };
                var stderr = new StringWriter { NewLine = "\n" };
                var code = await ClientVerbs.RunAsync(["--endpoints", member.Endpoint, .. args], stdout, stderr, new StringReader(stdin), CancellationToken.None);
                return (code, stdout.ToString(), stderr.ToString());
            }

            Assert.Equal((0, "OK\n", ""), await Cairn("", "put", "pc/a", "secret", "--value-key-file", file));
            Assert.Equal((0, "pc/a\nsecret\n", ""), await Cairn("", "get", "pc/a", "--value-key-file", file));
            var (code, rawOut, _) = await Cairn("", "get", "pc/a", "-w", "json");
            Assert.Equal(0, code);
            Assert.DoesNotContain(Convert.ToBase64String(B("secret")), rawOut, StringComparison.Ordinal);

            Assert.Equal((0, "SUCCESS\n\nOK\n\npc/a\nfrom txn\n", ""),
                await Cairn("mod(\"pc/a\") > \"0\"\n\nput pc/a \"from txn\"\nget pc/a\n\n\n", "--value-key-file=2=" + next + ",1=" + file, "txn"));
            var compare = await Cairn("value(\"pc/a\") = \"x\"\n\nput pc/a y\n\n\n", "txn", "--value-key-file", file);
            Assert.Equal(1, compare.Code);
            Assert.Contains("compare its mod revision", compare.Err, StringComparison.Ordinal);
            var unknown = await Cairn("", "get", "pc/a", "--value-key-file", file);     // sealed with key 2 by the txn
            Assert.Equal(1, unknown.Code);
            Assert.Contains("add key 2", unknown.Err, StringComparison.Ordinal);
            Assert.Equal((0, "1\npc/a\nfrom txn\n", ""), await Cairn("", "del", "pc/a", "--prev-kv", "--value-key-file", $"2={next},1={file}"));

            // watch opens what it prints, previous values included.
            var start = (await Cairn("", "put", "pc/w", "one", "--value-key-file", file)).Code;
            Assert.Equal(0, start);
            await Cairn("", "put", "pc/w", "two", "--value-key-file", file);
            await using (var raw = member.Cluster.Client())
            {
                var rev = (await raw.GetAsync("pc/w")).Body!.CreateRevision;
                var stdout = new CliTests.LockedWriter { NewLine = "\n" };
                var stderr = new CliTests.LockedWriter { NewLine = "\n" };
                using var interrupt = new CancellationTokenSource();
                var run = ClientVerbs.RunAsync(["--endpoints", member.Endpoint, "watch", "pc/w", "--rev", $"{rev}", "--prev-kv", "--value-key-file", file], stdout, stderr, new StringReader(""), interrupt.Token);
                const string expected = "PUT\npc/w\none\nPUT\npc/w\none\npc/w\ntwo\n";
                await TestCluster.EventuallyAsync(() => Task.FromResult(stdout.Text.Length >= expected.Length), "the watch printed both events");
                interrupt.Cancel();
                Assert.Equal(0, await run.WaitAsync(TimeSpan.FromSeconds(10)));
                Assert.Equal((expected, ""), (stdout.Text, stderr.Text));
            }

            var missing = await Cairn("", "get", "pc/a", "--value-key-file", Path.Combine(dir, "none.key"));
            Assert.Equal(1, missing.Code);
            Assert.Contains("No key file at", missing.Err, StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
