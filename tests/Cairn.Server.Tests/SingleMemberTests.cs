using System.Buffers.Binary;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>One member over real sockets: the request types, and bad input that must not disturb anyone.</summary>
public sealed class SingleMemberTests
{
    [Fact]
    public async Task Puts_gets_deletes_and_txns_match_a_model_whatever_the_consistency()
    {
        await using var cluster = new TestCluster(1, encrypted: true);
        await cluster.StartAllAsync();
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        var model = new Dictionary<string, string>();
        var random = new Random(5);
        for (var i = 0; i < 300; i++)
        {
            var key = $"k{random.Next(20)}";
            switch (random.Next(4))
            {
                case 0 or 1:
                    var value = $"v{i}";
                    await c.PutAsync(key, value);
                    model[key] = value;
                    break;
                case 2:
                    TestClient.Ok(await c.CallAsync(MessageType.DeleteRange, w => Messages.WriteDelete(w, new DeleteRangeRequest { Key = TestClient.Bytes(key) })), MessageType.DeleteRange);
                    model.Remove(key);
                    break;
                default:
                    // Compare-and-swap: set to "cas" only when the key is absent.
                    var p = TestClient.Ok(await c.CallAsync(MessageType.Txn, w => Messages.WriteTxn(w, new TxnRequest
                    {
                        Compares = [new Compare { Key = TestClient.Bytes(key), Target = CompareTarget.Version, Result = CompareResult.Equal, Number = 0 }],
                        Success = [new TxnOp { Put = new PutRequest { Key = TestClient.Bytes(key), Value = TestClient.Bytes("cas") } }],
                    })), MessageType.Txn);
                    var r = new PayloadReader(p);
                    var h = Messages.ReadHeader(ref r);
                    var txn = Messages.ReadTxnResponse(ref r, h.Revision);
                    Assert.Equal(!model.ContainsKey(key), txn.Succeeded);
                    if (txn.Succeeded) model[key] = "cas";
                    break;
            }
            var consistency = i % 2 == 0 ? Consistency.Linearizable : Consistency.Serializable;
            Assert.Equal(model.GetValueOrDefault(key), await c.GetAsync(key, consistency));
        }
        var all = await c.RangeAsync(new RangeRequest { Key = TestClient.Bytes("k"), RangeEnd = RangeRequest.Prefix(TestClient.Bytes("k")) });
        Assert.Equal(model.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => (kv.Key, kv.Value)),
            all.Kvs.Select(kv => (System.Text.Encoding.UTF8.GetString(kv.Key), System.Text.Encoding.UTF8.GetString(kv.Value))));
    }

    [Fact]
    public async Task Many_requests_in_flight_on_one_connection_each_get_their_own_answer()
    {
        await using var cluster = new TestCluster(1);
        await cluster.StartAllAsync();
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        var puts = Enumerable.Range(0, 500).Select(i => c.PutAsync($"key{i:D4}", $"value{i}")).ToList();
        var revisions = await Task.WhenAll(puts);
        Assert.Equal(500, revisions.Distinct().Count());        // each put its own revision
        var gets = Enumerable.Range(0, 500).Select(i => c.GetAsync($"key{i:D4}", i % 2 == 0 ? Consistency.Linearizable : Consistency.Serializable)).ToList();
        var values = await Task.WhenAll(gets);
        Assert.Equal(Enumerable.Range(0, 500).Select(i => $"value{i}"), values);
    }

    [Fact]
    public async Task Malformed_and_oversized_frames_get_clear_errors_and_do_not_disturb_other_clients()
    {
        await using var cluster = new TestCluster(1);
        await cluster.StartAllAsync();
        await using var good = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        await good.PutAsync("steady", "1");

        // Unknown type and truncated fields: an error naming the problem, and the connection carries on.
        await using (var bad = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            var unknown = await bad.CallAsync((MessageType)999, w => w.U64(1));
            Assert.Equal(ErrorCode.Malformed, Assert.Throws<ServerError>(() => TestClient.Ok(unknown, MessageType.Range)).Code);
            var truncated = await bad.CallAsync(MessageType.Put, w => w.U32(100)); // a key of 100 bytes that is not there
            Assert.Contains("runs past the end", Assert.Throws<ServerError>(() => TestClient.Ok(truncated, MessageType.Put)).Message);
            var trailing = await bad.CallAsync(MessageType.Status, w => w.U8(7));
            Assert.Equal(ErrorCode.Malformed, Assert.Throws<ServerError>(() => TestClient.Ok(trailing, MessageType.Status)).Code);
            var huge = await bad.CallAsync(MessageType.Txn, w => w.U32(int.MaxValue));   // a list count that cannot fit
            Assert.Equal(ErrorCode.Malformed, Assert.Throws<ServerError>(() => TestClient.Ok(huge, MessageType.Txn)).Code);
            Assert.Equal("1", await bad.GetAsync("steady"));
        }

        // A frame over the limit: answered, then the connection is closed.
        await using (var big = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1")))
        {
            var header = new byte[Frame.HeaderSize];
            Frame.WriteHeader(header, new FrameHeader(64u << 20, MessageType.Put, FrameFlags.None, 77));
            var ch = big.OpenStream(out _);
            await big.SendRawAsync(header);
            await TestCluster.EventuallyAsync(() => big.Closed, "the oversized client is disconnected");
        }

        // No hello, or garbage: refused and closed.
        await using (var rude = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"), hello: false))
        {
            await rude.SendRawAsync(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 0, 0, 0, 0 });
            await TestCluster.EventuallyAsync(() => rude.Closed, "the client without a hello is disconnected");
        }

        // Random bytes after a valid hello, many seeds: the member answers or closes, and keeps serving others.
        var random = new Random(11);
        for (var seed = 0; seed < 40; seed++)
        {
            await using var fuzz = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
            var junk = new byte[random.Next(1, 300)];
            random.NextBytes(junk);
            if (junk.Length >= Frame.HeaderSize && seed % 2 == 0)
            {
                // A plausible header: a real type and a length that fits, with random fields.
                BinaryPrimitives.WriteUInt32LittleEndian(junk, (uint)(junk.Length - Frame.HeaderSize));
                BinaryPrimitives.WriteUInt16LittleEndian(junk.AsSpan(4), (ushort)(new[] { 10, 11, 12, 13, 14, 20, 21, 30, 31, 32, 33, 40, 41, 42, 50, 54, 56 })[random.Next(17)]);
                BinaryPrimitives.WriteUInt16LittleEndian(junk.AsSpan(6), 0);
            }
            await fuzz.SendRawAsync(junk);
            await Task.Delay(5);
        }
        Assert.Equal("1", await good.GetAsync("steady"));
        await good.PutAsync("steady", "2");
        Assert.Equal("2", await good.GetAsync("steady", Consistency.Serializable));
    }

    [Fact]
    public async Task A_watch_streams_every_change_in_order_and_cancels_with_a_last_frame()
    {
        await using var cluster = new TestCluster(1);
        await cluster.StartAllAsync();
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        var before = await c.PutAsync("w/before", "0");                // not reported: the watch starts after it
        var stream = c.OpenStream(out var watchId);
        await c.SendAsync(MessageType.WatchCreate, watchId, w => Messages.WriteWatchCreate(w, new WatchRequest { Key = TestClient.Bytes("w/"), RangeEnd = RangeRequest.Prefix(TestClient.Bytes("w/")) }));
        var (created, createdPayload) = await stream.Reader.ReadAsync();
        Assert.Equal(MessageType.WatchCreate, created.Type);
        var cr = new PayloadReader(createdPayload);
        Assert.Equal(before, Messages.ReadHeader(ref cr).Revision);     // the revision before its first: resume from header + 1
        var expected = new List<(WatchEventType, string)>();
        for (var i = 0; i < 50; i++)
        {
            await c.PutAsync($"w/{i % 7}", $"{i}");
            expected.Add((WatchEventType.Put, $"w/{i % 7}"));
            await c.PutAsync($"other/{i}", "x");                  // outside the watch
            if (i % 10 == 9)
            {
                TestClient.Ok(await c.CallAsync(MessageType.DeleteRange, w => Messages.WriteDelete(w, new DeleteRangeRequest { Key = TestClient.Bytes($"w/{i % 7}") })), MessageType.DeleteRange);
                expected.Add((WatchEventType.Delete, $"w/{i % 7}"));
            }
        }
        var seen = new List<(WatchEventType, string)>();
        long lastRevision = 0;
        while (seen.Count < expected.Count)
        {
            var (h, payload) = await stream.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
            Assert.Equal(MessageType.WatchEvents, h.Type);
            var r = new PayloadReader(payload);
            var header = Messages.ReadHeader(ref r);
            foreach (var e in Messages.ReadWatchEvents(ref r, header.Revision).Events)
            {
                Assert.True(e.Kv.ModRevision > lastRevision);
                lastRevision = e.Kv.ModRevision;
                seen.Add((e.Type, System.Text.Encoding.UTF8.GetString(e.Kv.Key)));
            }
        }
        Assert.Equal(expected, seen);
        TestClient.Ok(await c.CallAsync(MessageType.WatchCancel, w => w.U64(watchId)), MessageType.WatchCancel);
        var (last, _) = await stream.Reader.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        Assert.True((last.Flags & FrameFlags.Last) != 0);
    }

    [Fact]
    public async Task A_lease_not_kept_alive_expires_through_the_log_and_its_keys_go()
    {
        await using var cluster = new TestCluster(1);
        await cluster.StartAllAsync();
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        var grant = TestClient.Ok(await c.CallAsync(MessageType.LeaseGrant, w => { w.I64(1); w.I64(0); }), MessageType.LeaseGrant);
        var r = new PayloadReader(grant);
        Messages.ReadHeader(ref r);
        var lease = r.I64();
        Assert.True(lease > 0);
        var kept = TestClient.Ok(await c.CallAsync(MessageType.LeaseGrant, w => { w.I64(5); w.I64(4242); }), MessageType.LeaseGrant);
        TestClient.Ok(await c.CallAsync(MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = TestClient.Bytes("ephemeral"), Value = [1], Lease = lease })), MessageType.Put);
        TestClient.Ok(await c.CallAsync(MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = TestClient.Bytes("kept"), Value = [1], Lease = 4242 })), MessageType.Put);
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (await c.GetAsync("ephemeral") is not null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the lease never expired");
            TestClient.Ok(await c.CallAsync(MessageType.LeaseKeepAlive, w => w.I64(4242)), MessageType.LeaseKeepAlive);
            await Task.Delay(100);
        }
        Assert.NotNull(await c.GetAsync("kept"));                  // kept alive all along
        var ttl = await c.CallAsync(MessageType.LeaseTimeToLive, w => { w.I64(lease); w.Bool(false); });
        Assert.Equal(ErrorCode.LeaseNotFound, Assert.Throws<ServerError>(() => TestClient.Ok(ttl, MessageType.LeaseTimeToLive)).Code);
        _ = kept;
    }
}
