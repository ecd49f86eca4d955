using Cairn.Kv;

namespace Cairn.Protocol;

/// <summary>
/// Encodes and decodes every payload of docs/protocol.md. Requests are read by the member and written by the client;
/// responses the other way. Decoders throw <see cref="ProtocolException"/> on anything malformed.
/// </summary>
public static class Messages
{
    /// <summary>Deepest nesting of transactions accepted.</summary>
    public const int MaxTxnDepth = 8;

    // ---- hello ----

    /// <summary>Client hello: magic, lowest and highest version.</summary>
    public static void WriteHello(FrameWriter w, ushort min = Frame.Version, ushort max = Frame.Version)
    {
        w.U32(Frame.Magic);
        w.U16(min);
        w.U16(max);
    }

    /// <summary>Reads a client hello.</summary>
    public static (ushort Min, ushort Max) ReadHello(ref PayloadReader r)
    {
        if (r.U32() != Frame.Magic) throw new ProtocolException(ErrorCode.Malformed, "not a Cairn client: the hello does not start with CAIR");
        var min = r.U16();
        var max = r.U16();
        r.End();
        return (min, max);
    }

    /// <summary>The member's answer to a hello.</summary>
    public static void WriteHelloResponse(FrameWriter w, HelloResponse h)
    {
        w.U16(h.Version);
        w.U64(h.ClusterId);
        w.U64(h.MemberId);
        w.U32((uint)h.MaxFrameBytes);
    }

    /// <summary>Reads the member's answer to a hello.</summary>
    public static HelloResponse ReadHelloResponse(ref PayloadReader r)
    {
        var h = new HelloResponse(r.U16(), r.U64(), r.U64(), (int)Math.Min(r.U32(), int.MaxValue));
        r.End();
        return h;
    }

    // ---- errors and headers ----

    /// <summary>An error: code and message.</summary>
    public static void WriteError(FrameWriter w, ErrorCode code, string message)
    {
        w.U16((ushort)code);
        w.String(message);
    }

    /// <summary>Reads an error.</summary>
    public static (ErrorCode Code, string Message) ReadError(ref PayloadReader r)
    {
        var code = (ErrorCode)r.U16();
        var message = r.String();
        return (code, message);
    }

    /// <summary>The header at the start of every response.</summary>
    public static void WriteHeader(FrameWriter w, in WireHeader h)
    {
        w.U64(h.ClusterId);
        w.U64(h.MemberId);
        w.I64(h.Revision);
        w.U64(h.RaftTerm);
    }

    /// <summary>Reads a response header.</summary>
    public static WireHeader ReadHeader(ref PayloadReader r) => new(r.U64(), r.U64(), r.I64(), r.U64());

    // ---- key-values ----

    /// <summary>A key-value.</summary>
    public static void WriteKv(FrameWriter w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long create, long mod, long version, long lease)
    {
        w.Bytes(key);
        w.Bytes(value);
        w.I64(create);
        w.I64(mod);
        w.I64(version);
        w.I64(lease);
    }

    /// <summary>A key-value.</summary>
    public static void WriteKv(FrameWriter w, KeyValue kv) => WriteKv(w, kv.Key, kv.Value, kv.CreateRevision, kv.ModRevision, kv.Version, kv.Lease);

    /// <summary>Reads a key-value.</summary>
    public static KeyValue ReadKv(ref PayloadReader r) => new(r.BytesArray(), r.BytesArray(), r.I64(), r.I64(), r.I64(), r.I64());

    private const int KvMinBytes = 40;

    private static void WriteOptionalKv(FrameWriter w, KeyValue? kv)
    {
        w.Bool(kv is not null);
        if (kv is not null) WriteKv(w, kv);
    }

    private static KeyValue? ReadOptionalKv(ref PayloadReader r) => r.Bool() ? ReadKv(ref r) : null;

    private static void WriteKvs(FrameWriter w, IReadOnlyList<KeyValue> kvs)
    {
        w.Count(kvs.Count);
        foreach (var kv in kvs) WriteKv(w, kv);
    }

    private static KeyValue[] ReadKvs(ref PayloadReader r)
    {
        var kvs = new KeyValue[r.Count(KvMinBytes)];
        for (var i = 0; i < kvs.Length; i++) kvs[i] = ReadKv(ref r);
        return kvs;
    }

