using System.Buffers.Binary;
using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>
/// The key space inside one storage transaction: reads (current and at past revisions) and, in a write transaction,
/// the changes of one revision. All of etcd's semantics live here; <see cref="KvStateMachine"/> only opens
/// transactions around it.
/// </summary>
internal sealed class Mvcc
{
    public const string IndexTree = "kv.index";
    public const string HistoryTree = "kv.history";
    public const string EventsTree = "kv.events";
    public const string MetaTree = "kv.meta";
    public const string LeaseTree = "kv.lease";           // lease id (i64 BE) → ttl (i64)
    public const string LeaseKeysTree = "kv.leasekeys";   // lease id (i64 BE) ‖ key → empty
    public const string ClusterTree = "kv.cluster";       // the server's replicated records (member directory); no revisions
    public static readonly byte[] StateKey = "state"u8.ToArray(); // revision, compact revision, applied index, NOSPACE alarm
    public const int StateBytes = 25;

    private Transaction _tx;
    private readonly KvOptions _options;
    private bool _empty; // read transaction over a store that has never been written
    private Tree? _indexTree, _historyTree, _eventsTree, _leasesTree, _leaseKeysTree, _clusterTree;
    private Tree _meta;

    // Write state of the revision being built.
    private int _sub;

    /// <summary>Changes made by this write transaction, for watchers once it commits.</summary>
    public List<WatchEvent> Events { get; } = [];
    private HashSet<string>? _written;
    private int _txnDepth;        // > 0 inside a transaction: only there can one request write a key twice

    public Mvcc(Transaction tx, KvOptions options)
    {
        _tx = tx;
        _options = options;
        Begin(tx);
    }

    /// <summary>
    /// Starts over on <paramref name="tx"/> (the state machine's writer reuses one Mvcc for every batch): the trees of
    /// the earlier transaction are forgotten, and everything a write recorded (events, flags) is cleared.
    /// </summary>
    [System.Diagnostics.CodeAnalysis.MemberNotNull(nameof(_tx))]
    public void Begin(Transaction tx)
    {
        _tx = tx;
        _indexTree = _historyTree = _eventsTree = _leasesTree = _leaseKeysTree = _clusterTree = null;
        _sub = 0;
        Events.Clear();
        _written?.Clear();
        _txnDepth = 0;
        EventsWanted = true;
        EventsSkipped = false;
        AuthChanged = false;
        Revision = CompactRevision = 0;
        Applied = 0;
        NoSpace = false;
        _empty = false;
        if (tx is WriteTransaction w) _meta = w.CreateTree(MetaTree);
        else if (!tx.TryOpenTree(MetaTree, out _meta)) _empty = true;
        if (!_empty && _meta.TryGet(StateKey, out var v))
        {
            Revision = BinaryPrimitives.ReadInt64LittleEndian(v);
            CompactRevision = BinaryPrimitives.ReadInt64LittleEndian(v[8..]);
            Applied = BinaryPrimitives.ReadUInt64LittleEndian(v[16..]);
            NoSpace = v[24] != 0;
        }
    }

    /// <summary>
    /// Starts the next batch in the same, still open write transaction (the batched backend): the trees stay open and
    /// the state (revision, applied index) is what the last batch left; only what a batch records is cleared.
    /// </summary>
    public void Continue()
    {
        _sub = 0;
        Events.Clear();
        _written?.Clear();
        _txnDepth = 0;
        EventsWanted = true;
        EventsSkipped = false;
        AuthChanged = false;
    }

    /// <summary>Creates every tree of the key space once, when a store is opened, so readers can open them without asking.</summary>
    public static void CreateTrees(WriteTransaction w)
    {
        foreach (var name in new[] { IndexTree, HistoryTree, EventsTree, MetaTree, LeaseTree, LeaseKeysTree, ClusterTree }) w.CreateTree(name);
    }

