using System.Buffers.Binary;

namespace Cairn.Kv;

/// <summary>
/// A change to the key space as it travels through the log: exactly one of the members is set. <see cref="Encode"/>
/// and <see cref="Decode"/> give its bytes; applying the same bytes in the same order gives the same state everywhere.
/// </summary>
public sealed record KvCommand
{
    /// <summary>A put.</summary>
    public PutRequest? Put { get; init; }

    /// <summary>A delete.</summary>
    public DeleteRangeRequest? Delete { get; init; }

    /// <summary>A transaction.</summary>
    public TxnRequest? Txn { get; init; }

    /// <summary>A compaction up to this revision (0: not a compaction).</summary>
    public long CompactRevision { get; init; }

    /// <summary>Grants this lease (id and TTL in seconds).</summary>
    public (long Id, long Ttl)? LeaseGrant { get; init; }

    /// <summary>Revokes (or expires) this lease, deleting its keys at one revision (0: not a revoke).</summary>
    public long LeaseRevoke { get; init; }

    /// <summary>Raises (true) or disarms (false) the NOSPACE alarm; null: not an alarm command.</summary>
    public bool? NoSpaceAlarm { get; init; }

    /// <summary>
    /// Sets (Value non-null) or deletes (Value null) a record of cluster metadata (the member directory). It does not
    /// make a revision and watchers never see it; read the records with <see cref="KvStateMachine.ClusterMetadata"/>.
    /// </summary>
    public (byte[] Key, byte[]? Value)? Cluster { get; init; }

    /// <summary>A change of users, roles or auth itself (see <see cref="AuthState"/>); no revision, no event.</summary>
    public AuthCommand? Auth { get; init; }

    private const byte TagPut = 1, TagDelete = 2, TagTxn = 3, TagCompact = 4, TagRange = 5, TagGrant = 6, TagRevoke = 7, TagAlarm = 8, TagCluster = 9, TagAuth = 10;

    /// <summary>The command's bytes.</summary>
    public byte[] Encode()
    {
        var w = new FieldWriter();
        if (Put is not null) { w.Byte(TagPut); WritePut(w, Put); }
        else if (Delete is not null) { w.Byte(TagDelete); WriteDelete(w, Delete); }
        else if (Txn is not null) { w.Byte(TagTxn); WriteTxn(w, Txn, 0); }
        else if (CompactRevision > 0) { w.Byte(TagCompact); w.Long(CompactRevision); }
        else if (LeaseGrant is { } g) { w.Byte(TagGrant); w.Long(g.Id); w.Long(g.Ttl); }
        else if (LeaseRevoke != 0) { w.Byte(TagRevoke); w.Long(LeaseRevoke); }
        else if (NoSpaceAlarm is { } alarm) { w.Byte(TagAlarm); w.Byte(alarm ? (byte)1 : (byte)0); }
        else if (Cluster is { } c) WriteCluster(w, c.Key, c.Value);
        else if (Auth is { } a) { w.Byte(TagAuth); a.Write(w); }
        else throw new InvalidOperationException("An empty command: set Put, Delete, Txn, CompactRevision, LeaseGrant, LeaseRevoke, NoSpaceAlarm, Cluster or Auth.");
        return w.ToArray();
    }

    /// <summary>How many bytes <see cref="WritePut(Span{byte}, ReadOnlySpan{byte}, ReadOnlySpan{byte}, long, bool, bool, bool)"/> writes for a key and a value of these lengths.</summary>
    public static int PutLength(int keyLength, int valueLength) => 1 + 4 + keyLength + 4 + valueLength + 8 + 1;

    /// <summary>
    /// Writes the bytes of a put command — the same as <see cref="Encode"/> of a <see cref="PutRequest"/> — straight
    /// from spans at the start of <paramref name="destination"/>, which must hold <see cref="PutLength"/> of them (a
    /// server writes it behind its envelope in a proposal's pooled buffer: no request object, no array).
    /// </summary>
    public static void WritePut(Span<byte> destination, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long lease, bool prevKv, bool ignoreValue, bool ignoreLease)
    {
        if (destination.Length < PutLength(key.Length, value.Length)) throw new ArgumentException("The destination is shorter than PutLength.", nameof(destination));
        var at = 0;
        destination[at++] = TagPut;
        BinaryPrimitives.WriteInt32LittleEndian(destination[at..], key.Length);
        at += 4;
        key.CopyTo(destination[at..]);
        at += key.Length;
        BinaryPrimitives.WriteInt32LittleEndian(destination[at..], value.Length);
        at += 4;
        value.CopyTo(destination[at..]);
        at += value.Length;
        BinaryPrimitives.WriteInt64LittleEndian(destination[at..], lease);
        at += 8;
        destination[at] = (byte)((prevKv ? 1 : 0) | (ignoreValue ? 2 : 0) | (ignoreLease ? 4 : 0));
    }