    // ---- range ----

    [Flags]
    private enum RangeFlags : byte { CountOnly = 1, KeysOnly = 2, Serializable = 4 }

    /// <summary>A range request.</summary>
    public static void WriteRange(FrameWriter w, RangeRequest q, Consistency consistency) =>
        WriteRange(w, q.Key, q.RangeEnd, q.Limit, q.Revision, q.CountOnly, q.KeysOnly, consistency, q.MinModRevision, q.MaxModRevision, q.MinCreateRevision, q.MaxCreateRevision);

    /// <summary>A range request from its parts (no request object: etcd's gRPC front door writes from its own messages).</summary>
    public static void WriteRange(FrameWriter w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, long limit, long revision, bool countOnly, bool keysOnly,
        Consistency consistency, long minMod, long maxMod, long minCreate, long maxCreate)
    {
        w.Bytes(key);
        w.Bytes(rangeEnd);
        w.I64(limit);
        w.I64(revision);
        w.U8((byte)((countOnly ? RangeFlags.CountOnly : 0) | (keysOnly ? RangeFlags.KeysOnly : 0) | (consistency == Consistency.Serializable ? RangeFlags.Serializable : 0)));
        w.I64(minMod);
        w.I64(maxMod);
        w.I64(minCreate);
        w.I64(maxCreate);
    }

    /// <summary>A range request read in place: the member's fast path serves single-key reads from these spans without allocating.</summary>
    public ref struct RangeView
    {
        /// <summary>First key.</summary>
        public ReadOnlySpan<byte> Key { get; set; }
        /// <summary>End of range (empty: only Key).</summary>
        public ReadOnlySpan<byte> RangeEnd { get; set; }
        /// <summary>Limit (0: none).</summary>
        public long Limit { get; set; }
        /// <summary>Revision (0: current).</summary>
        public long Revision { get; set; }
        /// <summary>Count only.</summary>
        public bool CountOnly { get; set; }
        /// <summary>Keys only.</summary>
        public bool KeysOnly { get; set; }
        /// <summary>Consistency asked for.</summary>
        public Consistency Consistency { get; set; }
        /// <summary>Only keys modified at or after this revision (0: no filter).</summary>
        public long MinMod { get; set; }
        /// <summary>Only keys modified at or before this revision (0: no filter).</summary>
        public long MaxMod { get; set; }
        /// <summary>Only keys created at or after this revision (0: no filter).</summary>
        public long MinCreate { get; set; }
        /// <summary>Only keys created at or before this revision (0: no filter).</summary>
        public long MaxCreate { get; set; }

        /// <summary>True when this is a plain read of one key at the current revision.</summary>
        public readonly bool IsSimpleGet => RangeEnd.IsEmpty && Revision == 0 && !CountOnly && MinMod == 0 && MaxMod == 0 && MinCreate == 0 && MaxCreate == 0;

        /// <summary>As a <see cref="RangeRequest"/> (copies the keys).</summary>
        public readonly RangeRequest ToRequest() => new()
        {
            Key = Key.ToArray(), RangeEnd = RangeEnd.ToArray(), Limit = Limit, Revision = Revision, CountOnly = CountOnly, KeysOnly = KeysOnly,
            MinModRevision = MinMod, MaxModRevision = MaxMod, MinCreateRevision = MinCreate, MaxCreateRevision = MaxCreate,
        };
    }

    /// <summary>Reads a range request in place.</summary>
    public static RangeView ReadRangeView(ref PayloadReader r)
    {
        var v = new RangeView { Key = r.Bytes(), RangeEnd = r.Bytes(), Limit = r.I64(), Revision = r.I64() };
        var flags = (RangeFlags)r.U8();
        v.CountOnly = (flags & RangeFlags.CountOnly) != 0;
        v.KeysOnly = (flags & RangeFlags.KeysOnly) != 0;
        v.Consistency = (flags & RangeFlags.Serializable) != 0 ? Consistency.Serializable : Consistency.Linearizable;
        v.MinMod = r.I64();
        v.MaxMod = r.I64();
        v.MinCreate = r.I64();
        v.MaxCreate = r.I64();
        if (v.Limit < 0 || v.Revision < 0) throw new ProtocolException(ErrorCode.InvalidArgument, "limit and revision must not be negative");
        return v;
    }