    /// <summary>Trees are opened on first use: a point read touches only the ones it needs.</summary>
    private Tree Open(ref Tree? slot, string name)
    {
        if (slot is { } t) return t;
        if (_empty) throw new InvalidOperationException("the store is empty"); // callers check _empty first
        t = _tx is WriteTransaction w ? w.CreateTree(name) : _tx.OpenTree(name);
        slot = t;
        return t;
    }

    private Tree _index => Open(ref _indexTree, IndexTree);
    private Tree _history => Open(ref _historyTree, HistoryTree);
    private Tree _events => Open(ref _eventsTree, EventsTree);
    private Tree _leases => Open(ref _leasesTree, LeaseTree);
    private Tree _leaseKeys => Open(ref _leaseKeysTree, LeaseKeysTree);
    private Tree _cluster => Open(ref _clusterTree, ClusterTree);

    /// <summary>The current revision (after the writes made so far in this transaction).</summary>
    public long Revision { get; private set; }

    public long CompactRevision { get; private set; }

    public ulong Applied { get; private set; }

    /// <summary>The replicated NOSPACE alarm: while raised, writes that add data are refused.</summary>
    public bool NoSpace { get; private set; }

    public void SetAlarm(bool raised) => NoSpace = raised;

    private void RefuseIfNoSpace()
    {
        if (NoSpace) throw new NoSpaceException("database space exceeded (NOSPACE alarm): deletes, compaction and defragmentation still work; free space, then disarm the alarm.");
    }

    // ---------------- reads ----------------

    public RangeResponse Range(RangeRequest q)
    {
        ValidateKey(q.Key, allowEmpty: false);
        var rev = q.Revision;
        if (rev < 0) throw new ArgumentException("Revision must not be negative.");
        if (rev > Revision) throw new FutureRevisionException(rev, Revision);
        if (rev > 0 && rev < CompactRevision) throw new CompactedException(rev, CompactRevision);
        var kvs = new List<KeyValue>();
        long count = 0;
        var limit = q.Limit > 0 ? q.Limit : long.MaxValue;
        if (!_empty)
        {
            if (rev == 0 || rev == Revision) RangeCurrent(q, kvs, ref count, limit);
            else RangePast(q, rev, kvs, ref count, limit);
        }
        return new RangeResponse(new ResponseHeader(Revision), q.CountOnly ? [] : kvs, count > kvs.Count && !q.CountOnly, count);
    }

    private static bool Passes(RangeRequest q, KeyValue kv) =>
        (q.MinModRevision == 0 || kv.ModRevision >= q.MinModRevision)
        && (q.MaxModRevision == 0 || kv.ModRevision <= q.MaxModRevision)
        && (q.MinCreateRevision == 0 || kv.CreateRevision >= q.MinCreateRevision)
        && (q.MaxCreateRevision == 0 || kv.CreateRevision <= q.MaxCreateRevision);

    private void RangeCurrent(RangeRequest q, List<KeyValue> kvs, ref long count, long limit)
    {
        if (q.RangeEnd.Length == 0)
        {
            if (_index.TryGet(q.Key, out var v))
            {
                var kv = KvEncoding.ReadIndex(q.Key, v, q.KeysOnly);
                if (Passes(q, kv)) { count = 1; if (!q.CountOnly) kvs.Add(kv); }
            }
            return;
        }
        var end = IsFromKey(q.RangeEnd) ? [] : q.RangeEnd;
        foreach (var e in _index.Range(q.Key, end))
        {
            // Filters and counting read the counters in place; only returned keys become objects.
            var create = BinaryPrimitives.ReadInt64LittleEndian(e.Value);
            var mod = BinaryPrimitives.ReadInt64LittleEndian(e.Value[8..]);
            if ((q.MinModRevision != 0 && mod < q.MinModRevision) || (q.MaxModRevision != 0 && mod > q.MaxModRevision)
                || (q.MinCreateRevision != 0 && create < q.MinCreateRevision) || (q.MaxCreateRevision != 0 && create > q.MaxCreateRevision)) continue;
            count++;
            if (!q.CountOnly && kvs.Count < limit) kvs.Add(KvEncoding.ReadIndex(e.Key, e.Value, q.KeysOnly));
        }
    }

