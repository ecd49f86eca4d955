using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

/// <summary>The embedded store's own surface: durability, the applied index, options.</summary>
public sealed class StoreTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public void Sync_makes_lazy_writes_durable_and_reports_the_index_and_revision()
    {
        using var store = KvStore.Open(_dir, new KvOptions { Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } });
        var applied = store.AppliedIndex;
        for (var i = 0; i < 3; i++) store.Put(B($"k{i}"), B("v"));
        Assert.Equal(applied + 3, store.AppliedIndex);
        var storage = store.Machine.Storage;
        Assert.True(storage.LastDurableTransaction < storage.LastCommittedTransaction);

        var synced = store.Sync();
        Assert.Equal(new SyncResult(store.AppliedIndex, store.Revision), synced);
        Assert.Equal(3, synced.Revision);
        Assert.Equal(storage.LastCommittedTransaction, storage.LastDurableTransaction);
        Assert.Equal(synced, store.Sync()); // nothing pending: the same point again
        store.Dispose();
        Assert.Throws<ObjectDisposedException>(() => store.Sync());
    }

    [Fact]
    public void The_store_reports_its_compaction_revision()
    {
        using var store = KvStore.Open(_dir);
        Assert.Equal(0, store.CompactRevision);
        for (var i = 0; i < 4; i++) store.Put(B("k"), B($"v{i}"));
        store.Compact(3);
        Assert.Equal(3, store.CompactRevision);
        Assert.Equal(store.Machine.CompactRevision, store.CompactRevision);
    }

    [Fact]
    public void Setting_one_storage_option_keeps_the_key_value_page_size()
    {
        var key = Cairn.Crypto.StaticKeyProvider.CreateRandom();
        var options = new KvOptions { Storage = new StorageOptions { MasterKey = key } };
        options.Validate(); // refused before: MaxKeyBytes 2000 did not fit the storage default of 4 KiB pages
        using var store = KvStore.Open(_dir, options);
        Assert.Equal(KvOptions.DefaultPageSize, store.Machine.Storage.PageSize);
        Assert.Equal(KvOptions.DefaultPageSize, store.Machine.Options.Storage.PageSize);
        Assert.True(store.Machine.Storage.IsEncrypted);
        store.Put(new byte[2000], B("longest key"));
        Assert.NotNull(store.Get(new byte[2000]));
    }

    [Fact]
    public void A_store_keeps_its_page_size_when_reopened_and_defragmented_under_other_options()
    {
        var small = new KvOptions { MaxKeyBytes = 500, Storage = new StorageOptions { PageSize = 4096 } };
        using (var store = KvStore.Open(_dir, small))
        {
            for (var i = 0; i < 100; i++) store.Put(B($"k{i}"), B($"v{i}"));
        }
        using (var store = KvStore.Open(_dir, new KvOptions { MaxKeyBytes = 500 }))
        {
            Assert.Equal(4096, store.Machine.Storage.PageSize);
            store.Defragment();
            Assert.Equal(4096, store.Machine.Storage.PageSize); // the rewritten file too
            Assert.Equal("v42", Encoding.UTF8.GetString(store.Get(B("k42"))!.Value));
        }
    }

    [Fact]
    public void Every_file_the_store_creates_is_private()
    {
        if (OperatingSystem.IsWindows()) return;
        var key = Cairn.Crypto.StaticKeyProvider.CreateRandom();
        var options = new KvOptions { Storage = new StorageOptions { MasterKey = key } };
        using (var store = KvStore.Open(_dir, options))
        {
            for (var i = 0; i < 200; i++) store.Put(B($"k{i}"), new byte[1000]);
            store.Defragment();
            // A snapshot dump, built into a file of its own and installed.
            using var dump = new MemoryStream();
            store.Machine.WriteSnapshot(dump);
            dump.Position = 0;
            var built = Path.Combine(_dir, "built.cairn");
            KvStateMachine.BuildFromSnapshot(dump, built, options);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(built));
            store.Machine.InstallSnapshot(built);
        }
        var files = Directory.GetFiles(_dir);
        Assert.NotEmpty(files);
        foreach (var f in files)
        {
            Assert.True(File.GetUnixFileMode(f) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"{Path.GetFileName(f)} has mode {File.GetUnixFileMode(f)}");
        }
    }

    [Fact]
    public void Limit_and_option_errors_read_without_code_names_a_user_cannot_act_on()
    {
        foreach (var bad in new[] { new KvOptions { MaxKeyBytes = 100_000 }, new KvOptions { MaxValueBytes = -1 }, new KvOptions { WatchQueueCapacity = 0 } })
        {
            Assert.DoesNotContain("(Parameter", Assert.Throws<ArgumentException>(bad.Validate).Message, StringComparison.Ordinal);
        }
        using var store = KvStore.Open(_dir);
        var key = Assert.Throws<TooLargeException>(() => store.Put(new byte[2001], B("v")));
        Assert.Equal("key is 2001 bytes; the limit is 2000 bytes.", key.Message);
        var value = Assert.Throws<TooLargeException>(() => store.Put(B("k"), new byte[store.Machine.Options.MaxValueBytes + 1]));
        Assert.DoesNotContain("KvOptions", value.Message, StringComparison.Ordinal);
    }
}