    /// <summary>Reads a range request.</summary>
    public static (RangeRequest Request, Consistency Consistency) ReadRange(ref PayloadReader r)
    {
        var v = ReadRangeView(ref r);
        return (v.ToRequest(), v.Consistency);
    }

    /// <summary>A range response (after the header).</summary>
    public static void WriteRangeResponse(FrameWriter w, RangeResponse resp)
    {
        WriteKvs(w, resp.Kvs);
        w.Bool(resp.More);
        w.I64(resp.Count);
    }

    /// <summary>Reads a range response (after the header).</summary>
    public static RangeResponse ReadRangeResponse(ref PayloadReader r, long revision)
    {
        var kvs = ReadKvs(ref r);
        return new RangeResponse(new ResponseHeader(revision), kvs, r.Bool(), r.I64());
    }

    // ---- put ----

    [Flags]
    private enum PutFlags : byte { PrevKv = 1, IgnoreValue = 2, IgnoreLease = 4 }

    /// <summary>A put request.</summary>
    public static void WritePut(FrameWriter w, PutRequest q) => WritePut(w, q.Key, q.Value, q.Lease, q.PrevKv, q.IgnoreValue, q.IgnoreLease);

    /// <summary>A put request from its parts.</summary>
    public static void WritePut(FrameWriter w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long lease, bool prevKv, bool ignoreValue, bool ignoreLease)
    {
        w.Bytes(key);
        w.Bytes(value);
        w.I64(lease);
        w.U8((byte)((prevKv ? PutFlags.PrevKv : 0) | (ignoreValue ? PutFlags.IgnoreValue : 0) | (ignoreLease ? PutFlags.IgnoreLease : 0)));
    }

    /// <summary>Reads a put request.</summary>
    public static PutRequest ReadPut(ref PayloadReader r)
    {
        var key = r.BytesArray();
        var value = r.BytesArray();
        var lease = r.I64();
        var f = (PutFlags)r.U8();
        return new PutRequest { Key = key, Value = value, Lease = lease, PrevKv = (f & PutFlags.PrevKv) != 0, IgnoreValue = (f & PutFlags.IgnoreValue) != 0, IgnoreLease = (f & PutFlags.IgnoreLease) != 0 };
    }

    /// <summary>A put response (after the header).</summary>
    public static void WritePutResponse(FrameWriter w, PutResponse resp) => WriteOptionalKv(w, resp.PrevKv);

    /// <summary>Reads a put response.</summary>
    public static PutResponse ReadPutResponse(ref PayloadReader r, long revision) => new(new ResponseHeader(revision), ReadOptionalKv(ref r));

    // ---- delete ----

    /// <summary>A delete request.</summary>
    public static void WriteDelete(FrameWriter w, DeleteRangeRequest q) => WriteDelete(w, q.Key, q.RangeEnd, q.PrevKv);

    /// <summary>A delete request from its parts.</summary>
    public static void WriteDelete(FrameWriter w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, bool prevKv)
    {
        w.Bytes(key);
        w.Bytes(rangeEnd);
        w.Bool(prevKv);
    }

    /// <summary>Reads a delete request.</summary>
    public static DeleteRangeRequest ReadDelete(ref PayloadReader r) => new() { Key = r.BytesArray(), RangeEnd = r.BytesArray(), PrevKv = r.Bool() };

    /// <summary>A delete response (after the header).</summary>
    public static void WriteDeleteResponse(FrameWriter w, DeleteRangeResponse resp)
    {
        w.I64(resp.Deleted);
        WriteKvs(w, resp.PrevKvs);
    }

    /// <summary>Reads a delete response.</summary>
    public static DeleteRangeResponse ReadDeleteResponse(ref PayloadReader r, long revision)
    {
        var deleted = r.I64();
        return new DeleteRangeResponse(new ResponseHeader(revision), deleted, ReadKvs(ref r));
    }

    // ---- txn ----