    /// <summary>Each key's newest history entry at or below <paramref name="rev"/>, in key order.</summary>
    private void RangePast(RangeRequest q, long rev, List<KeyValue> kvs, ref long count, long limit)
    {
        using var c = _history.CreateCursor();
        var single = q.RangeEnd.Length == 0;
        var fromKey = IsFromKey(q.RangeEnd);
        var ok = c.Seek(KvEncoding.HistoryPrefix(q.Key));
        while (ok)
        {
            var (key, _) = KvEncoding.ParseHistoryKey(c.Key);
            if (single ? !key.AsSpan().SequenceEqual(q.Key) : !fromKey && key.AsSpan().SequenceCompareTo(q.RangeEnd) >= 0) break;
            // Newest entry of this key at or below rev: the one just before (key, rev + 1).
            if (c.Seek(KvEncoding.HistoryKey(key, rev + 1)) ? c.Prev() : c.Last())
            {
                var (k2, r2) = KvEncoding.ParseHistoryKey(c.Key);
                if (k2.AsSpan().SequenceEqual(key) && r2 <= rev && KvEncoding.ReadHistory(key, r2, c.Value, q.KeysOnly) is { } kv && Passes(q, kv))
                {
                    count++;
                    if (!q.CountOnly && kvs.Count < limit) kvs.Add(kv);
                }
            }
            if (single) break;
            ok = c.Seek(KvEncoding.HistoryPrefix(key, terminator: 2)); // past every revision of this key
        }
    }

    private static bool IsFromKey(byte[] rangeEnd) => rangeEnd.Length == 1 && rangeEnd[0] == 0;

    private KeyValue? Current(ReadOnlySpan<byte> key) =>
        _index.TryGet(key, out var v) ? KvEncoding.ReadIndex(key, v, keysOnly: false) : null;

    // ---------------- writes ----------------

    /// <summary>A reused buffer of at least <paramref name="bytes"/> (one per applying thread; never held across calls).</summary>
    private static byte[] Scratch(int bytes)
    {
        var b = t_scratch;
        if (b is null || b.Length < bytes) t_scratch = b = new byte[Math.Max(bytes, 4096)];
        return b;
    }

    [ThreadStatic]
    private static byte[]? t_scratch;

    private void PutEvent(long rev, byte kind, ReadOnlySpan<byte> key)
    {
        var buf = Scratch(12 + 1 + key.Length);
        KvEncoding.WriteEventKey(buf, rev, _sub++);
        _events.Put(buf.AsSpan(0, 12), buf.AsSpan(12, KvEncoding.WriteEventValue(buf.AsSpan(12), kind, key)));
    }

    private void BeginWrite(ReadOnlySpan<byte> key)
    {
        // Only a transaction can write one key twice; a lone put or delete writes each key once by construction.
        if (_txnDepth > 0)
        {
            _written ??= [];
            if (!_written.Add(Convert.ToHexString(key)))
            {
                throw new DuplicateKeyException($"key {Convert.ToHexString(key)} is written twice in one transaction; write each key once.");
            }
        }
        if (_sub == 0) Revision++;
    }

