using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;
using Grpc.Core;
using Grpc.Net.Client;

namespace Cairn.Server.Tests;

/// <summary>
/// etcd's v3 gRPC API on a member (docs/etcd-compat.md), driven by dotnet-etcd and by the client stubs generated from
/// etcd's own .proto files that ship inside it: what these see is what any etcd client sees.
/// </summary>
public sealed class EtcdApiTests : IAsyncLifetime
{
    private readonly TestCluster _cluster = new(1);
    private GrpcChannel _channel = null!;
    private Member _member = null!;

    public async Task InitializeAsync()
    {
        _cluster.Customize = (_, o) => o with { ListenGrpc = "127.0.0.1:0" };
        await _cluster.StartAllAsync();
        _member = _cluster.Running.Single();
        _channel = Channel(_member);
    }

    public async Task DisposeAsync()
    {
        _channel.Dispose();
        await _cluster.DisposeAsync();
    }

    internal static GrpcChannel Channel(Member m) => GrpcChannel.ForAddress($"http://{m.GrpcEndpoint}");

    private static ByteString B(string s) => ByteString.CopyFromUtf8(s);

    [Fact]
    public async Task Puts_gets_deletes_and_transactions_through_dotnet_etcd_agree_with_a_model()
    {
        var etcd = new EtcdClient(_channel.CreateCallInvoker());
        var model = new SortedDictionary<string, string>(StringComparer.Ordinal);
        var random = new Random(7);
        long revision = 0;
        for (var i = 0; i < 300; i++)
        {
            var key = $"k{random.Next(40):D2}";
            switch (random.Next(4))
            {
                case 0 or 1:
                {
                    var value = $"v{i}";
                    var put = await etcd.PutAsync(new PutRequest { Key = B(key), Value = B(value), PrevKv = true });
                    Assert.True(put.Header.Revision > revision);
                    revision = put.Header.Revision;
                    Assert.Equal(model.GetValueOrDefault(key), put.PrevKv?.Value.ToStringUtf8());
                    model[key] = value;
                    break;
                }
                case 2:
                {
                    var del = await etcd.DeleteAsync(new DeleteRangeRequest { Key = B(key) });
                    Assert.Equal(model.Remove(key) ? 1 : 0, del.Deleted);
                    break;
                }
                default:
                {
                    // compare-and-swap on the value the model holds
                    var expected = model.GetValueOrDefault(key) ?? "";
                    var txn = new TxnRequest();
                    txn.Compare.Add(model.ContainsKey(key)
                        ? new Compare { Key = B(key), Target = Compare.Types.CompareTarget.Value, Result = Compare.Types.CompareResult.Equal, Value = B(expected) }
                        : new Compare { Key = B(key), Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Equal, Version = 0 });
                    txn.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B(key), Value = B($"cas{i}") } });
                    txn.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = B(key) } });
                    var answer = await etcd.TransactionAsync(txn);
                    Assert.True(answer.Succeeded);
                    Assert.Single(answer.Responses);
                    Assert.NotNull(answer.Responses[0].ResponsePut);
                    model[key] = $"cas{i}";
                    break;
                }
            }
        }
        var all = await etcd.GetAsync(new RangeRequest { Key = B("k"), RangeEnd = B("l") });
        Assert.Equal(model.Keys, all.Kvs.Select(kv => kv.Key.ToStringUtf8()));
        Assert.Equal(model.Values, all.Kvs.Select(kv => kv.Value.ToStringUtf8()));
        Assert.Equal(model.Count, all.Count);
        Assert.Equal(_member.ClusterId, all.Header.ClusterId);
        Assert.Equal(_member.Id, all.Header.MemberId);
        Assert.True(all.Header.RaftTerm > 0);
        // A failed compare runs the other branch, whose range answers the key.
        var first = model.First();
        var txnFail = new TxnRequest();
        txnFail.Compare.Add(new Compare { Key = B(first.Key), Target = Compare.Types.CompareTarget.Value, Result = Compare.Types.CompareResult.Equal, Value = B("no such value") });
        txnFail.Failure.Add(new RequestOp { RequestRange = new RangeRequest { Key = B(first.Key) } });
        var failed = await etcd.TransactionAsync(txnFail);
        Assert.False(failed.Succeeded);
        Assert.Equal(first.Value, failed.Responses[0].ResponseRange.Kvs.Single().Value.ToStringUtf8());
    }

    [Fact]
    public async Task Ranges_sort_by_every_target_and_cut_to_the_limit_as_etcd_does()
    {
        var kv = new KV.KVClient(_channel);
        // Values in the opposite order of the keys; mod revisions in key order.
        for (var i = 0; i < 5; i++) await kv.PutAsync(new PutRequest { Key = B($"s{i}"), Value = B($"{9 - i}") });
        await kv.PutAsync(new PutRequest { Key = B("s0"), Value = B("9") }); // s0: version 2, newest mod revision
        var byValue = await kv.RangeAsync(new RangeRequest { Key = B("s"), RangeEnd = B("t"), SortTarget = RangeRequest.Types.SortTarget.Value, SortOrder = RangeRequest.Types.SortOrder.Ascend, Limit = 2 });
        Assert.Equal(["s4", "s3"], byValue.Kvs.Select(k => k.Key.ToStringUtf8()));
        Assert.True(byValue.More);
        Assert.Equal(5, byValue.Count);
        var byModDescending = await kv.RangeAsync(new RangeRequest { Key = B("s"), RangeEnd = B("t"), SortTarget = RangeRequest.Types.SortTarget.Mod, SortOrder = RangeRequest.Types.SortOrder.Descend });
        Assert.Equal(["s0", "s4", "s3", "s2", "s1"], byModDescending.Kvs.Select(k => k.Key.ToStringUtf8()));
        Assert.False(byModDescending.More);
        var keysDescending = await kv.RangeAsync(new RangeRequest { Key = B("s"), RangeEnd = B("t"), SortOrder = RangeRequest.Types.SortOrder.Descend, Limit = 3 });
        Assert.Equal(["s4", "s3", "s2"], keysDescending.Kvs.Select(k => k.Key.ToStringUtf8()));
        // A target with no order sorts ascending, as etcd does.
        var byVersion = await kv.RangeAsync(new RangeRequest { Key = B("s"), RangeEnd = B("t"), SortTarget = RangeRequest.Types.SortTarget.Version });
        Assert.Equal("s0", byVersion.Kvs.Last().Key.ToStringUtf8());
        // A negative limit is no limit, as in etcd.
        Assert.Equal(5, (await kv.RangeAsync(new RangeRequest { Key = B("s"), RangeEnd = B("t"), Limit = -1 })).Kvs.Count);
    }

    [Fact]
    public async Task Refusals_carry_etcds_codes_and_messages()
    {
        var kv = new KV.KVClient(_channel);
        var lease = new Lease.LeaseClient(_channel);
        await Refused(StatusCode.InvalidArgument, "etcdserver: key is not provided", kv.PutAsync(new PutRequest { Value = B("v") }).ResponseAsync);
        await Refused(StatusCode.InvalidArgument, "etcdserver: key is not provided", kv.RangeAsync(new RangeRequest { Serializable = true }).ResponseAsync);
        await Refused(StatusCode.InvalidArgument, "etcdserver: value is provided", kv.PutAsync(new PutRequest { Key = B("a"), Value = B("v"), IgnoreValue = true }).ResponseAsync);
        await Refused(StatusCode.InvalidArgument, "etcdserver: lease is provided", kv.PutAsync(new PutRequest { Key = B("a"), Lease = 5, IgnoreLease = true }).ResponseAsync);
        await Refused(StatusCode.NotFound, "etcdserver: requested lease not found", kv.PutAsync(new PutRequest { Key = B("a"), Value = B("v"), Lease = 12345 }).ResponseAsync);
        var future = await kv.PutAsync(new PutRequest { Key = B("a"), Value = B("1") });
        await Refused(StatusCode.OutOfRange, "etcdserver: mvcc: required revision is a future revision", kv.RangeAsync(new RangeRequest { Key = B("a"), Revision = future.Header.Revision + 10 }).ResponseAsync);
        var second = await kv.PutAsync(new PutRequest { Key = B("a"), Value = B("2") });
        await kv.CompactAsync(new CompactionRequest { Revision = second.Header.Revision, Physical = true });
        await Refused(StatusCode.OutOfRange, "etcdserver: mvcc: required revision has been compacted", kv.RangeAsync(new RangeRequest { Key = B("a"), Revision = future.Header.Revision }).ResponseAsync);
        // A branch that does not run is checked too; so is the number of operations.
        var unrun = new TxnRequest();
        unrun.Compare.Add(new Compare { Key = B("a"), Target = Compare.Types.CompareTarget.Version, Result = Compare.Types.CompareResult.Greater, Version = 0 });
        unrun.Failure.Add(new RequestOp { RequestPut = new PutRequest { Key = B("x"), Value = B("1") } });
        unrun.Failure.Add(new RequestOp { RequestPut = new PutRequest { Key = B("x"), Value = B("2") } });
        await Refused(StatusCode.InvalidArgument, "etcdserver: duplicate key given in txn request", kv.TxnAsync(unrun).ResponseAsync);
        var large = new TxnRequest();
        for (var i = 0; i < 129; i++) large.Success.Add(new RequestOp { RequestPut = new PutRequest { Key = B($"t{i}"), Value = B("v") } });
        await Refused(StatusCode.InvalidArgument, "etcdserver: too many operations in txn request", kv.TxnAsync(large).ResponseAsync);
        await Refused(StatusCode.OutOfRange, "etcdserver: too large lease TTL", lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 9_000_000_001 }).ResponseAsync);
        // Nothing refused reached the log: the key holds what the last accepted put wrote.
        Assert.Equal("2", (await kv.RangeAsync(new RangeRequest { Key = B("a") })).Kvs.Single().Value.ToStringUtf8());
        Assert.Empty((await kv.RangeAsync(new RangeRequest { Key = B("x") })).Kvs);
    }

    private static async Task Refused(StatusCode code, string message, Task call)
    {
        var e = await Assert.ThrowsAsync<RpcException>(() => call);
        Assert.Equal(code, e.StatusCode);
        Assert.Equal(message, e.Status.Detail);
    }

    [Fact]
    public async Task Leases_grant_renew_report_and_revoke_as_etcds()
    {
        var lease = new Lease.LeaseClient(_channel);
        var kv = new KV.KVClient(_channel);
        var granted = await lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 60 });
        Assert.NotEqual(0, granted.ID);
        Assert.Equal(60, granted.TTL);
        // A TTL under the minimum (1.5 election timeouts, whole seconds) is raised to it.
        var shortLease = await lease.LeaseGrantAsync(new LeaseGrantRequest { TTL = 0 });
        Assert.Equal((long)Math.Ceiling(1.5 * _member.Options.ElectionTimeout.TotalSeconds), shortLease.TTL);
        await kv.PutAsync(new PutRequest { Key = B("leased"), Value = B("v"), Lease = granted.ID });
        var ttl = await lease.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = granted.ID, Keys = true });
        Assert.Equal(60, ttl.GrantedTTL);
        Assert.InRange(ttl.TTL, 1, 60);
        Assert.Equal("leased", ttl.Keys.Single().ToStringUtf8());
        var list = await lease.LeaseLeasesAsync(new LeaseLeasesRequest());
        Assert.Contains(list.Leases, l => l.ID == granted.ID);
        using (var keepAlive = lease.LeaseKeepAlive())
        {
            await keepAlive.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = granted.ID });
            Assert.True(await keepAlive.ResponseStream.MoveNext());
            Assert.Equal(granted.ID, keepAlive.ResponseStream.Current.ID);
            Assert.Equal(60, keepAlive.ResponseStream.Current.TTL);
            // An unknown lease answers TTL 0, not an error, as etcd's keep-alive does.
            await keepAlive.RequestStream.WriteAsync(new LeaseKeepAliveRequest { ID = 424242 });
            Assert.True(await keepAlive.ResponseStream.MoveNext());
            Assert.Equal(0, keepAlive.ResponseStream.Current.TTL);
            await keepAlive.RequestStream.CompleteAsync();
        }
        await lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = granted.ID });
        Assert.Empty((await kv.RangeAsync(new RangeRequest { Key = B("leased") })).Kvs);
        // The time to live of a revoked lease is TTL -1, as etcd answers.
        Assert.Equal(-1, (await lease.LeaseTimeToLiveAsync(new LeaseTimeToLiveRequest { ID = granted.ID })).TTL);
        await Refused(StatusCode.NotFound, "etcdserver: requested lease not found", lease.LeaseRevokeAsync(new LeaseRevokeRequest { ID = granted.ID }).ResponseAsync);
    }

    [Fact]
    public async Task A_watch_stream_carries_created_events_from_a_revision_and_canceled()
    {
        var kv = new KV.KVClient(_channel);
        var first = await kv.PutAsync(new PutRequest { Key = B("w/a"), Value = B("1") });
        await kv.PutAsync(new PutRequest { Key = B("other"), Value = B("x") });
        await kv.PutAsync(new PutRequest { Key = B("w/b"), Value = B("2") });
        using var watch = new Watch.WatchClient(_channel).Watch();
        await watch.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest { Key = B("w/"), RangeEnd = B("w0"), StartRevision = first.Header.Revision, PrevKv = true },
        });
        Assert.True(await watch.ResponseStream.MoveNext());
        var created = watch.ResponseStream.Current;
        Assert.True(created.Created);
        var id = created.WatchId;
        await kv.DeleteRangeAsync(new DeleteRangeRequest { Key = B("w/a") });
        var events = new List<Mvccpb.Event>();
        while (events.Count < 3 && await watch.ResponseStream.MoveNext())
        {
            Assert.Equal(id, watch.ResponseStream.Current.WatchId);
            events.AddRange(watch.ResponseStream.Current.Events);
        }
        Assert.Equal(["w/a", "w/b", "w/a"], events.Select(e => e.Kv.Key.ToStringUtf8()));
        Assert.Equal([Mvccpb.Event.Types.EventType.Put, Mvccpb.Event.Types.EventType.Put, Mvccpb.Event.Types.EventType.Delete], events.Select(e => e.Type));
        Assert.Equal(first.Header.Revision, events[0].Kv.ModRevision);
        Assert.Equal("1", events[2].PrevKv.Value.ToStringUtf8());
        // A progress request is answered with no events at the revision the watch has reached, after every event up to it.
        var now = (await kv.PutAsync(new PutRequest { Key = B("elsewhere"), Value = B("x") })).Header.Revision;
        await watch.RequestStream.WriteAsync(new WatchRequest { ProgressRequest = new WatchProgressRequest() });
        Assert.True(await watch.ResponseStream.MoveNext());
        var progress = watch.ResponseStream.Current;
        Assert.Empty(progress.Events);
        Assert.False(progress.Created || progress.Canceled);
        Assert.Equal(now, progress.Header.Revision);
        await watch.RequestStream.WriteAsync(new WatchRequest { CancelRequest = new WatchCancelRequest { WatchId = id } });
        Assert.True(await watch.ResponseStream.MoveNext());
        Assert.True(watch.ResponseStream.Current.Canceled);
        Assert.Equal(id, watch.ResponseStream.Current.WatchId);
        await watch.RequestStream.CompleteAsync();
    }

    [Fact]
    public async Task Status_members_and_hashes_describe_this_member()
    {
        var maintenance = new Maintenance.MaintenanceClient(_channel);
        var status = await maintenance.StatusAsync(new StatusRequest());
        Assert.Equal(_member.Id, status.Leader);
        Assert.Equal(_member.Id, status.Header.MemberId);
        Assert.True(status.RaftIndex > 0 && status.DbSize > 0);
        var members = await new Cluster.ClusterClient(_channel).MemberListAsync(new MemberListRequest());
        var self = members.Members.Single();
        Assert.Equal(_member.Id, self.ID);
        Assert.Equal("m1", self.Name);
        Assert.Equal($"{_member.GrpcEndpoint}", self.ClientURLs.Single());
        var kv = new KV.KVClient(_channel);
        var put = await kv.PutAsync(new PutRequest { Key = B("h"), Value = B("1") });
        var before = await maintenance.HashKVAsync(new HashKVRequest { Revision = put.Header.Revision });
        await kv.PutAsync(new PutRequest { Key = B("h"), Value = B("2") });
        Assert.Equal(before.Hash, (await maintenance.HashKVAsync(new HashKVRequest { Revision = put.Header.Revision })).Hash);
        Assert.NotEqual(before.Hash, (await maintenance.HashKVAsync(new HashKVRequest())).Hash);
        Assert.Empty((await maintenance.AlarmAsync(new AlarmRequest { Action = AlarmRequest.Types.AlarmAction.Get })).Alarms);
    }

    [Fact]
    public async Task A_snapshot_streamed_through_etcds_Snapshot_rebuilds_the_store()
    {
        var kv = new KV.KVClient(_channel);
        PutResponse last = null!;
        for (var i = 0; i < 200; i++) last = await kv.PutAsync(new PutRequest { Key = B($"snap/{i:D3}"), Value = B(new string('v', 100 + i)) });
        var file = Path.Combine(_cluster.Root, "etcd-api.snapshot");
        using (var call = new Maintenance.MaintenanceClient(_channel).Snapshot(new SnapshotRequest()))
        await using (var output = File.Create(file))
        {
            while (await call.ResponseStream.MoveNext()) output.Write(call.ResponseStream.Current.Blob.Span);
        }
        var rebuilt = Path.Combine(_cluster.Root, "rebuilt.db");
        Kv.SnapshotInfo info;
        using (var input = MemberRestore.OpenDump(file))
        {
            info = Kv.KvStateMachine.BuildFromSnapshot(input, rebuilt, new Kv.KvOptions { Storage = new Storage.StorageOptions { PageSize = 16384 } }, _ => true);
        }
        Assert.Equal(last.Header.Revision, info.Revision);
        using var store = Kv.KvStateMachine.Open(rebuilt, new Kv.KvOptions { Storage = new Storage.StorageOptions { PageSize = 16384 } });
        Assert.Equal(200, store.Range(new Kv.RangeRequest { Key = "snap/"u8.ToArray(), RangeEnd = "snap0"u8.ToArray(), CountOnly = true }).Count);
    }

    [Fact]
    public async Task With_auth_on_calls_need_a_token_from_Authenticate_in_their_metadata()
    {
        var auth = new Auth.AuthClient(_channel);
        var kv = new KV.KVClient(_channel);
        await auth.UserAddAsync(new AuthUserAddRequest { Name = "root", Password = "rootpw" });
        await auth.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = "root", Role = "root" });
        await auth.UserAddAsync(new AuthUserAddRequest { Name = "app", Password = "apppw" });
        await auth.RoleAddAsync(new AuthRoleAddRequest { Name = "apps" });
        await auth.RoleGrantPermissionAsync(new AuthRoleGrantPermissionRequest
        {
            Name = "apps", Perm = new Authpb.Permission { PermType = Authpb.Permission.Types.Type.Readwrite, Key = B("app/"), RangeEnd = B("app0") },
        });
        await auth.UserGrantRoleAsync(new AuthUserGrantRoleRequest { User = "app", Role = "apps" });
        await auth.AuthEnableAsync(new AuthEnableRequest());

        await Refused(StatusCode.InvalidArgument, "etcdserver: user name is empty", kv.PutAsync(new PutRequest { Key = B("app/a"), Value = B("1") }).ResponseAsync);
        await Refused(StatusCode.InvalidArgument, "etcdserver: authentication failed, invalid user ID or password",
            auth.AuthenticateAsync(new AuthenticateRequest { Name = "app", Password = "wrong" }).ResponseAsync);
        var token = (await auth.AuthenticateAsync(new AuthenticateRequest { Name = "app", Password = "apppw" })).Token;
        var headers = new Metadata { { "token", token } };
        await kv.PutAsync(new PutRequest { Key = B("app/a"), Value = B("1") }, headers);
        Assert.Equal("1", (await kv.RangeAsync(new RangeRequest { Key = B("app/a") }, headers)).Kvs.Single().Value.ToStringUtf8());
        await Refused(StatusCode.PermissionDenied, "etcdserver: permission denied", kv.PutAsync(new PutRequest { Key = B("other"), Value = B("1") }, headers).ResponseAsync);
        await Refused(StatusCode.Unauthenticated, "etcdserver: invalid auth token", kv.PutAsync(new PutRequest { Key = B("app/a"), Value = B("1") }, new Metadata { { "token", "not-a-token" } }).ResponseAsync);
        var rootHeaders = new Metadata { { "token", (await auth.AuthenticateAsync(new AuthenticateRequest { Name = "root", Password = "rootpw" })).Token } };
        Assert.Equal(["app", "root"], (await auth.UserListAsync(new AuthUserListRequest(), rootHeaders)).Users.Order(StringComparer.Ordinal));
        Assert.Equal("app/", (await auth.RoleGetAsync(new AuthRoleGetRequest { Role = "apps" }, rootHeaders)).Perm.Single().Key.ToStringUtf8());
        await auth.AuthDisableAsync(new AuthDisableRequest(), rootHeaders);
        await kv.PutAsync(new PutRequest { Key = B("other"), Value = B("1") });
    }
}

