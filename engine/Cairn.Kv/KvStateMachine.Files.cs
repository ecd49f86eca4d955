using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>The operations on the store's file as a whole: defragmentation, snapshot dump, build and install.</summary>
public sealed partial class KvStateMachine
{
    /// <summary>
    /// Rewrites the store into a fresh file holding only live pages, then swaps it in — online: writes go on while
    /// it copies. The copy is taken from one read transaction; the batches applied meanwhile are recorded and applied
    /// to the copy too, in rounds, until few are left; only the last round and the swap hold writes back (and reads
    /// wait only for the moment of the swap). Nothing is lost: the copy is synced before the rename. Returns the file
    /// sizes before and after. A snapshot installed meanwhile ends it early, keeping the old file.
    /// </summary>
    public DefragmentResult Defragment()
    {
        lock (_defragment)
        {
            var before = new FileInfo(_path).Length;
            var temp = _path + ".defrag";
            File.Delete(temp);
            var redo = new RedoLog();
            try
            {
                Database source;
                ReadTransaction from;
                lock (_apply)
                {
                    if (_open) CommitOpen();      // the copy starts from everything applied so far
                    source = _db;
                    from = source.BeginRead();
                    _redo = redo;                 // every batch applied from now on is recorded for the copy
                }
                var fresh = Database.Open(temp, _options.Storage with { PageSize = source.PageSize, SyncOnCommit = false });
                try
                {
                    using (from)
                    using (var loader = new TreeLoader(fresh))
                    {
                        // The copy keeps the store's page size, which may not be the one the options give a new file.
                        foreach (var name in from.GetTreeNames())
                        {
                            loader.BeginTree(name);
                            foreach (var e in from.OpenTree(name).All()) loader.Put(e.Key, e.Value);
                        }
                        loader.Finish();
                    }
                    DefragmentCopied?.Invoke();
                    // Catch up in rounds while writes go on; the last (small) round, and the swap, hold the apply lock.
                    for (var round = 0; round < 10 && redo.Pending > 64; round++) redo.ApplyTo(fresh, _options);
                    lock (_apply)
                    {
                        _redo = null;
                        if (redo.Abandoned) throw new DefragmentAbandonedException();
                        if (_open) CommitOpen();
                        redo.ApplyTo(fresh, _options);
                        fresh.Sync();
                        fresh.Dispose();
                        SwapIn(temp);
                    }
                }
                finally
                {
                    fresh.Dispose();   // a no-op once swapped in
                }
            }
            catch (DefragmentAbandonedException)
            {
                File.Delete(temp);
                return new DefragmentResult(before, before);
            }
            catch
            {
                lock (_apply) _redo = null;
                File.Delete(temp);
                throw;
            }
            finally
            {
                lock (_apply)
                {
                    if (ReferenceEquals(_redo, redo)) _redo = null;
                }
            }
            return new DefragmentResult(before, new FileInfo(_path).Length);
        }
    }

    /// <summary>
    /// Writes the whole store — every tree, as of one read transaction — to <paramref name="output"/> in the snapshot
    /// format (docs/kv.md, "Snapshots"). Writers are not blocked; a file swap (defragmentation, install) waits for it.
    /// </summary>
    /// <returns>The applied index and revision of the state written, and the bytes written.</returns>
    public SnapshotInfo WriteSnapshot(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var db = EnterRead();
        try
        {
            using var tx = db.BeginRead();
            var m = new Mvcc(tx, _options);
            var bytes = SnapshotFormat.Write(output, tx, m.Applied, m.Revision);
            return new SnapshotInfo(m.Applied, m.Revision, bytes);
        }
        finally
        {
            ExitRead();
        }
    }

    /// <summary>
    /// Builds a new store file at <paramref name="path"/> (an existing file there is deleted first) from a dump written
    /// by <see cref="WriteSnapshot"/>, synced when this returns; install it with <see cref="InstallSnapshot"/>. Use the
    /// storage options of the store it will replace (page size, master key).
    /// </summary>
    /// <exception cref="InvalidDataException">The dump is damaged (the message says how); no file is left behind.</exception>
    public static SnapshotInfo BuildFromSnapshot(Stream input, string path, KvOptions? options = null) => BuildFromSnapshot(input, path, options, null);

