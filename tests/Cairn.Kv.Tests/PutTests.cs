using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using Cairn.Storage;
using Xunit.Abstractions;

namespace Cairn.Kv.Tests;

/// <summary>
/// The one write core of a put (Mvcc.Put): its options change what a put returns or keeps, never how a change is
/// stored; and the bytes a log leaves stay the ones it left before the put paths were one.
/// </summary>
public sealed class PutTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static KvOptions Fast => new() { BackendCommitInterval = TimeSpan.Zero, Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } };

    /// <summary>
    /// Puts with every combination of flags — on new, live, deleted and leased keys, moving keys between leases and off
    /// them, some refused (a missing key for the ignore flags, a lease that is gone) — with deletes, transactions that
    /// put, lease grants and revokes and compactions between them.
    /// </summary>
    private static List<byte[]> PutLog(int seed, int count)
    {
        var rng = new Random(seed);
        var leases = new List<long>();
        long nextLease = 1;
        var log = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var key = B($"p/{rng.Next(40):D2}");
            var value = new byte[rng.Next(0, 200)];
            rng.NextBytes(value);
            long Lease() => leases.Count > 0 && rng.Next(3) == 0 ? leases[rng.Next(leases.Count)] : rng.Next(20) == 0 ? 777 : 0;
            PutRequest Put() => new()
            {
                Key = key, Value = value, Lease = Lease(),
                PrevKv = rng.Next(2) == 0, IgnoreValue = rng.Next(6) == 0, IgnoreLease = rng.Next(6) == 0,
            };
            var c = rng.Next(30) switch
            {
                < 16 => new KvCommand { Put = Put() },
                < 20 => new KvCommand { Delete = new DeleteRangeRequest { Key = key, RangeEnd = rng.Next(5) == 0 ? RangeRequest.Prefix(key.AsSpan(0, 3)) : [] } },
                < 24 => new KvCommand { Txn = new TxnRequest { Compares = [new Compare { Key = key, Target = CompareTarget.Version, Result = CompareResult.Greater, Number = 1 }], Success = [new TxnOp { Put = Put() }], Failure = [new TxnOp { Put = Put() }] } },
                < 26 => new KvCommand { LeaseGrant = (Add(leases, nextLease++), rng.Next(5, 100)) },
                < 28 => new KvCommand { LeaseRevoke = leases.Count > 0 ? leases[rng.Next(leases.Count)] : 999 },
                _ => new KvCommand { CompactRevision = Math.Max(1, i / 3) },
            };
            log.Add(c.Encode());
        }
        return log;
    }

    private static long Add(List<long> leases, long id)
    {
        leases.Add(id);
        return id;
    }

    private static string Digest(Dictionary<string, string> dump)
    {
        var lines = dump.Select(p => p.Key + "=" + p.Value).Order(StringComparer.Ordinal);
        return Convert.ToHexString(SHA256.HashData(Encoding.ASCII.GetBytes(string.Join("\n", lines))))[..16];
    }

    /// <summary>
    /// Where every record sits in the file: each B+tree page's number, header, slots and entries. Not the rest of a
    /// page — the gap between slots and entries holds whatever the page's buffer held before (it is allocated
    /// uninitialised), the trailer a checksum seeded with the file's random id — nor the meta pages (that id).
    /// </summary>
    private static string PageDigest(byte[] file, int pageSize)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        for (var at = 2 * pageSize; at + pageSize <= file.Length; at += pageSize)
        {
            var page = file.AsSpan(at, pageSize);
            sha.AppendData(page[..1]);
            if (page[0] is 1 or 2)   // branch, leaf (docs/storage.md, "Pages")
            {
                var count = BinaryPrimitives.ReadUInt16LittleEndian(page[2..]);
                var upper = BinaryPrimitives.ReadUInt16LittleEndian(page[4..]);
                sha.AppendData(page[..(16 + 2 * count)]);
                sha.AppendData(page[upper..(pageSize - 32)]);
            }
        }
        return Convert.ToHexString(sha.GetHashAndReset())[..16];
    }

    [Fact]
    public void A_log_of_puts_leaves_the_records_and_the_file_bytes_it_left_before_the_put_paths_were_one()
    {
        var log = PutLog(seed: 17, count: 3_000);
        var path = Path.Combine(_dir, "golden");
        Directory.CreateDirectory(_dir);
        string records;
        ulong hash;
        var rng = new Random(3);
        using (var sm = KvStateMachine.Open(path, Fast))
        {
            for (var i = 0; i < log.Count;)
            {
                var n = Math.Min(rng.Next(1, 40), log.Count - i);
                sm.ApplyBatch([.. Enumerable.Range(i, n).Select(j => ((ulong)j + 1, log[j]))], durable: false);
                i += n;
            }
            sm.Sync();
            records = Digest(TestLogs.Dump(sm.Storage));
            hash = sm.Hash().Hash;
            output.WriteLine($"revision {sm.Revision}, hash {hash:X16}, records {records}");
        }
        var file = PageDigest(File.ReadAllBytes(path), 16384);
        output.WriteLine($"file {file}");
        // Taken from the two put paths (Put and PutPlain) before they became one core (at 7eb4a84).
        // A change here changes what members write for the same log: only a new layout may do that.
        Assert.Equal(0x726F00E1E9CF8664UL, hash);
        Assert.Equal("A54A4E7BC43899A6", records);
        Assert.Equal("F4C60D410896A933", file);
    }

    /// <summary>
    /// The plain path makes no object while nobody watches: no previous key-value, no event, no lease-key array. What
    /// it allocates is the storage's page buffers (16,408 bytes each): about one per 90 puts here as the history grows,
    /// and one more per pass for the lease-keys tree when keys move between leases. (Before the put paths were one,
    /// each move also made a lease-key array: 48 bytes a put, 9,600 a pass.)
    /// </summary>
    [Fact]
    public void A_plain_put_allocates_only_the_history_pages_it_grows_also_when_it_moves_a_key_between_leases()
    {
        Directory.CreateDirectory(_dir);
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "alloc"), Fast);
        using var w = sm.Storage.BeginWrite();
        var m = new Mvcc(w, Fast) { EventsWanted = false };
        m.Grant(1, 60);
        m.Grant(2, 60);
        var keys = Enumerable.Range(0, 200).Select(i => B($"alloc/{i:D4}")).ToArray();
        var value = new byte[100];
        long Pass(long lease)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            foreach (var k in keys)
            {
                m.PutPlain(k, value, lease);
                m.EndRequest();
            }
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Pass(0);
        Pass(1);
        Pass(2);
        var moves = new[] { Pass(1), Pass(2) };   // each key's lease entry deleted and another added
        var detach = Pass(0);
        var plain = Pass(0);
        output.WriteLine($"per pass of {keys.Length} puts: moves {moves[0]}, {moves[1]}; detach {detach}; plain {plain} bytes");
        Assert.True(plain < keys.Length * 128, $"a pass of plain puts allocated {plain} bytes: more than the history pages it grows");
        foreach (var a in moves.Append(detach)) Assert.True(a - plain < 18 * 1024, $"moving keys between leases allocated {a - plain} bytes more than plain puts: more than a page");
        Assert.True(m.EventsSkipped);
        Assert.Empty(m.Events);
    }

    /// <summary>How one put of <see cref="EquivalentLogs"/> is written.</summary>
    private enum Way { Plain, PrevKv, Ignore, InTxn }

    /// <summary>
    /// One log of puts (some re-putting a key's value or lease), deletes, lease grants and revokes, written
    /// <paramref name="way"/>: plain, with PrevKv, with IgnoreValue and IgnoreLease wherever they keep what the plain put
    /// sets anyway, or as a transaction of that one put. Every way asks for the same changes.
    /// </summary>
    private static List<byte[]> EquivalentLog(int seed, int count, Way way)
    {
        var rng = new Random(seed);
        var live = new Dictionary<string, (byte[] Value, long Lease)>();
        var leases = new List<long>();
        long nextLease = 1;
        var log = new List<byte[]>();
        for (var i = 0; i < count; i++)
        {
            var name = $"e/{rng.Next(30):D2}";
            var key = B(name);
            var now = live.TryGetValue(name, out var kv) ? kv : ((byte[] Value, long Lease)?)null;
            KvCommand c;
            var pick = rng.Next(20);
            if (pick >= 18 && leases.Count == 0) pick = 16;   // nothing to revoke: grant one
            switch (pick)
            {
                case < 13:
                    var value = now is { } a && rng.Next(2) == 0 ? a.Value : RandomBytes(rng, rng.Next(0, 120));
                    var lease = now is { } b && rng.Next(2) == 0 ? b.Lease : leases.Count > 0 && rng.Next(2) == 0 ? leases[rng.Next(leases.Count)] : 0;
                    var put = new PutRequest { Key = key, Value = value, Lease = lease };
                    if (way == Way.PrevKv) put = put with { PrevKv = true };
                    if (way == Way.Ignore && now is { } n)
                    {
                        if (n.Value.AsSpan().SequenceEqual(value)) put = put with { Value = [], IgnoreValue = true };
                        if (n.Lease == lease) put = put with { Lease = 0, IgnoreLease = true };
                    }
                    c = way == Way.InTxn ? new KvCommand { Txn = new TxnRequest { Success = [new TxnOp { Put = put }] } } : new KvCommand { Put = put };
                    live[name] = (value, lease);
                    break;
                case < 16:
                    c = new KvCommand { Delete = new DeleteRangeRequest { Key = key } };
                    live.Remove(name);
                    break;
                case < 18:
                    leases.Add(nextLease);
                    c = new KvCommand { LeaseGrant = (nextLease++, 60) };
                    break;
                default:
                    var gone = leases[rng.Next(leases.Count)];
                    leases.Remove(gone);
                    foreach (var k in live.Where(p => p.Value.Lease == gone).Select(p => p.Key).ToList()) live.Remove(k);
                    c = new KvCommand { LeaseRevoke = gone };
                    break;
            }
            log.Add(c.Encode());
        }
        return log;
    }

    private static byte[] RandomBytes(Random rng, int n)
    {
        var b = new byte[n];
        rng.NextBytes(b);
        return b;
    }

    [Fact]
    public void Puts_that_differ_only_in_options_or_in_who_watches_leave_identical_stores()
    {
        Directory.CreateDirectory(_dir);
        (ulong Hash, long Revision, Dictionary<string, string> Records) Run(Way way, bool watched)
        {
            var log = EquivalentLog(seed: 23, count: 2_000, way);
            using var sm = KvStateMachine.Open(Path.Combine(_dir, $"{way}-{watched}"), Fast);
            using var watcher = watched ? sm.Watch(new WatchRequest { Key = [0], RangeEnd = [0], StartRevision = 1 }) : null;
            var rng = new Random(5);
            for (var i = 0; i < log.Count;)
            {
                var n = Math.Min(rng.Next(1, 30), log.Count - i);
                var results = sm.ApplyBatch([.. Enumerable.Range(i, n).Select(j => ((ulong)j + 1, log[j]))], durable: false);
                Assert.All(results, r => Assert.True(r.Error is null, $"{way}: entry {r.Index}: {r.Error}"));
                i += n;
            }
            if (watcher is not null)
            {
                // Read afterwards: the watcher was there all along (so every batch made its events), live or caught up.
                var events = 0L;
                Task.Run(async () =>
                {
                    await foreach (var r in watcher.ReadAllAsync())
                    {
                        events += r.Events.Count;
                        if (r.Header.Revision >= sm.Revision) break;
                    }
                }).Wait(TimeSpan.FromSeconds(30));
                Assert.True(events > 1_000, $"the watcher saw {events} events");
            }
            return (sm.Hash().Hash, sm.Revision, TestLogs.Dump(sm.Storage));
        }
        var plain = Run(Way.Plain, watched: false);
        Assert.True(plain.Revision > 1_000);
        foreach (var (way, watched) in new[] { (Way.Plain, true), (Way.PrevKv, false), (Way.PrevKv, true), (Way.Ignore, false), (Way.Ignore, true), (Way.InTxn, false) })
        {
            var other = Run(way, watched);
            Assert.True((plain.Hash, plain.Revision) == (other.Hash, other.Revision), $"{way}, watched {watched}: hash {other.Hash:X16} at {other.Revision} vs {plain.Hash:X16} at {plain.Revision}");
            Assert.Equal(plain.Records, other.Records);
        }
    }
}