    /// <summary>
    /// Reads a put without flags in place — the common write — as spans into <paramref name="bytes"/>. False for any
    /// other command, a put with flags, or bytes that are not a whole put (decode those with <see cref="Decode"/>).
    /// </summary>
    public static bool TryReadPlainPut(ReadOnlySpan<byte> bytes, out ReadOnlySpan<byte> key, out ReadOnlySpan<byte> value, out long lease)
    {
        key = value = default;
        lease = 0;
        if (bytes.Length < 1 + 4 + 4 + 8 + 1 || bytes[0] != TagPut) return false;
        var keyLength = BinaryPrimitives.ReadInt32LittleEndian(bytes[1..]);
        if (keyLength < 0 || keyLength > bytes.Length - 18) return false;
        var at = 5 + keyLength;
        var valueLength = BinaryPrimitives.ReadInt32LittleEndian(bytes[at..]);
        if (valueLength < 0 || valueLength != bytes.Length - at - 4 - 9) return false;
        if (bytes[^1] != 0) return false;
        key = bytes.Slice(5, keyLength);
        value = bytes.Slice(at + 4, valueLength);
        lease = BinaryPrimitives.ReadInt64LittleEndian(bytes[^9..]);
        return true;
    }

    /// <summary>Whether <paramref name="bytes"/> encode a <see cref="Cluster"/> command (without decoding them).</summary>
    public static bool IsClusterCommand(ReadOnlySpan<byte> bytes) => bytes.Length > 0 && bytes[0] == TagCluster;

    /// <summary>Whether <paramref name="bytes"/> encode an <see cref="Auth"/> command (without decoding them).</summary>
    public static bool IsAuthCommand(ReadOnlySpan<byte> bytes) => bytes.Length > 0 && bytes[0] == TagAuth;

    /// <summary>Reads a command; <see cref="InvalidDataException"/> for bytes that are not one.</summary>
    public static KvCommand Decode(ReadOnlySpan<byte> bytes)
    {
        var r = new FieldReader(bytes, "command");
        var tag = r.Byte();
        var cmd = tag switch
        {
            TagPut => new KvCommand { Put = ReadPut(ref r) },
            TagDelete => new KvCommand { Delete = ReadDelete(ref r) },
            TagTxn => new KvCommand { Txn = ReadTxn(ref r, 0) },
            TagCompact => new KvCommand { CompactRevision = Positive(r.Long()) },
            TagGrant => new KvCommand { LeaseGrant = (Positive(r.Long()), r.Long()) },
            TagRevoke => new KvCommand { LeaseRevoke = Positive(r.Long()) },
            TagAlarm => new KvCommand { NoSpaceAlarm = Flags(r.Byte(), 1) == 1 },
            TagCluster => new KvCommand { Cluster = ReadCluster(ref r) },
            TagAuth => new KvCommand { Auth = AuthCommand.Read(ref r) },
            _ => throw new InvalidDataException($"unknown command tag {tag}"),
        };
        if (!r.AtEnd) throw new InvalidDataException("trailing bytes after the command");
        return cmd;
    }

    /// <summary>Flag bits outside <paramref name="known"/> are refused, so every command has exactly one encoding.</summary>
    private static byte Flags(byte f, byte known) => (f & ~known) == 0 ? f : throw new InvalidDataException($"unknown flag bits {f:x2}");

    private static long Positive(long v) => v > 0 ? v : throw new InvalidDataException("revision or lease id must be positive");

    // Cluster: key, then flag 1 and the value for a set, flag 0 alone for a delete.
    private static void WriteCluster(FieldWriter w, byte[] key, byte[]? value)
    {
        ArgumentNullException.ThrowIfNull(key);
        w.Byte(TagCluster); w.Bytes(key);
        if (value is null) w.Byte(0);
        else { w.Byte(1); w.Bytes(value); }
    }

    private static (byte[] Key, byte[]? Value) ReadCluster(ref FieldReader r)
    {
        var key = r.Bytes();
        return (key, Flags(r.Byte(), 1) == 1 ? r.Bytes() : null);
    }

    private static void WritePut(FieldWriter w, PutRequest p)
    {
        w.Bytes(p.Key); w.Bytes(p.Value); w.Long(p.Lease);
        w.Byte((byte)((p.PrevKv ? 1 : 0) | (p.IgnoreValue ? 2 : 0) | (p.IgnoreLease ? 4 : 0)));
    }

    private static PutRequest ReadPut(ref FieldReader r)
    {
        var key = r.Bytes(); var value = r.Bytes(); var lease = r.Long(); var f = Flags(r.Byte(), 7);
        return new PutRequest { Key = key, Value = value, Lease = lease, PrevKv = (f & 1) != 0, IgnoreValue = (f & 2) != 0, IgnoreLease = (f & 4) != 0 };
    }

