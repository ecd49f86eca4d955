using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

public sealed class QuotaTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Over_quota_raises_nospace_reads_deletes_compaction_and_defragmentation_still_work_then_disarm()
    {
        var options = new KvOptions { QuotaBytes = 4L << 20, Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } };
        using var store = KvStore.Open(_dir, options);
        var value = new byte[8_000];
        var written = 0;
        NoSpaceException? refused = null;
        for (var i = 0; i < 10_000 && refused is null; i++)
        {
            try
            {
                store.Put(B($"k{i:D5}"), value);
                written++;
            }
            catch (NoSpaceException ex)
            {
                refused = ex;
            }
        }
        Assert.NotNull(refused);
        Assert.Contains("NOSPACE", refused!.Message);
        Assert.True(store.NoSpaceAlarm);
        Assert.True(written > 100);
        var revision = store.Revision;
        // Refused while the alarm is up: puts, txns that put, lease grants. Reads and deletes work.
        Assert.Throws<NoSpaceException>(() => store.Put(B("more"), B("x")));
        Assert.Throws<NoSpaceException>(() => store.Txn(new TxnRequest { Success = [new TxnOp { Put = new PutRequest { Key = B("t") } }] }));
        Assert.Throws<NoSpaceException>(() => store.GrantLease(10));
        Assert.Equal(revision, store.Revision);
        Assert.Equal(written, store.Range(new RangeRequest { Key = B("k"), RangeEnd = RangeRequest.Prefix(B("k")), CountOnly = true }).Count);
        var deleted = store.Delete(new DeleteRangeRequest { Key = B("k"), RangeEnd = RangeRequest.Prefix(B("k0")) }).Deleted;
        Assert.True(deleted > 0);
        // Still over quota until the space is given back: disarm refuses with the figures.
        store.Compact(store.Revision);
        var e = Assert.Throws<NoSpaceException>(store.DisarmAlarm);
        Assert.Contains("quota", e.Message);
        var hash = store.Hash();
        var result = store.Defragment();
        Assert.True(result.BytesAfter < result.BytesBefore, $"defragment went from {result.BytesBefore} to {result.BytesAfter} bytes");
        Assert.Equal(hash, store.Hash());
        store.Machine.Storage.Verify();
        store.DisarmAlarm();
        Assert.False(store.NoSpaceAlarm);
        store.Put(B("after"), B("ok"));
        Assert.Equal("ok", Encoding.UTF8.GetString(store.Get(B("after"))!.Value));
    }

    [Fact]
    public void Defragment_keeps_every_key_history_and_lease_and_survives_reopen()
    {
        var options = new KvOptions { QuotaBytes = 0, Storage = new StorageOptions { PageSize = 16384, MasterKey = Cairn.Crypto.StaticKeyProvider.CreateRandom() } };
        (ulong, long, long) hash;
        using (var store = KvStore.Open(_dir, options))
        {
            var lease = store.GrantLease(100).Id;
            for (var i = 0; i < 3_000; i++) store.Put(new PutRequest { Key = B($"k{i % 500:D3}"), Value = new byte[200], Lease = i % 7 == 0 ? lease : 0 });
            store.Compact(2_000);
            hash = store.Hash();
            var r = store.Defragment();
            Assert.True(r.BytesAfter <= r.BytesBefore);
            Assert.Equal(hash, store.Hash());
            // History above the compaction survives the rewrite: k499 as of revision 2,500 is its fifth put.
            var past = store.Range(new RangeRequest { Key = B("k499"), Revision = 2_500 }).Kvs.Single();
            Assert.Equal((2_500L, 5L), (past.ModRevision, past.Version));
        }
        using (var store = KvStore.Open(_dir, options))
        {
            Assert.Equal(hash, store.Hash());
            Assert.Single(store.Leases());
            Assert.Equal(3_000, store.Revision); // a put per revision; grants and compaction add none
        }
    }
}
