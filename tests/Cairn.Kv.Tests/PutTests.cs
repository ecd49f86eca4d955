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
}
