using System.Buffers.Binary;
using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>
/// Brings a store written in layout 1 to layout 2 (Encoding.cs) when it is opened, in one write transaction, so an
/// upgrade — or a snapshot taken before it, restored after — keeps every key, revision and change. Layout 1 kept each
/// value twice (kv.index and kv.history), its history keyed by (key, revision) and a separate kv.events tree by revision.
/// </summary>
internal static class Migration
{
    /// <summary>Records layout 2 in a new store, or migrates a layout-1 store; a no-op when the store is at layout 2.</summary>
    /// <returns>Whether anything was migrated.</returns>
    public static bool Upgrade(WriteTransaction w)
    {
        var meta = w.CreateTree(Mvcc.MetaTree);
        if (meta.TryGet(Mvcc.LayoutKey, out _)) return false;
        Span<byte> layout = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(layout, Mvcc.Layout);
        if (!w.TryOpenTree(Mvcc.EventsTree, out var events))
        {
            meta.Put(Mvcc.LayoutKey, layout);   // a new store: nothing to migrate
            return false;
        }

        // Every change of layout 1: its history records, in (key, revision) order, and the sub-revision its event gives.
        var subs = new Dictionary<(long Rev, string Key), int>();
        foreach (var e in events.All())
        {
            var rev = BinaryPrimitives.ReadInt64BigEndian(e.Key);
            var sub = BinaryPrimitives.ReadInt32BigEndian(e.Key[8..]);
            subs[(rev, Convert.ToHexString(e.Value[1..]))] = sub;
        }
        var changes = new List<(byte[] Key, long Rev, byte Kind, long Create, long Version, long Lease, byte[] Value)>();
        if (w.TryOpenTree(Mvcc.HistoryTree, out var oldHistory))
        {
            foreach (var e in oldHistory.All())
            {
                var (key, rev) = ParseHistoryKey(e.Key);
                var v = e.Value;
                changes.Add((key, rev, v[0], BinaryPrimitives.ReadInt64LittleEndian(v[1..]), BinaryPrimitives.ReadInt64LittleEndian(v[9..]),
                    BinaryPrimitives.ReadInt64LittleEndian(v[17..]), v[25..].ToArray()));
            }
        }
        // Records a compaction kept lost their events: they get sub-revisions of their own, by key within a revision
        // (the same on every member, which holds the same records), above any a revision's own writes use.
        var orphans = new Dictionary<long, int>();
        var numbered = new List<(byte[] Key, long Rev, int Sub, byte Kind, long Create, long Version, long Lease, byte[] Value)>(changes.Count);
        foreach (var c in changes.OrderBy(c => c.Rev).ThenBy(c => c.Key, ByteComparer.Instance))
        {
            if (!subs.TryGetValue((c.Rev, Convert.ToHexString(c.Key)), out var sub))
            {
                var n = orphans.GetValueOrDefault(c.Rev);
                orphans[c.Rev] = n + 1;
                sub = 0x4000_0000 + n;
            }
            numbered.Add((c.Key, c.Rev, sub, c.Kind, c.Create, c.Version, c.Lease, c.Value));
        }

        // Layout 2: the history by revision, each change pointing to its key's change before it; the index of where
        // each key's last change is (a tombstone when that deleted it).
        w.DeleteTree(Mvcc.HistoryTree);
        w.DeleteTree(Mvcc.IndexTree);
        w.DeleteTree(Mvcc.EventsTree);
        var history = w.CreateTree(Mvcc.HistoryTree);
        var index = w.CreateTree(Mvcc.IndexTree);
        var last = new Dictionary<string, (long Rev, int Sub)>();
        var buf = new byte[KvEncoding.HistoryKeyBytes + KvEncoding.HistoryHeader + 64];
        Span<byte> iv = stackalloc byte[KvEncoding.IndexBytes];
        foreach (var c in numbered)
        {
            var id = Convert.ToHexString(c.Key);
            var (prevRev, prevSub) = last.GetValueOrDefault(id);
            var need = KvEncoding.HistoryKeyBytes + KvEncoding.HistoryValueLength(c.Key.Length, c.Value.Length);
            if (buf.Length < need) buf = new byte[need];
            KvEncoding.WriteHistoryKey(buf, c.Rev, c.Sub);
            var n = KvEncoding.WriteHistoryValue(buf.AsSpan(KvEncoding.HistoryKeyBytes), c.Kind, c.Create, c.Version, c.Lease, prevRev, prevSub, c.Key, c.Value);
            history.Put(buf.AsSpan(0, KvEncoding.HistoryKeyBytes), buf.AsSpan(KvEncoding.HistoryKeyBytes, n));
            last[id] = (c.Rev, c.Sub);
            if (c.Kind == KvEncoding.KindPut) KvEncoding.WriteIndex(iv, c.Create, c.Rev, c.Version, c.Lease, c.Sub, deleted: false);
            else KvEncoding.WriteIndex(iv, 0, c.Rev, 0, 0, c.Sub, deleted: true);
            index.Put(c.Key, iv);
        }
        meta.Put(Mvcc.LayoutKey, layout);
        return true;
    }

    /// <summary>Splits a layout-1 history key (the key with each 0 byte as 00 FF, then 00 01, then the revision) into key and revision.</summary>
    private static (byte[] Key, long Revision) ParseHistoryKey(ReadOnlySpan<byte> hk)
    {
        var key = new List<byte>(hk.Length);
        var i = 0;
        while (i < hk.Length - 9)
        {
            if (hk[i] == 0)
            {
                if (hk[i + 1] == 0xFF) { key.Add(0); i += 2; continue; }
                if (hk[i + 1] == 1) break;
                throw new InvalidDataException("malformed layout-1 history key");
            }
            key.Add(hk[i++]);
        }
        if (i + 10 != hk.Length) throw new InvalidDataException("malformed layout-1 history key");
        return ([.. key], BinaryPrimitives.ReadInt64BigEndian(hk[(i + 2)..]));
    }

    private sealed class ByteComparer : IComparer<byte[]>
    {
        public static readonly ByteComparer Instance = new();

        public int Compare(byte[]? x, byte[]? y) => x.AsSpan().SequenceCompareTo(y);
    }
}