    public PutResponse Put(PutRequest p)
    {
        ValidateKey(p.Key, allowEmpty: false);
        if (p.Value.Length > _options.MaxValueBytes) throw new TooLargeException($"value is {p.Value.Length} bytes; the limit is {_options.MaxValueBytes} bytes.");
        var prev = Current(p.Key);
        if ((p.IgnoreValue || p.IgnoreLease) && prev is null)
        {
            throw new KeyNotFoundForUpdateException($"key {Convert.ToHexString(p.Key)} does not exist; IgnoreValue and IgnoreLease update an existing key only.");
        }
        RefuseIfNoSpace();
        var lease = p.IgnoreLease ? prev!.Lease : p.Lease;
        if (lease != 0 && !_leases.ContainsKey(LeaseKey(lease))) throw new LeaseNotFoundException(lease);
        BeginWrite(p.Key);
        var rev = Revision;
        var create = prev?.CreateRevision ?? rev;
        var version = (prev?.Version ?? 0) + 1;
        var value = p.IgnoreValue ? prev!.Value : p.Value;
        if (prev is not null && prev.Lease != 0 && prev.Lease != lease) _leaseKeys.Delete(LeaseKeyOf(prev.Lease, p.Key));
        if (lease != 0) _leaseKeys.Put(LeaseKeyOf(lease, p.Key), default);
        // Encoded into one reused buffer: the trees copy what they store into their pages.
        var hk = KvEncoding.HistoryKeyLength(p.Key);
        var buf = Scratch(Math.Max(hk + KvEncoding.HistoryHeader + value.Length, KvEncoding.IndexHeader + value.Length));
        _index.Put(p.Key, buf.AsSpan(0, KvEncoding.WriteIndexValue(buf, create, rev, version, lease, value)));
        KvEncoding.WriteHistoryKey(buf, p.Key, rev);
        _history.Put(buf.AsSpan(0, hk), buf.AsSpan(hk, KvEncoding.WriteHistoryValue(buf.AsSpan(hk), KvEncoding.KindPut, create, version, lease, value)));
        PutEvent(rev, KvEncoding.KindPut, p.Key);
        Events.Add(new WatchEvent(WatchEventType.Put, new KeyValue(p.Key, value, create, rev, version, lease), prev));
        return new PutResponse(new ResponseHeader(Revision), p.PrevKv ? prev : null);
    }

    /// <summary>
    /// A put without flags (no previous key-value, no ignore-value or ignore-lease) straight from spans: the previous
    /// record is read in place, and no object is made unless watchers want the event (<see cref="EventsWanted"/>).
    /// Returns the put's revision. The same checks and the same records as <see cref="Put"/>.
    /// </summary>
    public long PutPlain(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long lease)
    {
        if (key.Length == 0) throw new ArgumentException("The key is empty; keys are 1 byte or more.");
        if (key.Length > _options.MaxKeyBytes) throw new TooLargeException($"key is {key.Length} bytes; the limit is {_options.MaxKeyBytes} bytes.");
        if (value.Length > _options.MaxValueBytes) throw new TooLargeException($"value is {value.Length} bytes; the limit is {_options.MaxValueBytes} bytes.");
        long create = 0, version = 0, prevLease = 0;
        KeyValue? prev = null;
        var exists = _index.TryGet(key, out var v);
        if (exists)
        {
            create = BinaryPrimitives.ReadInt64LittleEndian(v);
            version = BinaryPrimitives.ReadInt64LittleEndian(v[16..]);
            prevLease = BinaryPrimitives.ReadInt64LittleEndian(v[24..]);
            if (EventsWanted) prev = KvEncoding.ReadIndex(key, v, keysOnly: false); // copied now: the put below rewrites the page
        }
        RefuseIfNoSpace();
        if (lease != 0)
        {
            Span<byte> id = stackalloc byte[8];
            BinaryPrimitives.WriteInt64BigEndian(id, lease);
            if (!_leases.ContainsKey(id)) throw new LeaseNotFoundException(lease);
        }
        BeginWrite(key);
        var rev = Revision;
        if (!exists) create = rev;
        version++;
        if (prevLease != 0 && prevLease != lease) _leaseKeys.Delete(LeaseKeyOf(prevLease, key));
        var hk = KvEncoding.HistoryKeyLength(key);
        var buf = Scratch(Math.Max(Math.Max(hk + KvEncoding.HistoryHeader + value.Length, KvEncoding.IndexHeader + value.Length), 8 + key.Length));
        if (lease != 0)
        {
            BinaryPrimitives.WriteInt64BigEndian(buf, lease);
            key.CopyTo(buf.AsSpan(8));
            _leaseKeys.Put(buf.AsSpan(0, 8 + key.Length), default);
        }
        _index.Put(key, buf.AsSpan(0, KvEncoding.WriteIndexValue(buf, create, rev, version, lease, value)));
        KvEncoding.WriteHistoryKey(buf, key, rev);
        _history.Put(buf.AsSpan(0, hk), buf.AsSpan(hk, KvEncoding.WriteHistoryValue(buf.AsSpan(hk), KvEncoding.KindPut, create, version, lease, value)));
        PutEvent(rev, KvEncoding.KindPut, key);
        if (EventsWanted) Events.Add(new WatchEvent(WatchEventType.Put, new KeyValue(key.ToArray(), value.ToArray(), create, rev, version, lease), prev));
        else EventsSkipped = true;
        return rev;
    }

