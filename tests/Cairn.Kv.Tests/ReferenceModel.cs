using System.Collections.Immutable;

namespace Cairn.Kv.Tests;

/// <summary>Bytewise key order.</summary>
public sealed class ByteOrder : IComparer<byte[]>
{
    public static readonly ByteOrder Instance = new();

    public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
}

/// <summary>
/// etcd's semantics in a few lines: one immutable snapshot of the key space per revision. Slow and obviously right;
/// the store is checked against it.
/// </summary>
public sealed class ReferenceModel
{
    private readonly List<ImmutableSortedDictionary<byte[], KeyValue>> _byRevision = [ImmutableSortedDictionary.Create<byte[], KeyValue>(ByteOrder.Instance)];

    public long Revision => _byRevision.Count - 1;

    public long Compacted { get; private set; }

    /// <summary>The key space as of <paramref name="rev"/>.</summary>
    public ImmutableSortedDictionary<byte[], KeyValue> Snapshot(long rev) => _byRevision[(int)rev];

    public int MaxKey { get; init; } = 2000;

    public int MaxValue { get; init; } = 1536 * 1024;

    private ImmutableSortedDictionary<byte[], KeyValue> Current => _byRevision[^1];

    private readonly Dictionary<long, long> _leases = [];

    /// <summary>Applies a command; returns the expected response or throws the expected exception type, changing nothing then.</summary>
    public object Apply(KvCommand c)
    {
        if (c.CompactRevision > 0)
        {
            if (c.CompactRevision > Revision) throw new FutureRevisionException(c.CompactRevision, Revision);
            if (c.CompactRevision <= Compacted) throw new CompactedException(c.CompactRevision, Compacted);
            Compacted = c.CompactRevision;
            return new CompactResponse(new ResponseHeader(Revision), 0);
        }
        if (c.LeaseGrant is { } g)
        {
            if (_leases.ContainsKey(g.Id)) throw new LeaseExistsException(g.Id);
            _leases[g.Id] = g.Ttl;
            return new LeaseGrantResponse(new ResponseHeader(Revision), g.Id, g.Ttl);
        }
        if (c.LeaseRevoke != 0)
        {
            if (!_leases.Remove(c.LeaseRevoke)) throw new LeaseNotFoundException(c.LeaseRevoke);
            var victims = Current.Values.Where(kv => kv.Lease == c.LeaseRevoke).ToList();
            if (victims.Count > 0) _byRevision.Add(Current.RemoveRange(victims.Select(v => v.Key)));
            return new LeaseRevokeResponse(new ResponseHeader(Revision), victims.Count);
        }
        var work = new Work(this);
        var response = c.Put is not null ? work.Put(c.Put) : c.Delete is not null ? work.Delete(c.Delete) : (object)work.Txn(c.Txn!);
        if (work.Wrote) _byRevision.Add(work.State);
        return Fix(response, Revision);
    }

    private static object Fix(object response, long revision) => response switch
    {
        PutResponse p => p with { Header = new ResponseHeader(revision) },
        DeleteRangeResponse d => d with { Header = new ResponseHeader(revision) },
        TxnResponse t => t with { Header = new ResponseHeader(revision) },
        _ => response,
    };

    public RangeResponse Range(RangeRequest q) => Range(q, Current, Revision);

    private RangeResponse Range(RangeRequest q, ImmutableSortedDictionary<byte[], KeyValue> current, long currentRevision)
    {
        var rev = q.Revision == 0 ? currentRevision : q.Revision;
        if (rev > currentRevision) throw new FutureRevisionException(rev, currentRevision);
        if (q.Revision != 0 && rev < Compacted) throw new CompactedException(rev, Compacted);
        var state = rev == currentRevision ? current : _byRevision[(int)rev];
        var matches = InRange(state, q.Key, q.RangeEnd).Where(kv =>
            (q.MinModRevision == 0 || kv.ModRevision >= q.MinModRevision) && (q.MaxModRevision == 0 || kv.ModRevision <= q.MaxModRevision)
            && (q.MinCreateRevision == 0 || kv.CreateRevision >= q.MinCreateRevision) && (q.MaxCreateRevision == 0 || kv.CreateRevision <= q.MaxCreateRevision)).ToList();
        var limit = q.Limit > 0 ? (int)Math.Min(q.Limit, int.MaxValue) : int.MaxValue;
        var kvs = q.CountOnly ? [] : matches.Take(limit).Select(kv => q.KeysOnly ? kv with { Value = [] } : kv).ToList();
        return new RangeResponse(new ResponseHeader(currentRevision), kvs, !q.CountOnly && matches.Count > kvs.Count, matches.Count);
    }