    /// <summary>A transaction request.</summary>
    public static void WriteTxn(FrameWriter w, TxnRequest q)
    {
        w.Count(q.Compares.Count);
        foreach (var c in q.Compares) WriteCompare(w, c.Key, c.RangeEnd, c.Target, c.Result, c.Value, c.Number);
        WriteOps(w, q.Success);
        WriteOps(w, q.Failure);
    }

    /// <summary>One compare of a transaction request.</summary>
    public static void WriteCompare(FrameWriter w, ReadOnlySpan<byte> key, ReadOnlySpan<byte> rangeEnd, CompareTarget target, CompareResult result, ReadOnlySpan<byte> value, long number)
    {
        w.Bytes(key);
        w.Bytes(rangeEnd);
        w.U8((byte)target);
        w.U8((byte)result);
        w.Bytes(value);
        w.I64(number);
    }

    /// <summary>The tag before each operation of a transaction (request and response).</summary>
    public enum TxnOpType : byte
    {
        /// <summary>A range.</summary>
        Range = 1,
        /// <summary>A put.</summary>
        Put = 2,
        /// <summary>A delete.</summary>
        Delete = 3,
        /// <summary>A nested transaction.</summary>
        Txn = 4,
    }

    private static void WriteOps(FrameWriter w, IReadOnlyList<TxnOp> ops)
    {
        w.Count(ops.Count);
        foreach (var op in ops)
        {
            if (op.Range is { } range) { w.U8(1); WriteRange(w, range, Consistency.Linearizable); }
            else if (op.Put is { } put) { w.U8(2); WritePut(w, put); }
            else if (op.Delete is { } del) { w.U8(3); WriteDelete(w, del); }
            else if (op.Txn is { } txn) { w.U8(4); WriteTxn(w, txn); }
            else throw new ArgumentException("A transaction operation must set one of Range, Put, Delete or Txn.", nameof(ops));
        }
    }

    // bytes key, bytes range_end, u8 target, u8 result, bytes value, i64 number: 4 + 4 + 1 + 1 + 4 + 8 with empty byte strings.
    private const int CompareMinBytes = 22;

    /// <summary>Reads a transaction request.</summary>
    public static TxnRequest ReadTxn(ref PayloadReader r, int depth = 0)
    {
        if (depth > MaxTxnDepth) throw new ProtocolException(ErrorCode.InvalidArgument, $"transactions nest deeper than {MaxTxnDepth}");
        var compares = new Compare[r.Count(CompareMinBytes)];
        for (var i = 0; i < compares.Length; i++)
        {
            var key = r.BytesArray();
            var end = r.BytesArray();
            var target = r.U8();
            var result = r.U8();
            if (target > (byte)CompareTarget.Lease || result > (byte)CompareResult.Greater) throw new ProtocolException(ErrorCode.Malformed, $"compare target {target} or result {result} is unknown");
            compares[i] = new Compare { Key = key, RangeEnd = end, Target = (CompareTarget)target, Result = (CompareResult)result, Value = r.BytesArray(), Number = r.I64() };
        }
        var success = ReadOps(ref r, depth);
        var failure = ReadOps(ref r, depth);
        return new TxnRequest { Compares = compares, Success = success, Failure = failure };
    }

    private static TxnOp[] ReadOps(ref PayloadReader r, int depth)
    {
        var ops = new TxnOp[r.Count(9)];
        for (var i = 0; i < ops.Length; i++)
        {
            ops[i] = r.U8() switch
            {
                1 => new TxnOp { Range = ReadRange(ref r).Request },
                2 => new TxnOp { Put = ReadPut(ref r) },
                3 => new TxnOp { Delete = ReadDelete(ref r) },
                4 => new TxnOp { Txn = ReadTxn(ref r, depth + 1) },
                var t => throw new ProtocolException(ErrorCode.Malformed, $"transaction operation type {t} is unknown"),
            };
        }
        return ops;
    }

    /// <summary>A transaction response (after the header).</summary>
    public static void WriteTxnResponse(FrameWriter w, TxnResponse resp)
    {
        w.Bool(resp.Succeeded);
        w.Count(resp.Responses.Count);
        foreach (var op in resp.Responses)
        {
            if (op.Range is { } range) { w.U8(1); WriteRangeResponse(w, range); }
            else if (op.Put is { } put) { w.U8(2); WritePutResponse(w, put); }
            else if (op.Delete is { } del) { w.U8(3); WriteDeleteResponse(w, del); }
            else if (op.Txn is { } txn) { w.U8(4); WriteTxnResponse(w, txn); }
            else throw new ArgumentException("empty transaction operation response", nameof(resp));
        }
    }

