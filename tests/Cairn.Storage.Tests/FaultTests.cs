using Cairn.Storage.CrashChild;
using Xunit.Abstractions;

namespace Cairn.Storage.Tests;

/// <summary>
/// The disk fills or fails while a commit is on its way to it (<see cref="FaultyPageFile"/>). Commit must throw
/// <see cref="IOException"/> and the database must stay at its last commit: readers (old and new) see it, Verify
/// passes, after the fault clears a new write transaction works, and a reopen shows the last successful commit.
/// </summary>
/// <remarks>
/// The base state is workload transactions 1..<see cref="BaseTxn"/>; the faulted commit applies transactions
/// <see cref="BaseTxn"/>+1..<see cref="NextTxn"/> in one write transaction, so both states are
/// <see cref="WorkloadModel"/>s. The file grows one page at a time (plus 1/8), so the faulted commit must grow it.
/// </remarks>
public sealed class FaultTests(ITestOutputHelper output)
{
    private const ulong Seed = 4242;
    private const ulong BaseTxn = 20;
    private const ulong NextTxn = 60;
    private const int PageSize = 4096;

    private static readonly Lazy<byte[]> BaseFile = new(BuildBaseFile);
    private static readonly Lazy<CommitShape> Shape = new(MeasureCommit);

    private static readonly WorkloadModel Before = Model(BaseTxn);
    private static readonly WorkloadModel After = Model(NextTxn);

    /// <summary>What the faulted commit writes when nothing fails: data bytes before the meta record, and whether it grows the file.</summary>
    private sealed record CommitShape(long DataBytes, bool Grows, int Syncs);

    /// <summary>How the test continues after the failed commit.</summary>
    public enum Then
    {
        /// <summary>Clear the fault and commit again in the same instance.</summary>
        RetryInPlace,

        /// <summary>Clear the fault, close, reopen (the last commit must be there), then commit again.</summary>
        ReopenThenRetry,
    }

    [Theory]
    [InlineData(Then.RetryInPlace)]
    [InlineData(Then.ReopenThenRetry)]
    public void Disk_fills_partway_through_the_page_writes(Then then)
    {
        var shape = Shape.Value;
        var d = shape.DataBytes;
        var budgets = new SortedSet<long> { 0, 1, 100, PageSize - 1, PageSize, PageSize + 1, d / 3, d / 2, d - PageSize - 1, d - 1, d };
        var rng = new Random((int)Seed);
        while (budgets.Count < 24) budgets.Add(rng.NextInt64(0, d));
        output.WriteLine($"the commit writes {d} data bytes; budgets {string.Join(", ", budgets)}");
        foreach (var budget in budgets)
        {
            // At budget == d every page lands and the meta write is refused outright.
            FaultedCommit($"write budget {budget} of {d} data bytes (seed {Seed})", f => f.WriteBudget = budget, then);
        }
    }

    [Theory]
    [InlineData(Then.RetryInPlace)]
    [InlineData(Then.ReopenThenRetry)]
    public void File_cannot_grow(Then then)
    {
        Assert.True(Shape.Value.Grows, "the faulted commit must grow the file for this test to mean anything");
        FaultedCommit("growth refused", f => f.LengthLimit = f.Length, then);
    }

    [Theory]
    [InlineData(0, Then.RetryInPlace)]   // the data sync
    [InlineData(0, Then.ReopenThenRetry)]
    [InlineData(1, Then.RetryInPlace)]   // the meta sync: the engine puts the old record back
    [InlineData(1, Then.ReopenThenRetry)]
    public void Sync_fails(int syncsThatSucceed, Then then)
    {
        Assert.Equal(2, Shape.Value.Syncs);
        FaultedCommit($"sync {syncsThatSucceed + 1} fails", f => f.SyncsLeft = syncsThatSucceed, then);
    }

    /// <summary>
    /// The meta write is torn once; the disk then recovers, so the engine's restore of the slot lands. (The old and new
    /// records share bytes [0, 32), so a prefix of 40 is the shortest that tears the transaction id.)
    /// </summary>
    [Theory]
    [InlineData(0, Then.RetryInPlace)]
    [InlineData(0, Then.ReopenThenRetry)]
    [InlineData(40, Then.ReopenThenRetry)]
    [InlineData(200, Then.RetryInPlace)]
    [InlineData(200, Then.ReopenThenRetry)]
    [InlineData(511, Then.ReopenThenRetry)]
    public void Meta_write_is_torn_once(int prefix, Then then) =>
        FaultedCommit($"meta write torn after {prefix} bytes", f => f.TornMetaPrefix = prefix, then);