    /// <summary>Whether changes are recorded in <see cref="Events"/> for watchers (false: nobody watches; <see cref="EventsSkipped"/> tells the hub).</summary>
    public bool EventsWanted { get; set; } = true;

    /// <summary>A change was made without its event (no watcher at the start of the batch): the hub must send watchers to the store.</summary>
    public bool EventsSkipped { get; private set; }

    public DeleteRangeResponse Delete(DeleteRangeRequest d)
    {
        ValidateKey(d.Key, allowEmpty: false);
        var victims = new List<KeyValue>();
        if (d.RangeEnd.Length == 0)
        {
            if (Current(d.Key) is { } kv) victims.Add(kv);
        }
        else
        {
            foreach (var e in _index.Range(d.Key, IsFromKey(d.RangeEnd) ? [] : d.RangeEnd)) victims.Add(KvEncoding.ReadIndex(e.Key, e.Value, keysOnly: false));
        }
        foreach (var kv in victims)
        {
            BeginWrite(kv.Key);
            var rev = Revision;
            _index.Delete(kv.Key);
            if (kv.Lease != 0) _leaseKeys.Delete(LeaseKeyOf(kv.Lease, kv.Key));
            var hk = KvEncoding.HistoryKeyLength(kv.Key);
            var buf = Scratch(hk + KvEncoding.HistoryHeader);
            KvEncoding.WriteHistoryKey(buf, kv.Key, rev);
            _history.Put(buf.AsSpan(0, hk), buf.AsSpan(hk, KvEncoding.WriteHistoryValue(buf.AsSpan(hk), KvEncoding.KindDelete, 0, 0, 0, default)));
            PutEvent(rev, KvEncoding.KindDelete, kv.Key);
            Events.Add(new WatchEvent(WatchEventType.Delete, new KeyValue(kv.Key, [], 0, rev, 0, 0), kv));
        }
        return new DeleteRangeResponse(new ResponseHeader(Revision), victims.Count, d.PrevKv ? victims : []);
    }

    public TxnResponse Txn(TxnRequest t)
    {
        var ok = true;
        foreach (var c in t.Compares)
        {
            if (!Holds(c)) { ok = false; break; }
        }
        var ops = ok ? t.Success : t.Failure;
        var responses = new List<TxnOpResponse>(ops.Count);
        _txnDepth++;
        try
        {
            foreach (var op in ops)
            {
                if (op.Range is not null) responses.Add(new TxnOpResponse(Range: Range(op.Range)));
                else if (op.Put is not null) responses.Add(new TxnOpResponse(Put: Put(op.Put)));
                else if (op.Delete is not null) responses.Add(new TxnOpResponse(Delete: Delete(op.Delete)));
                else if (op.Txn is not null) responses.Add(new TxnOpResponse(Txn: Txn(op.Txn)));
                else throw new ArgumentException("A transaction operation sets none of Range, Put, Delete, Txn.");
            }
        }
        finally
        {
            _txnDepth--;
        }
        // Responses carry the revision after the whole transaction, as etcd's do.
        return new TxnResponse(new ResponseHeader(Revision), ok, responses);
    }

