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
    public const string EventsTree = "kv.events";         // layout 1 only (changes by revision): migrated away (Migration.cs)
    public const string MetaTree = "kv.meta";
    public const string LeaseTree = "kv.lease";           // lease id (i64 BE) → ttl (i64)
    public const string LeaseKeysTree = "kv.leasekeys";   // lease id (i64 BE) ‖ key → empty
    public const string ClusterTree = "kv.cluster";       // the server's replicated records (member directory); no revisions
    public static readonly byte[] StateKey = "state"u8.ToArray(); // revision, compact revision, applied index, NOSPACE alarm
    public static readonly byte[] LayoutKey = "layout"u8.ToArray(); // u32: the layout of the key-space trees (Encoding.cs); absent: layout 1
    public const uint Layout = 2;
    public const int StateBytes = 25;

    private Transaction _tx;
    private readonly KvOptions _options;
    private bool _empty; // read transaction over a store that has never been written
    private Tree? _indexTree, _historyTree, _leasesTree, _leaseKeysTree, _clusterTree;
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
        _indexTree = _historyTree = _leasesTree = _leaseKeysTree = _clusterTree = null;
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
        foreach (var name in new[] { IndexTree, HistoryTree, MetaTree, LeaseTree, LeaseKeysTree, ClusterTree }) w.CreateTree(name);
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
            if (_index.TryGet(q.Key, out var v) && new IndexEntry(v) is { Deleted: false } e)
            {
                var kv = Live(q.Key.AsSpan(), e, q.KeysOnly);
                if (Passes(q, kv)) { count = 1; if (!q.CountOnly) kvs.Add(kv); }
            }
            return;
        }
        var end = IsFromKey(q.RangeEnd) ? [] : q.RangeEnd;
        List<(byte[] Key, IndexEntry Entry)>? wanted = null;
        foreach (var x in _index.Range(q.Key, end))
        {
            // Filters and counting read the index in place; only returned keys become objects.
            var e = new IndexEntry(x.Value);
            if (e.Deleted) continue;
            if ((q.MinModRevision != 0 && e.Mod < q.MinModRevision) || (q.MaxModRevision != 0 && e.Mod > q.MaxModRevision)
                || (q.MinCreateRevision != 0 && e.Create < q.MinCreateRevision) || (q.MaxCreateRevision != 0 && e.Create > q.MaxCreateRevision)) continue;
            count++;
            if (!q.CountOnly && count <= limit) (wanted ??= []).Add((x.Key.ToArray(), e));
        }
        // Values are looked up once the index scan is done (a lookup in the history between steps would be one more
        // page per step for the scan's cursor to come back to).
        if (wanted is not null) foreach (var (key, e) in wanted) kvs.Add(Live(key, e, q.KeysOnly));
    }

    /// <summary>A live key's key-value: the index's counters and, unless keys only, the value from its last change.</summary>
    private KeyValue Live(ReadOnlySpan<byte> key, IndexEntry e, bool keysOnly)
    {
        var k = key.ToArray();
        return new KeyValue(k, keysOnly ? [] : ValueOf(k, e).ToArray(), e.Create, e.Mod, e.Version, e.Lease);
    }

    /// <summary>The value a live index entry points to (valid until the next lookup in this transaction).</summary>
    private ReadOnlySpan<byte> ValueOf(ReadOnlySpan<byte> key, IndexEntry e)
    {
        if (!TryRecord(e.Mod, e.Sub, out var rec)) throw new InvalidDataException($"the history record of key {Convert.ToHexString(key)} at revision {e.Mod}.{e.Sub} is missing");
        return new HistoryRecord(rec).Value;
    }

    private readonly byte[] _historyKey = new byte[KvEncoding.HistoryKeyBytes];   // TryRecord's key (one Mvcc, one thread)

    private bool TryRecord(long revision, int sub, out ReadOnlySpan<byte> record)
    {
        KvEncoding.WriteHistoryKey(_historyKey, revision, sub);
        return _history.TryGet(_historyKey, out record);
    }

    /// <summary>
    /// The key-value of <paramref name="key"/> as of <paramref name="rev"/>: from its last change (the index entry) back
    /// along the chain of its changes to the newest at or below <paramref name="rev"/>; null when that is a deletion, or
    /// when the key did not exist yet.
    /// </summary>
    private KeyValue? At(byte[] key, IndexEntry e, long rev, bool keysOnly)
    {
        var (r, s) = (e.Mod, e.Sub);
        ReadOnlySpan<byte> rec;
        while (r > rev)
        {
            if (!TryRecord(r, s, out rec)) return null;   // compacted away: nothing older is left
            var h = new HistoryRecord(rec);
            (r, s) = (h.PrevRevision, h.PrevSub);
            if (r == 0) return null;
        }
        if (!TryRecord(r, s, out rec)) return null;
        var found = new HistoryRecord(rec);
        return found.IsPut ? new KeyValue(key, keysOnly ? [] : found.Value.ToArray(), found.Create, r, found.Version, found.Lease) : null;
    }

    /// <summary>Each key's newest change at or below <paramref name="rev"/>, in key order (deleted keys stay in the index until a compaction passes them).</summary>
    private void RangePast(RangeRequest q, long rev, List<KeyValue> kvs, ref long count, long limit)
    {
        var entries = new List<(byte[] Key, IndexEntry Entry)>();
        if (q.RangeEnd.Length == 0)
        {
            if (_index.TryGet(q.Key, out var v)) entries.Add((q.Key, new IndexEntry(v)));
        }
        else
        {
            foreach (var x in _index.Range(q.Key, IsFromKey(q.RangeEnd) ? [] : q.RangeEnd)) entries.Add((x.Key.ToArray(), new IndexEntry(x.Value)));
        }
        foreach (var (key, e) in entries)
        {
            if (At(key, e, rev, q.KeysOnly) is not { } kv || !Passes(q, kv)) continue;
            count++;
            if (!q.CountOnly && kvs.Count < limit) kvs.Add(kv);
        }
    }

    private static bool IsFromKey(byte[] rangeEnd) => rangeEnd.Length == 1 && rangeEnd[0] == 0;

    private KeyValue? Current(ReadOnlySpan<byte> key) =>
        _index.TryGet(key, out var v) && new IndexEntry(v) is { Deleted: false } e ? Live(key, e, keysOnly: false) : null;

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

    /// <summary>Appends a change to the history at (<paramref name="rev"/>, <paramref name="sub"/>), pointing to the key's change before it.</summary>
    private void PutHistory(long rev, int sub, byte kind, long create, long version, long lease, long prevRev, int prevSub, ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var buf = Scratch(KvEncoding.HistoryKeyBytes + KvEncoding.HistoryValueLength(key.Length, value.Length));
        KvEncoding.WriteHistoryKey(buf, rev, sub);
        var n = KvEncoding.WriteHistoryValue(buf.AsSpan(KvEncoding.HistoryKeyBytes), kind, create, version, lease, prevRev, prevSub, key, value);
        _history.Put(buf.AsSpan(0, KvEncoding.HistoryKeyBytes), buf.AsSpan(KvEncoding.HistoryKeyBytes, n));
    }

    private void PutIndex(ReadOnlySpan<byte> key, long create, long mod, long version, long lease, int sub, bool deleted)
    {
        Span<byte> v = stackalloc byte[KvEncoding.IndexBytes];
        KvEncoding.WriteIndex(v, create, mod, version, lease, sub, deleted);
        _index.Put(key, v);
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

    /// <summary>A put from a request: its flags, and its arrays for the watch event to share rather than copy.</summary>
    public PutResponse Put(PutRequest p)
    {
        ArgumentNullException.ThrowIfNull(p.Key);
        ArgumentNullException.ThrowIfNull(p.Value);
        var flags = (p.PrevKv ? PutFlags.PrevKv : 0) | (p.IgnoreValue ? PutFlags.IgnoreValue : 0) | (p.IgnoreLease ? PutFlags.IgnoreLease : 0);
        Put(p.Key, p.Value, p.Lease, flags, p.Key, p.Value, out var prev);
        return new PutResponse(new ResponseHeader(Revision), p.PrevKv ? prev : null);
    }

    /// <summary>
    /// A put without flags straight from spans (the server's common write, read in place from the log entry): no
    /// object is made unless watchers want the event (<see cref="EventsWanted"/>). Returns the put's revision.
    /// </summary>
    public long PutPlain(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long lease) =>
        Put(key, value, lease, PutFlags.None, keyBytes: null, valueBytes: null, out _);

    /// <summary>
    /// The one put: every rule of a put is here, once, in the order the records are written — limits, the key's last
    /// change, the ignore flags' existence check, quota, lease, revision, create revision and version, lease keys,
    /// history record, index entry, watch event. <paramref name="flags"/> only choose what is kept and returned; they
    /// never change how a change is stored.
    /// </summary>
    /// <param name="key">1 to <see cref="KvOptions.MaxKeyBytes"/> bytes.</param>
    /// <param name="value">Up to <see cref="KvOptions.MaxValueBytes"/> bytes; unused under <see cref="PutFlags.IgnoreValue"/>.</param>
    /// <param name="lease">The lease to attach (0: none); unused under <see cref="PutFlags.IgnoreLease"/>.</param>
    /// <param name="flags">What is kept of the key and returned.</param>
    /// <param name="keyBytes">The bytes of <paramref name="key"/> as an array the watch event may keep (null: copied if an event is made).</param>
    /// <param name="valueBytes">The same for <paramref name="value"/>.</param>
    /// <param name="prev">The key-value the put replaced, when live and asked for (<see cref="PutFlags.PrevKv"/>) or needed (the kept value, a watch event); otherwise null.</param>
    /// <returns>The put's revision.</returns>
    private long Put(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value, long lease, PutFlags flags, byte[]? keyBytes, byte[]? valueBytes, out KeyValue? prev)
    {
        if (key.Length == 0) throw new ArgumentException("The key is empty; keys are 1 byte or more.");
        if (key.Length > _options.MaxKeyBytes) throw new TooLargeException($"key is {key.Length} bytes; the limit is {_options.MaxKeyBytes} bytes.");
        if (value.Length > _options.MaxValueBytes) throw new TooLargeException($"value is {value.Length} bytes; the limit is {_options.MaxValueBytes} bytes.");
        long create = 0, version = 0, prevLease = 0, lastRev = 0; // version 0: the key is not live (never written, or deleted)
        var lastSub = 0;
        prev = null;
        if (_index.TryGet(key, out var v))
        {
            var e = new IndexEntry(v);
            (lastRev, lastSub) = (e.Mod, e.Sub);   // a tombstone too: the key's chain of changes runs on through its deletion
            if (!e.Deleted)
            {
                (create, version, prevLease) = (e.Create, e.Version, e.Lease);
                if (EventsWanted || (flags & (PutFlags.PrevKv | PutFlags.IgnoreValue)) != 0) prev = Live(key, e, keysOnly: false);
            }
        }
        if ((flags & (PutFlags.IgnoreValue | PutFlags.IgnoreLease)) != 0 && version == 0)
        {
            throw new KeyNotFoundForUpdateException($"key {Convert.ToHexString(key)} does not exist; IgnoreValue and IgnoreLease update an existing key only.");
        }
        RefuseIfNoSpace();
        if ((flags & PutFlags.IgnoreLease) != 0) lease = prevLease;
        if (lease != 0 && !LeaseExists(lease)) throw new LeaseNotFoundException(lease);
        if ((flags & PutFlags.IgnoreValue) != 0) value = valueBytes = prev!.Value;
        BeginWrite(key);
        var rev = Revision;
        var sub = _sub++;
        if (version == 0) create = rev;   // created now, or again after a deletion
        version++;
        if (prevLease != 0 && prevLease != lease) _leaseKeys.Delete(LeaseKeyOf(prevLease, key, Scratch(8 + key.Length)));
        if (lease != 0) _leaseKeys.Put(LeaseKeyOf(lease, key, Scratch(8 + key.Length)), default);
        PutHistory(rev, sub, KvEncoding.KindPut, create, version, lease, lastRev, lastSub, key, value);
        PutIndex(key, create, rev, version, lease, sub, deleted: false);
        if (EventsWanted) Events.Add(new WatchEvent(WatchEventType.Put, new KeyValue(keyBytes ?? key.ToArray(), valueBytes ?? value.ToArray(), create, rev, version, lease), prev));
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
        var victims = new List<(KeyValue Kv, int Sub)>();
        if (d.RangeEnd.Length == 0)
        {
            if (_index.TryGet(d.Key, out var v) && new IndexEntry(v) is { Deleted: false } e) victims.Add((Live(d.Key, e, keysOnly: false), e.Sub));
        }
        else
        {
            var live = new List<(byte[] Key, IndexEntry Entry)>();
            foreach (var x in _index.Range(d.Key, IsFromKey(d.RangeEnd) ? [] : d.RangeEnd))
            {
                var e = new IndexEntry(x.Value);
                if (!e.Deleted) live.Add((x.Key.ToArray(), e));
            }
            foreach (var (key, e) in live) victims.Add((Live(key, e, keysOnly: false), e.Sub));
        }
        foreach (var (kv, lastSub) in victims)
        {
            BeginWrite(kv.Key);
            var rev = Revision;
            var sub = _sub++;
            if (kv.Lease != 0) _leaseKeys.Delete(LeaseKeyOf(kv.Lease, kv.Key));
            PutHistory(rev, sub, KvEncoding.KindDelete, 0, 0, 0, kv.ModRevision, lastSub, kv.Key, default);
            PutIndex(kv.Key, 0, rev, 0, 0, sub, deleted: true);   // a tombstone, until a compaction passes it
            Events.Add(new WatchEvent(WatchEventType.Delete, new KeyValue(kv.Key, [], 0, rev, 0, 0), kv));
        }
        var deleted = new List<KeyValue>(victims.Count);
        foreach (var (kv, _) in victims) deleted.Add(kv);
        return new DeleteRangeResponse(new ResponseHeader(Revision), victims.Count, d.PrevKv ? deleted : []);
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
        var live = new List<(byte[] Key, IndexEntry Entry)>();
        foreach (var x in _index.Range(c.Key, IsFromKey(c.RangeEnd) ? [] : c.RangeEnd))
        {
            var e = new IndexEntry(x.Value);
            if (!e.Deleted) live.Add((x.Key.ToArray(), e));
        }
        foreach (var (key, e) in live)
        {
            // Only a value compare needs the value.
            var kv = c.Target == CompareTarget.Value ? Live(key, e, keysOnly: false) : new KeyValue(key, [], e.Create, e.Mod, e.Version, e.Lease);
            if (!Holds(c, kv)) return false;
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
    /// Forgets history at or below <paramref name="rev"/>: every change there goes, except each key's newest change at
    /// or below it when that is a put (reads at rev and later still need it). Only the changes since the last
    /// compaction are read: each key changed there also loses the change an earlier compaction kept for it (the one its
    /// first change in this window points to). A key whose newest change at or below rev deleted it leaves the index.
    /// </summary>
    public CompactResponse Compact(long rev)
    {
        if (rev > Revision) throw new FutureRevisionException(rev, Revision);
        if (rev <= CompactRevision) throw new CompactedException(rev, CompactRevision);
        var window = new List<(long Rev, int Sub, string Key)>();
        var keys = new Dictionary<string, (byte[] Key, long FirstPrevRev, int FirstPrevSub, long LastRev, int LastSub, bool LastPut)>();
        foreach (var x in _history.Range(KvEncoding.HistoryKey(CompactRevision + 1, 0), KvEncoding.HistoryKey(rev + 1, 0)))
        {
            var (r, s) = KvEncoding.ParseHistoryKey(x.Key);
            var h = new HistoryRecord(x.Value);
            var id = Convert.ToHexString(h.Key);
            window.Add((r, s, id));
            keys[id] = keys.TryGetValue(id, out var k)
                ? k with { LastRev = r, LastSub = s, LastPut = h.IsPut }
                : (h.Key.ToArray(), h.PrevRevision, h.PrevSub, r, s, h.IsPut);
        }
        long removed = 0;
        foreach (var (r, s, id) in window)
        {
            var k = keys[id];
            if (r == k.LastRev && s == k.LastSub && k.LastPut) continue;   // the key's newest change at or below rev: kept
            if (_history.Delete(KvEncoding.HistoryKey(r, s))) removed++;
        }
        foreach (var k in keys.Values)
        {
            // What an earlier compaction kept for this key is older than its newest change now.
            if (k.FirstPrevRev != 0 && k.FirstPrevRev <= CompactRevision && _history.Delete(KvEncoding.HistoryKey(k.FirstPrevRev, k.FirstPrevSub))) removed++;
            // A key deleted at or below rev, and not written since, leaves the index.
            if (!k.LastPut && _index.TryGet(k.Key, out var v) && new IndexEntry(v) is { Deleted: true } e && e.Mod == k.LastRev) _index.Delete(k.Key);
        }
        CompactRevision = rev;
        return new CompactResponse(new ResponseHeader(Revision), removed);
    }

    /// <summary>Up to <paramref name="max"/> committed changes from revision <paramref name="from"/> on, with values and previous values, from the store.</summary>
    public List<WatchEvent> ReadEvents(long from, int max)
    {
        var list = new List<WatchEvent>();
        if (_empty) return list;
        var changes = new List<(long Rev, byte Kind, KeyValue Kv, long PrevRev, int PrevSub)>();
        foreach (var x in _history.Range(KvEncoding.HistoryKey(from, 0), default))
        {
            var (r, _) = KvEncoding.ParseHistoryKey(x.Key);
            if (changes.Count >= max && r != changes[^1].Rev) break;   // whole revisions only
            var h = new HistoryRecord(x.Value);
            var kv = h.IsPut ? h.ToKeyValue(r, keysOnly: false) : new KeyValue(h.Key.ToArray(), [], 0, r, 0, 0);
            changes.Add((r, h.Kind, kv, h.PrevRevision, h.PrevSub));
        }
        foreach (var (r, kind, kv, prevRev, prevSub) in changes)
        {
            // The key's change before this one is its previous value (when a put, and not compacted away).
            KeyValue? prev = null;
            if (prevRev != 0 && TryRecord(prevRev, prevSub, out var pr) && new HistoryRecord(pr) is { IsPut: true } p) prev = p.ToKeyValue(prevRev, keysOnly: false);
            list.Add(new WatchEvent(kind == KvEncoding.KindPut ? WatchEventType.Put : WatchEventType.Delete, kv, prev));
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

    /// <summary>The lease-keys entry of <paramref name="key"/> under lease <paramref name="id"/>, written into <paramref name="buffer"/>.</summary>
    private static ReadOnlySpan<byte> LeaseKeyOf(long id, ReadOnlySpan<byte> key, byte[] buffer)
    {
        BinaryPrimitives.WriteInt64BigEndian(buffer, id);
        key.CopyTo(buffer.AsSpan(8));
        return buffer.AsSpan(0, 8 + key.Length);
    }

    private bool LeaseExists(long id)
    {
        Span<byte> b = stackalloc byte[8];
        BinaryPrimitives.WriteInt64BigEndian(b, id);
        return _leases.ContainsKey(b);
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

    /// <summary>A hash of every change as of <paramref name="rev"/> (history records at or below it, in revision order), equal on every member that applied the same log.</summary>
    public ulong Hash(long rev)
    {
        var h = new System.IO.Hashing.XxHash64();
        Span<byte> buf = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(buf, CompactRevision);
        h.Append(buf);
        if (_empty) return h.GetCurrentHashAsUInt64();
        foreach (var e in _history.Range(KvEncoding.HistoryKey(0, 0), KvEncoding.HistoryKey(rev + 1, 0)))
        {
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

/// <summary>What a put keeps of the key and returns (etcd's PutRequest flags); none is the plain put.</summary>
[Flags]
internal enum PutFlags : byte
{
    None = 0,

    /// <summary>Return the key-value the put replaced.</summary>
    PrevKv = 1,

    /// <summary>Keep the key's value (the key must be live).</summary>
    IgnoreValue = 2,

    /// <summary>Keep the key's lease (the key must be live).</summary>
    IgnoreLease = 4,
}