    private static void WriteDelete(FieldWriter w, DeleteRangeRequest d) { w.Bytes(d.Key); w.Bytes(d.RangeEnd); w.Byte(d.PrevKv ? (byte)1 : (byte)0); }

    private static DeleteRangeRequest ReadDelete(ref FieldReader r)
    {
        var key = r.Bytes(); var end = r.Bytes(); var f = Flags(r.Byte(), 1);
        return new DeleteRangeRequest { Key = key, RangeEnd = end, PrevKv = f != 0 };
    }

    private static void WriteRange(FieldWriter w, RangeRequest q)
    {
        w.Bytes(q.Key); w.Bytes(q.RangeEnd); w.Long(q.Limit); w.Long(q.Revision);
        w.Byte((byte)((q.CountOnly ? 1 : 0) | (q.KeysOnly ? 2 : 0)));
        w.Long(q.MinModRevision); w.Long(q.MaxModRevision); w.Long(q.MinCreateRevision); w.Long(q.MaxCreateRevision);
    }

    private static RangeRequest ReadRange(ref FieldReader r)
    {
        var key = r.Bytes(); var end = r.Bytes(); var limit = r.Long(); var rev = r.Long(); var f = Flags(r.Byte(), 3);
        return new RangeRequest
        {
            Key = key, RangeEnd = end, Limit = limit, Revision = rev, CountOnly = (f & 1) != 0, KeysOnly = (f & 2) != 0,
            MinModRevision = r.Long(), MaxModRevision = r.Long(), MinCreateRevision = r.Long(), MaxCreateRevision = r.Long(),
        };
    }

    private const int MaxNesting = 16;

    private static void WriteTxn(FieldWriter w, TxnRequest t, int depth)
    {
        if (depth > MaxNesting) throw new ArgumentException($"Transactions nest at most {MaxNesting} deep.");
        w.Int(t.Compares.Count);
        foreach (var c in t.Compares)
        {
            w.Bytes(c.Key); w.Bytes(c.RangeEnd); w.Byte((byte)c.Target); w.Byte((byte)c.Result); w.Bytes(c.Value); w.Long(c.Number);
        }
        WriteOps(w, t.Success, depth);
        WriteOps(w, t.Failure, depth);
    }

    private static void WriteOps(FieldWriter w, IReadOnlyList<TxnOp> ops, int depth)
    {
        w.Int(ops.Count);
        foreach (var op in ops)
        {
            if (op.Range is not null) { w.Byte(TagRange); WriteRange(w, op.Range); }
            else if (op.Put is not null) { w.Byte(TagPut); WritePut(w, op.Put); }
            else if (op.Delete is not null) { w.Byte(TagDelete); WriteDelete(w, op.Delete); }
            else if (op.Txn is not null) { w.Byte(TagTxn); WriteTxn(w, op.Txn, depth + 1); }
            else throw new ArgumentException("A transaction operation sets none of Range, Put, Delete, Txn.");
        }
    }

    private static TxnRequest ReadTxn(ref FieldReader r, int depth)
    {
        if (depth > MaxNesting) throw new InvalidDataException("transactions nested too deep");
        var n = r.Count();
        var compares = new List<Compare>(n);
        for (var i = 0; i < n; i++)
        {
            var key = r.Bytes(); var end = r.Bytes(); var target = r.Byte(); var result = r.Byte(); var value = r.Bytes(); var number = r.Long();
            if (target > (byte)CompareTarget.Lease || result > (byte)CompareResult.Greater) throw new InvalidDataException("unknown compare");
            compares.Add(new Compare { Key = key, RangeEnd = end, Target = (CompareTarget)target, Result = (CompareResult)result, Value = value, Number = number });
        }
        var success = ReadOps(ref r, depth);
        var failure = ReadOps(ref r, depth);
        return new TxnRequest { Compares = compares, Success = success, Failure = failure };
    }

    private static List<TxnOp> ReadOps(ref FieldReader r, int depth)
    {
        var n = r.Count();
        var ops = new List<TxnOp>(n);
        for (var i = 0; i < n; i++)
        {
            var tag = r.Byte();
            ops.Add(tag switch
            {
                TagRange => new TxnOp { Range = ReadRange(ref r) },
                TagPut => new TxnOp { Put = ReadPut(ref r) },
                TagDelete => new TxnOp { Delete = ReadDelete(ref r) },
                TagTxn => new TxnOp { Txn = ReadTxn(ref r, depth + 1) },
                _ => throw new InvalidDataException($"unknown operation tag {tag}"),
            });
        }
        return ops;
    }
}