    /// <summary>A compare holds when it holds for the key, or for every key of its range (a missing key has zeros).</summary>
    private bool Holds(Compare c)
    {
        ValidateKey(c.Key, allowEmpty: false);
        if (c.RangeEnd.Length == 0) return Holds(c, Current(c.Key));
        foreach (var e in _index.Range(c.Key, IsFromKey(c.RangeEnd) ? [] : c.RangeEnd))
        {
            if (!Holds(c, KvEncoding.ReadIndex(e.Key, e.Value, keysOnly: false))) return false;
        }
        return true;
    }

    private static bool Holds(Compare c, KeyValue? kv)
    {
        int cmp;
        if (c.Target == CompareTarget.Value)
        {
            if (kv is null) return false;
            cmp = kv.Value.AsSpan().SequenceCompareTo(c.Value);
        }
        else
        {
            var mine = c.Target switch
            {
                CompareTarget.Version => kv?.Version ?? 0,
                CompareTarget.Create => kv?.CreateRevision ?? 0,
                CompareTarget.Mod => kv?.ModRevision ?? 0,
                _ => kv?.Lease ?? 0,
            };
            cmp = mine.CompareTo(c.Number);
        }
        return c.Result switch
        {
            CompareResult.Equal => cmp == 0,
            CompareResult.NotEqual => cmp != 0,
            CompareResult.Less => cmp < 0,
            _ => cmp > 0,
        };
    }

    /// <summary>
    /// Forgets history below <paramref name="rev"/>: every change older than it goes, except each key's newest entry at
    /// or below it when that is a put (reads at rev and later still need it). Events below rev go too.
    /// </summary>
    public CompactResponse Compact(long rev)
    {
        if (rev > Revision) throw new FutureRevisionException(rev, Revision);
        if (rev <= CompactRevision) throw new CompactedException(rev, CompactRevision);
        long removed = 0;
        var events = new List<(byte[] EventKey, long Rev, byte[] Key)>();
        foreach (var e in _events.Range(KvEncoding.EventKey(0, 0), KvEncoding.EventKey(rev, 0)))
        {
            events.Add((e.Key.ToArray(), BinaryPrimitives.ReadInt64BigEndian(e.Key), e.Value[1..].ToArray()));
        }
        // Every key changed below rev: keep only its newest entry at or below rev, and only if it is a put. Entries an
        // earlier compaction kept are among those scanned, so a key deleted since loses them too.
        var doomed = new List<byte[]>();
        var seen = new HashSet<string>();
        using (var c = _history.CreateCursor())
        {
            foreach (var (_, _, key) in events)
            {
                if (!seen.Add(Convert.ToHexString(key))) continue;
                var entries = new List<(byte[] HistoryKey, bool Put)>();
                for (var ok = c.Seek(KvEncoding.HistoryPrefix(key)); ok; ok = c.Next())
                {
                    var (k, r) = KvEncoding.ParseHistoryKey(c.Key);
                    if (!k.AsSpan().SequenceEqual(key) || r > rev) break;
                    entries.Add((c.Key.ToArray(), c.Value[0] == KvEncoding.KindPut));
                }
                for (var i = 0; i < entries.Count; i++)
                {
                    if (i < entries.Count - 1 || !entries[i].Put) doomed.Add(entries[i].HistoryKey);
                }
            }
        }
        foreach (var hk in doomed)
        {
            if (_history.Delete(hk)) removed++;
        }
        foreach (var (ek, _, _) in events) _events.Delete(ek);
        CompactRevision = rev;
        return new CompactResponse(new ResponseHeader(Revision), removed);
    }