    /// <summary>Reads a transaction response.</summary>
    public static TxnResponse ReadTxnResponse(ref PayloadReader r, long revision, int depth = 0)
    {
        if (depth > MaxTxnDepth) throw new ProtocolException(ErrorCode.Malformed, $"transaction responses nest deeper than {MaxTxnDepth}");
        var succeeded = r.Bool();
        var responses = new TxnOpResponse[r.Count(2)];
        for (var i = 0; i < responses.Length; i++)
        {
            responses[i] = r.U8() switch
            {
                1 => new TxnOpResponse(Range: ReadRangeResponse(ref r, revision)),
                2 => new TxnOpResponse(Put: ReadPutResponse(ref r, revision)),
                3 => new TxnOpResponse(Delete: ReadDeleteResponse(ref r, revision)),
                4 => new TxnOpResponse(Txn: ReadTxnResponse(ref r, revision, depth + 1)),
                var t => throw new ProtocolException(ErrorCode.Malformed, $"transaction response type {t} is unknown"),
            };
        }
        return new TxnResponse(new ResponseHeader(revision), succeeded, responses);
    }

    // ---- watch ----

    [Flags]
    private enum WatchFlags : byte { PrevKv = 1, NoPut = 2, NoDelete = 4, ProgressNotify = 8 }

    /// <summary>A watch create request.</summary>
    public static void WriteWatchCreate(FrameWriter w, WatchRequest q)
    {
        w.Bytes(q.Key);
        w.Bytes(q.RangeEnd);
        w.I64(q.StartRevision);
        w.U8((byte)((q.PrevKv ? WatchFlags.PrevKv : 0) | (q.NoPut ? WatchFlags.NoPut : 0) | (q.NoDelete ? WatchFlags.NoDelete : 0) | (q.ProgressNotify ? WatchFlags.ProgressNotify : 0)));
    }

    /// <summary>Reads a watch create request.</summary>
    public static WatchRequest ReadWatchCreate(ref PayloadReader r)
    {
        var key = r.BytesArray();
        var end = r.BytesArray();
        var start = r.I64();
        var f = (WatchFlags)r.U8();
        return new WatchRequest
        {
            Key = key, RangeEnd = end, StartRevision = start, PrevKv = (f & WatchFlags.PrevKv) != 0, NoPut = (f & WatchFlags.NoPut) != 0,
            NoDelete = (f & WatchFlags.NoDelete) != 0, ProgressNotify = (f & WatchFlags.ProgressNotify) != 0,
        };
    }

    /// <summary>Pushed watch events (after the header): canceled, compact revision, events.</summary>
    public static void WriteWatchEvents(FrameWriter w, WatchResponse resp)
    {
        w.Bool(resp.Canceled);
        w.I64(resp.CompactRevision);
        w.Count(resp.Events.Count);
        foreach (var e in resp.Events)
        {
            w.U8((byte)e.Type);
            WriteKv(w, e.Kv);
            WriteOptionalKv(w, e.PrevKv);
        }
    }

    /// <summary>Reads pushed watch events.</summary>
    public static WatchResponse ReadWatchEvents(ref PayloadReader r, long revision)
    {
        var canceled = r.Bool();
        var compact = r.I64();
        var events = new WatchEvent[r.Count(KvMinBytes + 2)];
        for (var i = 0; i < events.Length; i++)
        {
            var type = r.U8();
            if (type > (byte)WatchEventType.Delete) throw new ProtocolException(ErrorCode.Malformed, $"watch event type {type} is unknown");
            events[i] = new WatchEvent((WatchEventType)type, ReadKv(ref r), ReadOptionalKv(ref r));
        }
        return new WatchResponse(new ResponseHeader(revision), events, canceled, compact);
    }

    // ---- members ----

    /// <summary>A list of members.</summary>
    public static void WriteMembers(FrameWriter w, IReadOnlyList<MemberInfo> members)
    {
        w.Count(members.Count);
        foreach (var m in members)
        {
            w.U64(m.Id);
            w.String(m.Name);
            w.String(m.PeerUrl);
            w.String(m.ClientUrl);
            w.Bool(m.IsLearner);
        }
    }

