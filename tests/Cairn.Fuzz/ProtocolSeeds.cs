using System.Text;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Fuzz;

/// <summary>Valid client-protocol frames of every message type, requests and responses, written by Cairn.Protocol's encoders.</summary>
public static class ProtocolSeeds
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static readonly WireHeader Header = new(0xC1C1, 0xA1, 42, 7);

    private static KeyValue Kv(string k, string v, long rev = 5) => new(B(k), B(v), rev - 2, rev, 3, 0);

    /// <summary>Every request a client sends, in the order of docs/protocol.md.</summary>
    public static IReadOnlyList<byte[]> Requests()
    {
        var frames = new List<byte[]>();
        void Add(MessageType type, Action<FrameWriter> body)
        {
            using var w = new FrameWriter(256);
            w.BeginFrame(type, FrameFlags.None, (ulong)frames.Count + 1);
            body(w);
            w.EndFrame();
            frames.Add(w.WrittenSpan.ToArray());
        }
        Add(MessageType.Hello, w => Messages.WriteHello(w));
        Add(MessageType.Range, w => Messages.WriteRange(w, new RangeRequest { Key = B("k1") }, Consistency.Serializable));
        Add(MessageType.Range, w => Messages.WriteRange(w, new RangeRequest
        {
            Key = B("a"), RangeEnd = RangeRequest.Prefix(B("a")), Limit = 10, Revision = 3, CountOnly = true, KeysOnly = true,
            MinModRevision = 1, MaxModRevision = 9, MinCreateRevision = 1, MaxCreateRevision = 8,
        }, Consistency.Linearizable));
        Add(MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = B("key"), Value = B("value"), Lease = 9, PrevKv = true }));
        Add(MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = B("k"), IgnoreValue = true, IgnoreLease = true }));
        Add(MessageType.DeleteRange, w => Messages.WriteDelete(w, new DeleteRangeRequest { Key = B("a"), RangeEnd = B("z"), PrevKv = true }));
        Add(MessageType.Txn, w => Messages.WriteTxn(w, SampleTxn()));
        Add(MessageType.Txn, w => Messages.WriteTxn(w, SmallComparesTxn()));
        Add(MessageType.Compact, w => w.I64(17));
        Add(MessageType.WatchCreate, w => Messages.WriteWatchCreate(w, new WatchRequest { Key = B("w"), RangeEnd = B("x"), StartRevision = 4, PrevKv = true, ProgressNotify = true }));
        Add(MessageType.WatchCancel, w => w.U64(3));
        Add(MessageType.LeaseGrant, w => { w.I64(30); w.I64(0); });
        Add(MessageType.LeaseRevoke, w => w.I64(77));
        Add(MessageType.LeaseKeepAlive, w => w.I64(77));
        Add(MessageType.LeaseTimeToLive, w => { w.I64(77); w.Bool(true); });
        Add(MessageType.LeaseList, _ => { });
        Add(MessageType.MemberList, _ => { });
        Add(MessageType.MemberAdd, w => Messages.WriteMemberAdd(w, "m4", "127.0.0.1:9480", learner: true));
        Add(MessageType.MemberRemove, w => w.U64(0xBEEF));
        Add(MessageType.MemberPromote, w => w.U64(0xBEEF));
        Add(MessageType.MemberPublish, w => { w.String("m1"); w.String("127.0.0.1:9380"); w.String("127.0.0.1:9379"); w.U64(0xA1); });
        Add(MessageType.ScalingReport, w => { w.String("m2"); w.I64(1_700_000_000_000); w.I64(1 << 28); w.I64(1 << 30); });
        Add(MessageType.AlarmRaise, w => { w.U64(0xA2); w.U8((byte)AlarmType.Corrupt); w.String("page 812: authentication tag mismatch"); });
        Add(MessageType.Status, _ => { });
        Add(MessageType.AlarmList, _ => { });
        Add(MessageType.AlarmDisarm, _ => { });
        Add(MessageType.Defragment, _ => { });
        Add(MessageType.Hash, w => w.I64(0));
        Add(MessageType.Snapshot, _ => { });
        Add(MessageType.MoveLeader, w => w.U64(0xA2));
        Add(MessageType.ScaleStatus, _ => { });
        Add(MessageType.ScaleSet, w => w.U32(3));
        Add(MessageType.Authenticate, w => AuthMessages.WriteAuthenticate(w, "root", "pw"));
        Add(MessageType.AuthToken, w => w.String("cairn1.AAAA.BBBB"));
        Add(MessageType.AuthStatus, _ => { });
        Add(MessageType.AuthChange, w => AuthMessages.WriteChange(w, new AuthChangeRequest(AuthOp.UserAdd) { Name = "app", Password = "secret" }));
        Add(MessageType.AuthChange, w => AuthMessages.WriteChange(w, new AuthChangeRequest(AuthOp.RoleGrantPermission) { Name = "app", Permission = new Permission(PermissionType.ReadWrite, B("app/"), B("app0")) }));
        Add(MessageType.AuthChange, w => AuthMessages.WriteChange(w, new AuthChangeRequest(AuthOp.UserPassword) { Name = "app", Hash = new PasswordHash(new byte[16], 1000, new byte[32]) }));
        Add(MessageType.UserList, _ => { });
        Add(MessageType.UserGet, w => w.String("app"));
        Add(MessageType.RoleList, _ => { });
        Add(MessageType.RoleGet, w => w.String("app"));
        return frames;
    }

    /// <summary>A transaction with every kind of compare and operation, nested once.</summary>
    public static TxnRequest SampleTxn() => new()
    {
        Compares =
        [
            new Compare { Key = B("a"), Target = CompareTarget.Value, Result = CompareResult.Equal, Value = B("1") },
            new Compare { Key = B("b"), RangeEnd = B("c"), Target = CompareTarget.Version, Result = CompareResult.Greater, Number = 2 },
            new Compare { Key = B("c"), Target = CompareTarget.Lease, Result = CompareResult.NotEqual, Number = 9 },
        ],
        Success =
        [
            new TxnOp { Put = new PutRequest { Key = B("a"), Value = B("2"), PrevKv = true } },
            new TxnOp { Range = new RangeRequest { Key = B("b"), RangeEnd = B("c"), Limit = 1 } },
            new TxnOp { Delete = new DeleteRangeRequest { Key = B("d") } },
            new TxnOp { Txn = new TxnRequest { Success = [new TxnOp { Put = new PutRequest { Key = B("n"), Value = B("v") } }] } },
        ],
        Failure = [new TxnOp { Range = new RangeRequest { Key = B("a") } }],
    };

    /// <summary>Compares with one-byte keys and nothing else: the smallest compares a client can send.</summary>
    public static TxnRequest SmallComparesTxn() => new()
    {
        Compares =
        [
            new Compare { Key = B("x"), Target = CompareTarget.Create, Result = CompareResult.Equal },
            new Compare { Key = B("y"), Target = CompareTarget.Create, Result = CompareResult.Equal },
            new Compare { Key = B("z"), Target = CompareTarget.Create, Result = CompareResult.Equal },
        ],
    };

    /// <summary>Every frame a member sends a client.</summary>
    public static IReadOnlyList<byte[]> Responses()
    {
        var frames = new List<byte[]>();
        void Add(MessageType type, Action<FrameWriter> body, bool header = true, FrameFlags flags = FrameFlags.Response)
        {
            using var w = new FrameWriter(256);
            w.BeginFrame(type, flags, (ulong)frames.Count + 1);
            if (header) Messages.WriteHeader(w, Header);
            body(w);
            w.EndFrame();
            frames.Add(w.WrittenSpan.ToArray());
        }
        var rh = new ResponseHeader(42);
        var kvs = new[] { Kv("a", "1"), Kv("b", "22") };
        Add(MessageType.Hello, w => Messages.WriteHelloResponse(w, new HelloResponse(1, 0xC1C1, 0xA1, 4 << 20)), header: false);
        Add(MessageType.Error, w => Messages.WriteError(w, ErrorCode.NoLeader, "no leader known; retry"), header: false);
        Add(MessageType.Range, w => Messages.WriteRangeResponse(w, new RangeResponse(rh, kvs, true, 5)));
        Add(MessageType.Put, w => Messages.WritePutResponse(w, new PutResponse(rh, Kv("k", "old"))));
        Add(MessageType.DeleteRange, w => Messages.WriteDeleteResponse(w, new DeleteRangeResponse(rh, 2, kvs)));
        Add(MessageType.Txn, w => Messages.WriteTxnResponse(w, new TxnResponse(rh, true,
        [
            new TxnOpResponse(Range: new RangeResponse(rh, kvs, false, 2)),
            new TxnOpResponse(Put: new PutResponse(rh, null)),
            new TxnOpResponse(Delete: new DeleteRangeResponse(rh, 1, [Kv("d", "x")])),
            new TxnOpResponse(Txn: new TxnResponse(rh, false, [new TxnOpResponse(Put: new PutResponse(rh, Kv("n", "v")))])),
        ])));
        Add(MessageType.Compact, w => w.I64(12));
        Add(MessageType.WatchCreate, _ => { });
        Add(MessageType.WatchEvents, w => Messages.WriteWatchEvents(w, new WatchResponse(rh,
            [new WatchEvent(WatchEventType.Put, Kv("w", "1"), Kv("w", "0", 3)), new WatchEvent(WatchEventType.Delete, Kv("w", ""), null)])));
        Add(MessageType.WatchEvents, w => Messages.WriteWatchEvents(w, new WatchResponse(rh, [], Canceled: true, CompactRevision: 9)), flags: FrameFlags.Response | FrameFlags.Last);
        Add(MessageType.WatchCancel, _ => { });
        Add(MessageType.LeaseGrant, w => { w.I64(77); w.I64(30); });
        Add(MessageType.LeaseRevoke, w => w.I64(3));
        Add(MessageType.LeaseKeepAlive, w => { w.I64(77); w.I64(30); });
        Add(MessageType.LeaseTimeToLive, w => Messages.WriteTimeToLive(w, new LeaseTimeToLiveResponse(77, 12, 30, [B("a"), B("bb")])));
        Add(MessageType.LeaseList, w => Messages.WriteIds(w, [77, 78, 79]));
        var members = new[] { new MemberInfo(0xA1, "m1", "127.0.0.1:9380", "127.0.0.1:9379", false), new MemberInfo(0xA2, "m2", "127.0.0.1:9480", "", true) };
        Add(MessageType.MemberList, w => Messages.WriteMembers(w, members));
        Add(MessageType.MemberAdd, w => { w.U64(0xA2); Messages.WriteMembers(w, members); });
        Add(MessageType.MemberRemove, w => { w.U64(0xA2); Messages.WriteMembers(w, members[..1]); });
        Add(MessageType.MemberPromote, w => { w.U64(0xA2); Messages.WriteMembers(w, members); });
        Add(MessageType.ScalingReport, _ => { });
        Add(MessageType.AlarmRaise, _ => { });
        Add(MessageType.Status, w => Messages.WriteStatus(w, new StatusResponse("0.1.0", 1 << 20, 1 << 19, 0xA1, 90, 7, 88, 89, false, ["NOSPACE alarm raised"])));
        Add(MessageType.AlarmList, w => Messages.WriteAlarms(w, [new Alarm(0, AlarmType.NoSpace), new Alarm(0xA2, AlarmType.Corrupt)]));
        Add(MessageType.AlarmDisarm, w => Messages.WriteAlarms(w, []));
        Add(MessageType.Defragment, w => { w.I64(1 << 20); w.I64(1 << 18); });
        Add(MessageType.Hash, w => { w.U64(0xDEADBEEF); w.I64(42); w.I64(3); });
        Add(MessageType.Snapshot, w => w.Raw([0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82]), header: false, flags: FrameFlags.Response | FrameFlags.Last);
        Add(MessageType.MoveLeader, _ => { });
        Add(MessageType.ScaleStatus, w => w.String("{\"units\": 1}"));
        Add(MessageType.ScaleSet, w => w.U32(2));
        Add(MessageType.Authenticate, w => w.String("cairn1.AAAA.BBBB"));
        Add(MessageType.AuthToken, w => w.String("app"));
        Add(MessageType.AuthStatus, w => { w.Bool(true); w.I64(6); });
        Add(MessageType.AuthChange, _ => { });
        Add(MessageType.UserList, w => AuthMessages.WriteNames(w, ["app", "root"]));
        Add(MessageType.UserGet, w => AuthMessages.WriteNames(w, ["app"]));
        Add(MessageType.RoleList, w => AuthMessages.WriteNames(w, ["app", "root"]));
        Add(MessageType.RoleGet, w => AuthMessages.WritePermissions(w, [new Permission(PermissionType.Read, B("a"), []), new Permission(PermissionType.Write, B("b"), [0])]));
        return frames;
    }

    /// <summary>Single frames, plus whole pipelines of them (many frames per read, as clients and members send).</summary>
    public static IReadOnlyList<byte[]> All()
    {
        var requests = Requests();
        var responses = Responses();
        var all = new List<byte[]>(requests);
        all.AddRange(responses);
        all.Add([.. requests.SelectMany(f => f)]);
        all.Add([.. responses.SelectMany(f => f)]);
        return all;
    }
}