    /// <summary>Up to <paramref name="max"/> committed changes from revision <paramref name="from"/> on, with values and previous values, from the store.</summary>
    public List<WatchEvent> ReadEvents(long from, int max)
    {
        var list = new List<WatchEvent>();
        if (_empty) return list;
        using var c = _history.CreateCursor();
        foreach (var e in _events.Range(KvEncoding.EventKey(from, 0), default))
        {
            if (list.Count >= max && BinaryPrimitives.ReadInt64BigEndian(e.Key) != list[^1].Kv.ModRevision) break;
            var rev = BinaryPrimitives.ReadInt64BigEndian(e.Key);
            var kind = e.Value[0];
            var key = e.Value[1..].ToArray();
            KeyValue? prev = null;
            // The key's newest entry before rev is its previous value.
            if (c.Seek(KvEncoding.HistoryKey(key, rev)) ? c.Prev() : c.Last())
            {
                var (k, r) = KvEncoding.ParseHistoryKey(c.Key);
                if (k.AsSpan().SequenceEqual(key)) prev = KvEncoding.ReadHistory(key, r, c.Value, keysOnly: false);
            }
            if (kind == KvEncoding.KindPut)
            {
                if (!_history.TryGet(KvEncoding.HistoryKey(key, rev), out var hv)) throw new InvalidDataException($"history entry for an event at revision {rev} is missing");
                list.Add(new WatchEvent(WatchEventType.Put, KvEncoding.ReadHistory(key, rev, hv, keysOnly: false)!, prev));
            }
            else
            {
                list.Add(new WatchEvent(WatchEventType.Delete, new KeyValue(key, [], 0, rev, 0, 0), prev));
            }
        }
        return list;
    }

    // ---------------- leases ----------------