    /// <summary>
    /// As <see cref="BuildFromSnapshot(Stream, string, KvOptions?)"/>, leaving out the cluster records (see
    /// <see cref="KvCommand.Cluster"/>) whose keys <paramref name="keepClusterRecord"/> turns down: a restore into a new
    /// cluster drops the old member directory.
    /// </summary>
    public static SnapshotInfo BuildFromSnapshot(Stream input, string path, KvOptions? options, Func<ReadOnlySpan<byte>, bool>? keepClusterRecord)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentException.ThrowIfNullOrEmpty(path);
        options ??= new KvOptions();
        options.Validate();
        File.Delete(path);
        try
        {
            using var db = Database.Open(path, options.StorageWithDefaults);
            return SnapshotFormat.Load(input, db, keepClusterRecord is null ? null : (tree, key) => tree != Mvcc.ClusterTree || keepClusterRecord(key));
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>Reads a dump written by <see cref="WriteSnapshot"/> to its end, checking it, and says what it holds.</summary>
    /// <exception cref="InvalidDataException">The dump is damaged (the message says how).</exception>
    public static SnapshotSummary InspectSnapshot(Stream input)
    {
        ArgumentNullException.ThrowIfNull(input);
        return SnapshotFormat.Inspect(input);
    }

    /// <summary>
    /// Replaces this store's state with a file built by <see cref="BuildFromSnapshot(Stream, string, KvOptions?)"/> (the file is moved into place).
    /// Writes wait; reads wait for the moment of the swap (and it waits for open read views). Watchers carry on: each
    /// replays the installed store's changes from the revision it is owed, or — when the installed store has compacted
    /// past that revision — ends with a canceled response carrying the compaction revision, as after a compaction.
    /// </summary>
    /// <exception cref="ArgumentException">The built file is behind this store (a snapshot only moves a store forward), or is not a key-value store.</exception>
    public SnapshotInfo InstallSnapshot(string builtPath)
    {
        ArgumentException.ThrowIfNullOrEmpty(builtPath);
        lock (_apply)
        {
            if (_open) CommitOpen(); // the file is about to be replaced: what is applied is committed to it first
            if (_redo is { } redo)
            {
                redo.Abandoned = true; // a defragmentation's copy no longer follows this store: it ends, keeping the old file
                _redo = null;
            }
            // Check the file before giving up ours: it must open with our storage options and not go back in the log.
            ulong applied;
            using (var built = Database.Open(builtPath, _options.Storage with { CreateIfMissing = false }))
            using (var tx = built.BeginRead())
            {
                if (!tx.TryOpenTree(Mvcc.MetaTree, out _)) throw new ArgumentException($"{builtPath} is not a key-value store (it has no {Mvcc.MetaTree} tree).");
                applied = new Mvcc(tx, _options).Applied;
            }
            var current = AppliedIndex;
            if (applied < current)
            {
                throw new ArgumentException($"The snapshot at {builtPath} ends at applied index {applied}, behind this store's {current}; a snapshot only moves a store forward.");
            }
            SwapIn(builtPath);
            _auth = LoadAuth();
            var (index, revision) = Read(m => (m.Applied, m.Revision));
            Watches.Reset(revision); // still under _apply: no change is published before the watchers are told
            return new SnapshotInfo(index, revision, new FileInfo(_path).Length);
        }
    }

    /// <summary>
    /// Replaces the store's file with <paramref name="replacement"/> (synced by the caller): closes the gate, waits for
    /// open readers, closes the file, renames the replacement over it and opens it. Callers hold <c>_apply</c>.
    /// </summary>
    private void SwapIn(string replacement)
    {
        CloseGate(disposing: false);
        try
        {
            _db.Dispose();
            try
            {
                File.Move(replacement, _path, overwrite: true);
            }
            catch
            {
                _db = OpenDatabase(_path, _options); // the rename did not happen: carry on with our own file
                throw;
            }
            _db = OpenDatabase(_path, _options);
        }
        finally
        {
            lock (_gate)
            {
                _swapping = false;
                Monitor.PulseAll(_gate);
            }
        }
    }
}