    /// <summary>
    /// The disk fills in the middle of the meta record and stays full, so the engine cannot put the old record back
    /// at once. Once the disk has room, the database must still be at its last commit, also after a reopen.
    /// (The old and new records share bytes [0, 32), so only longer prefixes tear anything.)
    /// </summary>
    [Theory]
    [InlineData(40, Then.RetryInPlace)]
    [InlineData(40, Then.ReopenThenRetry)]
    [InlineData(200, Then.ReopenThenRetry)]
    [InlineData(511, Then.ReopenThenRetry)]
    public void Disk_fills_inside_the_meta_record(int prefix, Then then) =>
        FaultedCommit($"disk full after {prefix} bytes of the meta record", f => f.WriteBudget = Shape.Value.DataBytes + prefix, then);

    /// <summary>
    /// The meta record lands but its sync fails, and the disk then refuses the write that would put the old record back.
    /// Commit threw "nothing is committed", so after the disk recovers the database must not come back at the
    /// failed commit on reopen.
    /// </summary>
    [Theory]
    [InlineData(Then.RetryInPlace)]
    [InlineData(Then.ReopenThenRetry)]
    public void Meta_sync_fails_and_the_old_record_cannot_be_put_back(Then then) =>
        FaultedCommit("meta sync fails, then the disk is full", f =>
        {
            f.SyncsLeft = 1;
            f.WriteBudget = Shape.Value.DataBytes + MetaRecordSize;
        }, then);

    /// <summary>
    /// The double fault above, followed by a crash of the next commit just before its meta write (modelled by a meta
    /// write that lands nothing): the file must reopen intact at a commit that Commit reported.
    /// </summary>
    [Fact]
    public void A_failed_commit_never_resurfaces_after_its_pages_are_reused()
    {
        using var dir = new TempDir();
        var path = WriteBaseFile(dir);
        FaultyPageFile? faulty = null;
        var db = Database.Open(path, Options(f => faulty = new FaultyPageFile(f, PageSize)));
        try
        {
            faulty!.SyncsLeft = 1;
            faulty.WriteBudget = Shape.Value.DataBytes + MetaRecordSize;
            Assert.Throws<IOException>(() => CommitNext(db));
            faulty.Heal();
            // The next writer takes the same free pages and writes different content into them; it dies before its
            // meta record lands.
            using (var tx = db.BeginWrite())
            {
                var t = tx.CreateTree("other");
                for (var i = 0; i < 200; i++) t.Put(BitConverter.GetBytes(i), new byte[300 + i]);
                faulty.TornMetaPrefix = 0;
                faulty.TornMetaFillsDisk = true;
                Assert.Throws<IOException>(() => tx.Commit());
            }
            faulty.Heal();
        }
        finally
        {
            db.Dispose();
        }
        using var reopened = Database.Open(path, Options());
        var stats = VerifyOrFail(reopened, "reopen after a failed commit's pages were reused");
        using var r = reopened.BeginRead();
        Assert.True(Before.Diff(r) is null, $"reopened at transaction {stats.TransactionId} with marker {Workload.ReadMarker(r)}, " +
            $"not at the last reported commit ({Before.Diff(r)})");
    }

    /// <summary>A commit made without sync is visible at once; when the later Sync fails it stays visible, and Sync can be retried.</summary>
    [Fact]
    public void Sync_of_a_lazy_commit_fails_then_succeeds()
    {
        using var dir = new TempDir();
        var path = WriteBaseFile(dir);
        FaultyPageFile? faulty = null;
        using (var db = Database.Open(path, Options(f => faulty = new FaultyPageFile(f, PageSize))))
        {
            CommitNext(db, durable: false);
            faulty!.SyncsLeft = 0;
            Assert.Throws<IOException>(() => db.Sync());
            AssertState(db, After, "after the failed Sync");
            faulty.Heal();
            db.Sync();
        }
        using var reopened = Database.Open(path, Options());
        AssertState(reopened, After, "reopen after the retried Sync");
    }

    /// <summary>Dispose syncs what is pending; when that sync fails the file must still be closed (and unlocked).</summary>
    [Fact]
    public void Dispose_with_a_failing_sync_still_releases_the_file()
    {
        using var dir = new TempDir();
        var path = WriteBaseFile(dir);
        FaultyPageFile? faulty = null;
        var db = Database.Open(path, Options(f => faulty = new FaultyPageFile(f, PageSize)));
        CommitNext(db, durable: false);
        faulty!.SyncsLeft = 0;
        try
        {
            db.Dispose();
        }
        catch (IOException)
        {
            // Reporting the lost sync is fine; keeping the file open is not.
        }
        faulty.Heal();
        Database reopened;
        try
        {
            reopened = Database.Open(path, Options());
        }
        catch (DatabaseLockedException e)
        {
            db.Dispose(); // let the rest of the run have the file back
            Assert.Fail($"Dispose threw on the failed sync and left the file open and locked: {e.Message}");
            return;
        }
        using (reopened)
        {
            // The lazy commit never became durable: the last durable commit is what survives.
            AssertState(reopened, Before, "reopen after a Dispose whose sync failed");
        }
    }

