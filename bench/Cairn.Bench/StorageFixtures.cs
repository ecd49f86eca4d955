using Cairn.Storage;
using LightningDB;
using RocksDbSharp;
using static Cairn.Bench.StorageData;

namespace Cairn.Bench;

/// <summary>
/// One engine's database in its own temporary directory under <see cref="Path.GetTempPath"/> ($TMPDIR or /tmp),
/// removed on dispose. <see cref="Load"/> is both the setup loader and the measured bulk load, so both run the same code.
/// </summary>
internal abstract class StorageFixture : IDisposable
{
    private bool _disposed;

    protected StorageFixture(string engine, string label) =>
        Directory = System.IO.Directory.CreateTempSubdirectory($"cairn-bench-{engine}-{label}-").FullName;

    public string Directory { get; }

    /// <summary>Puts keys <paramref name="first"/>.. in transactions (batches) of <see cref="BatchSize"/>.</summary>
    public abstract void Load(int first, int count, bool durable);

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Close();
        System.IO.Directory.Delete(Directory, recursive: true);
    }

    protected abstract void Close();
}

/// <summary>Cairn: one file, one tree named <see cref="TreeName"/>.</summary>
internal sealed class CairnFixture : StorageFixture
{
    public CairnFixture(string label) : base("cairn", label) =>
        Db = Database.Open(Path.Combine(Directory, "cairn.db"), new StorageOptions());

    public Database Db { get; }

    public override void Load(int first, int count, bool durable)
    {
        for (var start = first; start < first + count; start += BatchSize)
        {
            var end = Math.Min(start + BatchSize, first + count);
            using var tx = Db.BeginWrite();
            var tree = tx.CreateTree(TreeName);
            for (var i = start; i < end; i++) tree.Put(Key(i), Value(i));
            tx.Commit(durable);
        }
    }

    /// <summary>Loads the whole data set, each batch a durable commit (as LMDB's and RocksDB's fixtures do).</summary>
    public void Preload() => Load(0, KeyCount, durable: true);

    protected override void Close() => Db.Dispose();
}

/// <summary>
/// LMDB through LightningDB on the system's liblmdb.so.0: its main (unnamed) database, a 4 GiB map, default flags
/// (a sync per commit) or MDB_NOSYNC. Durability is the environment's flag, so <see cref="Load"/> ignores its argument.
/// </summary>
internal sealed class LmdbFixture : StorageFixture
{
    public const long MapSize = 4L << 30;

    public LmdbFixture(string label, bool noSync) : base("lmdb", label)
    {
        StorageLmdbNative.EnsureRegistered();
        NoSync = noSync;
        Env = new LightningEnvironment(Directory, new EnvironmentConfiguration { MapSize = MapSize });
        Env.Open(noSync ? EnvironmentOpenFlags.NoSync : EnvironmentOpenFlags.None);
        using var tx = Env.BeginTransaction();
        Db = tx.OpenDatabase(configuration: new DatabaseConfiguration { Flags = DatabaseOpenFlags.Create });
        tx.Commit().ThrowOnError();
    }

    public bool NoSync { get; }

    public LightningEnvironment Env { get; }

    /// <summary>The main database's handle; LMDB keeps it valid across transactions once the opening one committed.</summary>
    public LightningDatabase Db { get; }

    public override void Load(int first, int count, bool durable)
    {
        for (var start = first; start < first + count; start += BatchSize)
        {
            var end = Math.Min(start + BatchSize, first + count);
            using var tx = Env.BeginTransaction();
            for (var i = start; i < end; i++) tx.Put(Db, Key(i), Value(i)).ThrowOnError();
            tx.Commit().ThrowOnError();
        }
    }

    /// <summary>Loads the whole data set (each batch synced unless the environment is MDB_NOSYNC), then flushes.</summary>
    public void Preload()
    {
        Load(0, KeyCount, durable: !NoSync);
        Env.Flush(force: true);
    }

    protected override void Close()
    {
        Db.Dispose();
        Env.Dispose();
    }
}

/// <summary>RocksDB with default options (create if missing), its default column family, WriteBatch per batch.</summary>
internal sealed class RocksFixture : StorageFixture
{
    private readonly DbOptions _options = new DbOptions().SetCreateIfMissing(true);

    public RocksFixture(string label) : base("rocksdb", label) => Db = RocksDb.Open(_options, Directory);

    public RocksDb Db { get; }

    public WriteOptions Synced { get; } = new WriteOptions().SetSync(true);

    public WriteOptions NotSynced { get; } = new WriteOptions().SetSync(false);

    public override void Load(int first, int count, bool durable)
    {
        var options = durable ? Synced : NotSynced;
        using var batch = new WriteBatch();
        for (var start = first; start < first + count; start += BatchSize)
        {
            var end = Math.Min(start + BatchSize, first + count);
            batch.Clear();
            for (var i = start; i < end; i++) batch.Put(Key(i), Value(i));
            Db.Write(batch, options);
        }
    }

    /// <summary>
    /// Loads the whole data set (synced batches, like the others), then flushes the memtable and compacts everything:
    /// reads then meet RocksDB's settled shape (sorted runs on disk), the counterpart of a fully built B+tree.
    /// </summary>
    public void Preload()
    {
        Load(0, KeyCount, durable: true);
        Db.Flush(new FlushOptions().SetWaitForFlush(true));
        Db.CompactRange((byte[]?)null, null);
    }

    protected override void Close() => Db.Dispose();
}