    private static IEnumerable<KeyValue> InRange(ImmutableSortedDictionary<byte[], KeyValue> state, byte[] key, byte[] end)
    {
        if (end.Length == 0) return state.TryGetValue(key, out var kv) ? [kv] : [];
        var fromKey = end is [0];
        return state.Where(p => ByteOrder.Instance.Compare(p.Key, key) >= 0 && (fromKey || ByteOrder.Instance.Compare(p.Key, end) < 0)).Select(p => p.Value);
    }

    private sealed class Work(ReferenceModel model)
    {
        public ImmutableSortedDictionary<byte[], KeyValue> State = model.Current;
        private readonly ImmutableSortedDictionary<byte[], KeyValue> _start = model.Current;   // before the command
        public bool Wrote;
        private readonly HashSet<string> _written = [];
        private long Rev => model.Revision + 1;

        private void Write(byte[] key)
        {
            if (!_written.Add(Convert.ToHexString(key))) throw new DuplicateKeyException("duplicate");
            Wrote = true;
        }

        private void CheckKey(byte[] key)
        {
            if (key.Length == 0) throw new ArgumentException("empty key");
            if (key.Length > model.MaxKey) throw new TooLargeException("key");
        }

        public PutResponse Put(PutRequest p)
        {
            CheckKey(p.Key);
            if (p.Value.Length > model.MaxValue) throw new TooLargeException("value");
            State.TryGetValue(p.Key, out var prev);
            if ((p.IgnoreValue || p.IgnoreLease) && prev is null) throw new KeyNotFoundForUpdateException("missing");
            var lease = p.IgnoreLease ? prev!.Lease : p.Lease;
            if (lease != 0 && !model._leases.ContainsKey(lease)) throw new LeaseNotFoundException(lease);
            Write(p.Key);
            State = State.SetItem(p.Key, new KeyValue(p.Key, p.IgnoreValue ? prev!.Value : p.Value, prev?.CreateRevision ?? Rev, Rev, (prev?.Version ?? 0) + 1, p.IgnoreLease ? prev!.Lease : p.Lease));
            return new PutResponse(default, p.PrevKv ? prev : null);
        }

        public DeleteRangeResponse Delete(DeleteRangeRequest d)
        {
            CheckKey(d.Key);
            var victims = InRange(State, d.Key, d.RangeEnd).ToList();
            foreach (var kv in victims)
            {
                Write(kv.Key);
                State = State.Remove(kv.Key);
            }
            return new DeleteRangeResponse(default, victims.Count, d.PrevKv ? victims : []);
        }

        public TxnResponse Txn(TxnRequest t, bool nested = false)
        {
            var ok = t.Compares.All(c => Holds(c, nested));
            var responses = new List<TxnOpResponse>();
            foreach (var op in ok ? t.Success : t.Failure)
            {
                if (op.Range is not null) responses.Add(new TxnOpResponse(Range: model.Range(op.Range, State, Wrote ? Rev : model.Revision)));
                else if (op.Put is not null) responses.Add(new TxnOpResponse(Put: Put(op.Put)));
                else if (op.Delete is not null) responses.Add(new TxnOpResponse(Delete: Delete(op.Delete)));
                else responses.Add(new TxnOpResponse(Txn: Txn(op.Txn!, nested: true)));
            }
            return new TxnResponse(default, ok, responses);
        }

        /// <summary>
        /// By <see cref="CompareTable"/>, not by a copy of the store's code. A nested transaction's compares see the
        /// state as Cairn evaluates them (<see cref="CompareTable.NestedComparesSeeEarlierWritesInCairn"/>).
        /// </summary>
        private bool Holds(Compare c, bool nested)
        {
            CheckKey(c.Key);
            var state = nested && CompareTable.NestedComparesSeeEarlierWritesInCairn ? State : _start;
            if (c.RangeEnd.Length == 0)
            {
                state.TryGetValue(c.Key, out var kv);
                return CompareTable.Holds(c, kv);
            }
            return CompareTable.Holds(c, InRange(state, c.Key, c.RangeEnd).ToList(), CompareTable.EmptyRangeInCairn);
        }
    }
}

public static class ReferenceModelEvents
{
    /// <summary>The changes revision <paramref name="rev"/> made, as watch events without previous values, in key order.</summary>
    public static List<WatchEvent> EventsAt(this ReferenceModel model, long rev)
    {
        var before = model.Snapshot(rev - 1);
        var after = model.Snapshot(rev);
        var events = new List<WatchEvent>();
        foreach (var (key, kv) in after)
        {
            if (kv.ModRevision == rev) events.Add(new WatchEvent(WatchEventType.Put, kv, null));
        }
        foreach (var (key, _) in before)
        {
            if (!after.ContainsKey(key)) events.Add(new WatchEvent(WatchEventType.Delete, new KeyValue(key, [], 0, rev, 0, 0), null));
        }
        events.Sort((a, b) => ByteOrder.Instance.Compare(a.Kv.Key, b.Kv.Key));
        return events;
    }
}