/// <summary>etcd's API on a three-member cluster: any member serves it, and writes through a follower reach the leader.</summary>
public sealed class EtcdApiClusterTests
{
    [Fact]
    public async Task Writes_through_a_followers_etcd_port_are_forwarded_and_read_back_from_every_member()
    {
        await using var cluster = new TestCluster(3);
        cluster.Customize = (_, o) => o with { ListenGrpc = "127.0.0.1:0" };
        await cluster.StartAllAsync();
        var leader = await cluster.LeaderAsync();
        var follower = cluster.Running.First(m => m != leader);
        using var toFollower = EtcdApiTests.Channel(follower);
        var kv = new KV.KVClient(toFollower);
        PutResponse last = null!;
        for (var i = 0; i < 20; i++) last = await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8($"f{i}"), Value = ByteString.CopyFromUtf8($"{i}") });
        Assert.Equal(follower.Id, last.Header.MemberId);
        foreach (var m in cluster.Running)
        {
            using var channel = EtcdApiTests.Channel(m);
            // Linearizable: every member answers with every acknowledged write.
            var range = await new KV.KVClient(channel).RangeAsync(new RangeRequest { Key = ByteString.CopyFromUtf8("f"), RangeEnd = ByteString.CopyFromUtf8("g") });
            Assert.Equal(20, range.Count);
            Assert.True(range.Header.Revision >= last.Header.Revision);
        }
        var members = await new Cluster.ClusterClient(toFollower).MemberListAsync(new MemberListRequest());
        Assert.Equal(cluster.Running.Select(m => m.Id).Order(), members.Members.Select(m => m.ID).Order());
    }

    [Fact]
    public async Task A_watch_through_etcds_API_resumes_on_another_member_after_the_leader_is_killed_missing_nothing()
    {
        await using var cluster = new TestCluster(3);
        cluster.Customize = (_, o) => o with { ListenGrpc = "127.0.0.1:0" };
        await cluster.StartAllAsync();
        var leader = await cluster.LeaderAsync();
        var survivors = cluster.Running.Where(m => m != leader).ToList();
        var seen = new List<(long Revision, string Value)>();
        var firstRevision = 0L;
        using (var toLeader = EtcdApiTests.Channel(leader))
        {
            var kv = new KV.KVClient(toLeader);
            using var watch = new Watch.WatchClient(toLeader).Watch();
            await watch.RequestStream.WriteAsync(new WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8("fo") } });
            Assert.True(await watch.ResponseStream.MoveNext());
            Assert.True(watch.ResponseStream.Current.Created);
            for (var i = 0; i < 10; i++)
            {
                var put = await kv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("fo"), Value = ByteString.CopyFromUtf8($"{i}") });
                if (i == 0) firstRevision = put.Header.Revision;
            }
            while (seen.Count < 10 && await watch.ResponseStream.MoveNext())
                seen.AddRange(watch.ResponseStream.Current.Events.Select(e => (e.Kv.ModRevision, e.Kv.Value.ToStringUtf8())));
            await cluster.StopAsync(cluster.NameOf(leader)); // the watch's member is gone
            var ended = await Assert.ThrowsAnyAsync<Exception>(async () =>
            {
                while (await watch.ResponseStream.MoveNext()) { }
                throw new InvalidOperationException("the stream ended cleanly");
            });
            Assert.IsType<RpcException>(ended);
        }
        // Writes go on through the survivors; the client resumes the watch on one of them from the revision after the last it saw.
        await cluster.LeaderAsync();
        using var toSurvivor = EtcdApiTests.Channel(survivors[0]);
        var survivorKv = new KV.KVClient(toSurvivor);
        for (var i = 10; i < 20; i++) await survivorKv.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8("fo"), Value = ByteString.CopyFromUtf8($"{i}") });
        using var resumed = new Watch.WatchClient(toSurvivor).Watch();
        await resumed.RequestStream.WriteAsync(new WatchRequest
        {
            CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8("fo"), StartRevision = seen[^1].Revision + 1 },
        });
        Assert.True(await resumed.ResponseStream.MoveNext());
        Assert.True(resumed.ResponseStream.Current.Created);
        while (seen.Count < 20 && await resumed.ResponseStream.MoveNext())
            seen.AddRange(resumed.ResponseStream.Current.Events.Select(e => (e.Kv.ModRevision, e.Kv.Value.ToStringUtf8())));
        // Every value once, in order, at consecutive revisions from the first put on.
        Assert.Equal(Enumerable.Range(0, 20).Select(i => $"{i}"), seen.Select(e => e.Value));
        Assert.Equal(Enumerable.Range(0, 20).Select(i => firstRevision + i), seen.Select(e => e.Revision));
    }
}
