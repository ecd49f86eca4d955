using System.Buffers.Binary;
using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

/// <summary>
/// A store written in layout 1 (each value twice, history keyed by key then revision, events by revision) comes to
/// layout 2 when opened, with every key, revision and change: it ends equal to a store that applied the same changes
/// in layout 2 — the same hash, the same reads at every revision, the same watch events.
/// </summary>
public sealed class MigrationTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("cairn-migration-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    /// <summary>Writes changes the way layout 1 did: a tiny copy of its put and delete, one change per revision.</summary>
    private sealed class Layout1Writer(WriteTransaction w)
    {
        private readonly Tree _index = w.CreateTree("kv.index");
        private readonly Tree _history = w.CreateTree("kv.history");
        private readonly Tree _events = w.CreateTree("kv.events");
        private readonly Tree _meta = w.CreateTree("kv.meta");
        public long Revision;

        private static byte[] HistoryKey(byte[] key, long rev)
        {
            var b = new List<byte>();
            foreach (var x in key)
            {
                b.Add(x);
                if (x == 0) b.Add(0xFF);
            }
            b.Add(0);
            b.Add(1);
            var r = new byte[8];
            BinaryPrimitives.WriteInt64BigEndian(r, rev);
            b.AddRange(r);
            return [.. b];
        }

        private static byte[] Longs(params long[] v)
        {
            var b = new byte[8 * v.Length];
            for (var i = 0; i < v.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(8 * i), v[i]);
            return b;
        }

        private void Event(long rev, byte kind, byte[] key)
        {
            var k = new byte[12];
            BinaryPrimitives.WriteInt64BigEndian(k, rev);
            _events.Put(k, [kind, .. key]);
        }

        public void Put(byte[] key, byte[] value)
        {
            var rev = ++Revision;
            long create = rev, version = 1;
            if (_index.TryGet(key, out var v))
            {
                create = BinaryPrimitives.ReadInt64LittleEndian(v);
                version = BinaryPrimitives.ReadInt64LittleEndian(v[16..]) + 1;
            }
            _index.Put(key, [.. Longs(create, rev, version, 0), .. value]);
            _history.Put(HistoryKey(key, rev), [1, .. Longs(create, version, 0), .. value]);
            Event(rev, 1, key);
        }

        public void Delete(byte[] key)
        {
            var rev = ++Revision;
            _index.Delete(key);
            _history.Put(HistoryKey(key, rev), [2, .. Longs(0, 0, 0)]);
            Event(rev, 2, key);
        }

        public void Finish(ulong applied)
        {
            var state = new byte[25];
            BinaryPrimitives.WriteInt64LittleEndian(state, Revision);
            BinaryPrimitives.WriteUInt64LittleEndian(state.AsSpan(16), applied);
            _meta.Put("state"u8, state);
        }
    }

    [Fact]
    public async Task A_layout_1_store_opens_as_layout_2_with_every_change()
    {
        // The same changes, as layout-1 trees written directly and as commands applied to a new store.
        var rng = new Random(7);
        var ops = new List<(bool Put, string Key, string Value)>();
        for (var i = 0; i < 300; i++) ops.Add((rng.Next(4) != 0, $"k{rng.Next(30):D2}\0{rng.Next(2)}", $"v{i}"));
        var oldPath = Path.Combine(_dir, "old.db");
        using (var db = Database.Open(oldPath, new StorageOptions { PageSize = 16384 }))
        {
            using var w = db.BeginWrite();
            var writer = new Layout1Writer(w);
            var live = new HashSet<string>();
            foreach (var (put, key, value) in ops)
            {
                if (put)
                {
                    writer.Put(B(key), B(value));
                    live.Add(key);
                }
                else if (live.Remove(key))
                {
                    writer.Delete(B(key));
                }
            }
            writer.Finish((ulong)writer.Revision);
            w.Commit();
        }
        using var reference = KvStateMachine.Open(Path.Combine(_dir, "new.db"));
        ulong index = 0;
        var present = new HashSet<string>();
        foreach (var (put, key, value) in ops)
        {
            if (put)
            {
                reference.Apply(++index, new KvCommand { Put = new PutRequest { Key = B(key), Value = B(value) } }.Encode());
                present.Add(key);
            }
            else if (present.Remove(key))
            {
                reference.Apply(++index, new KvCommand { Delete = new DeleteRangeRequest { Key = B(key) } }.Encode());
            }
        }

        using var migrated = KvStateMachine.Open(oldPath);
        Assert.Equal(reference.Revision, migrated.Revision);
        Assert.Equal(reference.Hash(), migrated.Hash());
        var all = new RangeRequest { Key = [0], RangeEnd = [0] };
        for (var rev = 1L; rev <= reference.Revision; rev += 7)
        {
            var want = reference.Range(all with { Revision = rev });
            var got = migrated.Range(all with { Revision = rev });
            Assert.Equal(want.Kvs.Select(k => (Encoding.UTF8.GetString(k.Key), Encoding.UTF8.GetString(k.Value), k.ModRevision, k.Version)),
                got.Kvs.Select(k => (Encoding.UTF8.GetString(k.Key), Encoding.UTF8.GetString(k.Value), k.ModRevision, k.Version)));
        }
        // Watch events from the start, with previous values, come out as from the reference.
        async Task<List<string>> Events(KvStateMachine sm)
        {
            using var watcher = sm.Watch(new WatchRequest { Key = [0], RangeEnd = [0], StartRevision = 1, PrevKv = true });
            var seen = new List<string>();
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await foreach (var r in watcher.ReadAllAsync(cts.Token))
            {
                seen.AddRange(r.Events.Select(e => $"{e.Type} {Encoding.UTF8.GetString(e.Kv.Key)}@{e.Kv.ModRevision}={Encoding.UTF8.GetString(e.Kv.Value)} prev {e.PrevKv?.ModRevision}"));
                if (seen.Count >= reference.Revision) break;
            }
            return seen;
        }
        Assert.Equal(await Events(reference), await Events(migrated));
        // And it goes on as a layout-2 store: a compaction and more writes keep it equal.
        var half = reference.Revision / 2;
        foreach (var sm in new[] { reference, migrated })
        {
            sm.Apply(index + 1, new KvCommand { CompactRevision = half }.Encode());
            sm.Apply(index + 2, new KvCommand { Put = new PutRequest { Key = B("after"), Value = B("x") } }.Encode());
        }
        Assert.Equal(reference.Hash(), migrated.Hash());
    }
}