    private static byte[] LeaseKey(long id)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, id);
        return b;
    }

    private static byte[] LeaseKeyOf(long id, ReadOnlySpan<byte> key)
    {
        var b = new byte[8 + key.Length];
        BinaryPrimitives.WriteInt64BigEndian(b, id);
        key.CopyTo(b.AsSpan(8));
        return b;
    }

    public LeaseGrantResponse Grant(long id, long ttl)
    {
        if (id <= 0) throw new ArgumentException($"Lease id {id} is not positive.");
        if (ttl <= 0) throw new ArgumentException($"Lease TTL {ttl} s is not positive.");
        if (_leases.ContainsKey(LeaseKey(id))) throw new LeaseExistsException(id);
        RefuseIfNoSpace();
        _leases.Put(LeaseKey(id), KvEncoding.U64(ttl));
        return new LeaseGrantResponse(new ResponseHeader(Revision), id, ttl);
    }

    /// <summary>Deletes the lease and every key attached to it, all at one revision.</summary>
    public LeaseRevokeResponse Revoke(long id)
    {
        if (!_leases.ContainsKey(LeaseKey(id))) throw new LeaseNotFoundException(id);
        var keys = LeaseKeys(id);
        long deleted = 0;
        foreach (var key in keys) deleted += Delete(new DeleteRangeRequest { Key = key }).Deleted;
        _leases.Delete(LeaseKey(id));
        return new LeaseRevokeResponse(new ResponseHeader(Revision), deleted);
    }

    public List<byte[]> LeaseKeys(long id)
    {
        var keys = new List<byte[]>();
        if (_empty) return keys;
        var prefix = LeaseKey(id);
        foreach (var e in _leaseKeys.Prefix(prefix)) keys.Add(e.Key[8..].ToArray());
        return keys;
    }

    public LeaseInfo? Lease(long id, bool withKeys)
    {
        if (_empty || !_leases.TryGet(LeaseKey(id), out var v)) return null;
        return new LeaseInfo(id, BinaryPrimitives.ReadInt64LittleEndian(v), withKeys ? LeaseKeys(id) : []);
    }

    public List<LeaseInfo> Leases()
    {
        var all = new List<LeaseInfo>();
        if (_empty) return all;
        foreach (var e in _leases.All()) all.Add(new LeaseInfo(BinaryPrimitives.ReadInt64BigEndian(e.Key), BinaryPrimitives.ReadInt64LittleEndian(e.Value), []));
        return all;
    }

    // ---------------- cluster metadata ----------------

    /// <summary>
    /// Sets or (null value) deletes a cluster record. No revision, no event: the member directory is not part of the
    /// key space. Not refused under NOSPACE: membership must stay changeable to recover from it.
    /// </summary>
    public ResponseHeader SetCluster(byte[] key, byte[]? value)
    {
        ValidateKey(key, allowEmpty: false);
        if (value is null)
        {
            _cluster.Delete(key);
        }
        else
        {
            if (value.Length > _options.MaxValueBytes) throw new TooLargeException($"cluster record is {value.Length} bytes; the limit is {_options.MaxValueBytes} bytes.");
            _cluster.Put(key, value);
        }
        return new ResponseHeader(Revision);
    }

    /// <summary>Applies an auth change to the auth records (checked against the state this transaction sees); no revision, no event.</summary>
    public ResponseHeader ApplyAuth(AuthCommand c)
    {
        foreach (var (key, value) in AuthState.Load(ClusterMetadata()).Changes(c))
        {
            if (value is null) _cluster.Delete(key);
            else _cluster.Put(key, value);
        }
        AuthChanged = true;
        return new ResponseHeader(Revision);
    }

    /// <summary>Whether this transaction changed the auth records.</summary>
    public bool AuthChanged { get; private set; }

    public List<(byte[] Key, byte[] Value)> ClusterMetadata()
    {
        var all = new List<(byte[] Key, byte[] Value)>();
        if (_empty) return all;
        foreach (var e in _cluster.All()) all.Add((e.Key.ToArray(), e.Value.ToArray()));
        return all;
    }

    /// <summary>Ends the revision being built: the next write starts the next one.</summary>
    /// <summary>Forgets what this batch recorded for watchers and auth (after replaying batches already reported).</summary>
    public void ClearBatchRecords()
    {
        Events.Clear();
        EventsSkipped = false;
        AuthChanged = false;
    }

    public void EndRequest()
    {
        _sub = 0;
        _written?.Clear();
    }

    public void Finish(ulong applied)
    {
        if (applied > 0) Applied = applied;
        Span<byte> state = stackalloc byte[StateBytes];
        BinaryPrimitives.WriteInt64LittleEndian(state, Revision);
        BinaryPrimitives.WriteInt64LittleEndian(state[8..], CompactRevision);
        BinaryPrimitives.WriteUInt64LittleEndian(state[16..], Applied);
        state[24] = NoSpace ? (byte)1 : (byte)0;
        _meta.Put(StateKey, state);
    }

    /// <summary>A hash of every key-value as of <paramref name="rev"/> (history entries at or below it), equal on every member that applied the same log.</summary>
    public ulong Hash(long rev)
    {
        var h = new System.IO.Hashing.XxHash64();
        Span<byte> buf = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(buf, CompactRevision);
        h.Append(buf);
        if (_empty) return h.GetCurrentHashAsUInt64();
        foreach (var e in _history.All())
        {
            if (BinaryPrimitives.ReadInt64BigEndian(e.Key[^8..]) > rev) continue;
            BinaryPrimitives.WriteInt32LittleEndian(buf, e.Key.Length);
            h.Append(buf[..4]);
            h.Append(e.Key);
            BinaryPrimitives.WriteInt32LittleEndian(buf, e.Value.Length);
            h.Append(buf[..4]);
            h.Append(e.Value);
        }
        return h.GetCurrentHashAsUInt64();
    }

    private void ValidateKey(byte[] key, bool allowEmpty)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (key.Length == 0 && !allowEmpty) throw new ArgumentException("The key is empty; keys are 1 byte or more.");
        if (key.Length > _options.MaxKeyBytes) throw new TooLargeException($"key is {key.Length} bytes; the limit is {_options.MaxKeyBytes} bytes.");
    }
}