    /// <summary>Reads a list of members.</summary>
    public static MemberInfo[] ReadMembers(ref PayloadReader r)
    {
        var members = new MemberInfo[r.Count(21)];
        for (var i = 0; i < members.Length; i++) members[i] = new MemberInfo(r.U64(), r.String(), r.String(), r.String(), r.Bool());
        return members;
    }

    /// <summary>A member add request.</summary>
    public static void WriteMemberAdd(FrameWriter w, string name, string peerUrl, bool learner)
    {
        w.String(name);
        w.String(peerUrl);
        w.Bool(learner);
    }

    /// <summary>Reads a member add request.</summary>
    public static (string Name, string PeerUrl, bool Learner) ReadMemberAdd(ref PayloadReader r) => (r.String(), r.String(), r.Bool());

    // ---- status, alarms, leases, hash ----

    /// <summary>A status response (after the header).</summary>
    public static void WriteStatus(FrameWriter w, StatusResponse s)
    {
        w.String(s.Version);
        w.I64(s.DbSize);
        w.I64(s.DbSizeInUse);
        w.U64(s.Leader);
        w.U64(s.RaftIndex);
        w.U64(s.RaftTerm);
        w.U64(s.AppliedIndex);
        w.U64(s.CommitIndex);
        w.Bool(s.IsLearner);
        w.Count(s.Errors.Count);
        foreach (var e in s.Errors) w.String(e);
    }

    /// <summary>Reads a status response.</summary>
    public static StatusResponse ReadStatus(ref PayloadReader r)
    {
        var version = r.String();
        var db = r.I64();
        var inUse = r.I64();
        var leader = r.U64();
        var index = r.U64();
        var term = r.U64();
        var applied = r.U64();
        var commit = r.U64();
        var learner = r.Bool();
        var errors = new string[r.Count(4)];
        for (var i = 0; i < errors.Length; i++) errors[i] = r.String();
        return new StatusResponse(version, db, inUse, leader, index, term, applied, commit, learner, errors);
    }

    /// <summary>A list of alarms.</summary>
    public static void WriteAlarms(FrameWriter w, IReadOnlyList<Alarm> alarms)
    {
        w.Count(alarms.Count);
        foreach (var a in alarms)
        {
            w.U64(a.MemberId);
            w.U8((byte)a.Type);
        }
    }

    /// <summary>Reads a list of alarms.</summary>
    public static Alarm[] ReadAlarms(ref PayloadReader r)
    {
        var alarms = new Alarm[r.Count(9)];
        for (var i = 0; i < alarms.Length; i++) alarms[i] = new Alarm(r.U64(), (AlarmType)r.U8());
        return alarms;
    }

    /// <summary>A lease time-to-live response (after the header).</summary>
    public static void WriteTimeToLive(FrameWriter w, LeaseTimeToLiveResponse t)
    {
        w.I64(t.Id);
        w.I64(t.Ttl);
        w.I64(t.GrantedTtl);
        w.Count(t.Keys.Count);
        foreach (var k in t.Keys) w.Bytes(k);
    }

    /// <summary>Reads a lease time-to-live response.</summary>
    public static LeaseTimeToLiveResponse ReadTimeToLive(ref PayloadReader r)
    {
        var id = r.I64();
        var ttl = r.I64();
        var granted = r.I64();
        var keys = new byte[r.Count(4)][];
        for (var i = 0; i < keys.Length; i++) keys[i] = r.BytesArray();
        return new LeaseTimeToLiveResponse(id, ttl, granted, keys);
    }

    /// <summary>A list of i64 (lease ids).</summary>
    public static void WriteIds(FrameWriter w, IReadOnlyList<long> ids)
    {
        w.Count(ids.Count);
        foreach (var id in ids) w.I64(id);
    }

    /// <summary>Reads a list of i64.</summary>
    public static long[] ReadIds(ref PayloadReader r)
    {
        var ids = new long[r.Count(8)];
        for (var i = 0; i < ids.Length; i++) ids[i] = r.I64();
        return ids;
    }
}