    private const int MetaRecordSize = 512;

    /// <summary>
    /// Opens a copy of the base file through a <see cref="FaultyPageFile"/>, arms <paramref name="arm"/>, runs the
    /// next commit (which must throw), then checks the database is still at the base state and recovers.
    /// </summary>
    private void FaultedCommit(string what, Action<FaultyPageFile> arm, Then then)
    {
        var where = $"{what}, then {then}";
        using var dir = new TempDir();
        var path = WriteBaseFile(dir);
        FaultyPageFile? faulty = null;
        var db = Database.Open(path, Options(f => faulty = new FaultyPageFile(f, PageSize)));
        try
        {
            var oldReader = db.BeginRead();
            try
            {
                arm(faulty!);
                var e = Assert.Throws<IOException>(() => CommitNext(db));
                Assert.True(faulty!.Faults > 0, $"{where}: the commit threw but no fault was injected: {e}");
                Assert.Contains(FaultyPageFile.DiskFull, e.ToString(), StringComparison.Ordinal);

                // Still faulted: reads do not depend on the disk accepting writes.
                Assert.True(Before.Diff(oldReader) is null, $"{where}: a reader from before the commit sees {Before.Diff(oldReader)}");
                AssertState(db, Before, where);
            }
            finally
            {
                oldReader.Dispose();
            }
            faulty!.Heal();
            if (then == Then.ReopenThenRetry)
            {
                db.Dispose();
                db = Database.Open(path, Options(f => faulty = new FaultyPageFile(f, PageSize)));
                AssertState(db, Before, $"{where}: reopened");
            }
            CommitNext(db);
            AssertState(db, After, $"{where}: retried");
        }
        finally
        {
            db.Dispose();
        }
        using var final = Database.Open(path, Options());
        AssertState(final, After, $"{where}: reopened after the retry");
    }

    private static void CommitNext(Database db, bool durable = true)
    {
        using var tx = db.BeginWrite();
        for (var i = BaseTxn + 1; i <= NextTxn; i++) Workload.Apply(tx, Seed, i);
        tx.Commit(durable);
    }

    private static void AssertState(Database db, WorkloadModel model, string where)
    {
        VerifyOrFail(db, where);
        using var tx = db.BeginRead();
        var diff = model.Diff(tx);
        Assert.True(diff is null, $"{where}: expected the state after workload transaction {model.Applied}, found marker {Workload.ReadMarker(tx)}: {diff}");
    }

    private static StorageStats VerifyOrFail(Database db, string where)
    {
        try
        {
            return db.Verify();
        }
        catch (CorruptDatabaseException e)
        {
            Assert.Fail($"{where}: Verify failed: {e.Message}");
            throw;
        }
    }

    private static StorageOptions Options(Func<IPageFile, IPageFile>? wrapper = null) => new()
    {
        PageSize = PageSize,
        GrowthStepBytes = PageSize,
        MapReserveBytes = 64L << 20,
        FileWrapper = wrapper,
    };

    private static WorkloadModel Model(ulong txn)
    {
        var m = new WorkloadModel(Seed);
        m.AdvanceTo(txn);
        return m;
    }

    private static string WriteBaseFile(TempDir dir)
    {
        var path = dir.File("fault.cairn");
        File.WriteAllBytes(path, BaseFile.Value);
        return path;
    }

    private static byte[] BuildBaseFile()
    {
        using var dir = new TempDir();
        var path = dir.File("base.cairn");
        using (var db = Database.Open(path, Options()))
        {
            for (var i = 1UL; i <= BaseTxn; i++)
            {
                using var tx = db.BeginWrite();
                Workload.Apply(tx, Seed, i);
                tx.Commit();
            }
            AssertState(db, Before, "base file");
        }
        return File.ReadAllBytes(path);
    }

    private static CommitShape MeasureCommit()
    {
        using var dir = new TempDir();
        var path = WriteBaseFile(dir);
        FaultyPageFile? faulty = null;
        using var db = Database.Open(path, Options(f => faulty = new FaultyPageFile(f, PageSize)));
        var length = faulty!.Length;
        CommitNext(db);
        AssertState(db, After, "dry run of the faulted commit");
        var log = faulty.WriteLog;
        Assert.True(log.Count >= 2 && log[^1].Offset < 2L * PageSize && log[^1].Length == MetaRecordSize, "the commit must end with one meta write");
        var data = log.Take(log.Count - 1).Sum(w => (long)w.Length);
        Assert.DoesNotContain(log.Take(log.Count - 1), w => w.Offset < 2L * PageSize);
        return new CommitShape(data, faulty.Length > length, faulty.SyncCount);
    }
}
