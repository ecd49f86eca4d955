using System.Security.Cryptography;
using Cairn.Crypto;

namespace Cairn.Storage;

/// <summary>Creating a file, choosing its meta page on open, and its keys.</summary>
public sealed partial class Database
{
    /// <summary>Writes a new empty database next to <paramref name="path"/> and renames it into place, so creation is atomic.</summary>
    private static void Create(string path, int pageSize, IKeyProvider? masterKey, Action<string>? failpoint)
    {
        var temp = $"{path}.{Environment.ProcessId}.{Guid.NewGuid():N}{CreatingSuffix}";
        var meta = new MetaState { PageSize = pageSize, FileId = new Guid(RandomNumberGenerator.GetBytes(16)), PageCount = 2 };
        if (masterKey is not null)
        {
            meta.Flags |= MetaState.FlagEncrypted;
            meta.DataKeyId = 1;
            meta.WrappedKey = new byte[KeyWrap.WrappedSize];
            var dataKey = RandomNumberGenerator.GetBytes(32);
            KeyWrap.Wrap(masterKey, dataKey, meta.KeyContext(), meta.WrappedKey);
            CryptographicOperations.ZeroMemory(dataKey);
        }
        var page = new byte[pageSize * 2];
        meta.TxnId = 0;
        meta.Write(page);
        meta.TxnId = 1;
        meta.Write(page.AsSpan(pageSize));
        // The temporary file stays open — and locked (FileShare.None is flock) — until it has its final name, so that
        // RemoveStaleCreations in another process never takes it for the leftover of a crash.
        using (var fs = new FileStream(temp, Native.CreatePrivate(FileMode.CreateNew, FileAccess.Write, FileShare.None)))
        {
            fs.Write(page);
            fs.Flush(flushToDisk: true);
            failpoint?.Invoke(Failpoints.BeforeCreateRename);
            if (!Native.TryMoveNoReplace(temp, path))
            {
                System.IO.File.Delete(temp); // someone else created it first: open theirs
                return;
            }
        }
        SyncDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
    }

    private const string CreatingSuffix = ".creating";

    /// <summary>
    /// Deletes what creations of <paramref name="path"/> interrupted by a crash left behind: files named
    /// <c>{path}.{pid}.{guid}.creating</c> whose process is gone. One is kept when its pid is this process or a live one
    /// (it may be being created right now), or when another process holds its lock (a creator in another pid namespace).
    /// Returns the names removed.
    /// </summary>
    private static List<string> RemoveStaleCreations(string path)
    {
        var removed = new List<string>();
        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full);
        var prefix = System.IO.Path.GetFileName(full) + ".";
        if (dir is null || !Directory.Exists(dir)) return removed;
        foreach (var file in Directory.EnumerateFiles(dir, "*" + CreatingSuffix))
        {
            var name = System.IO.Path.GetFileName(file);
            if (!name.StartsWith(prefix, StringComparison.Ordinal)) continue;
            // What is left between the prefix and the suffix must be exactly "{pid}.{32 hex digits}".
            var middle = name.AsSpan(prefix.Length, name.Length - prefix.Length - CreatingSuffix.Length);
            var dot = middle.IndexOf('.');
            if (dot <= 0 || middle.Length - dot - 1 != 32 || !Guid.TryParseExact(middle[(dot + 1)..], "N", out _)) continue;
            if (!int.TryParse(middle[..dot], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var pid)) continue;
            if (pid == Environment.ProcessId || IsProcessAlive(pid)) continue;
            try
            {
                using var handle = System.IO.File.OpenHandle(file, FileMode.Open, FileAccess.ReadWrite, FileShare.None);
                System.IO.File.Delete(file); // while locked: nobody can be writing it
                removed.Add(name);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Locked by a live creator we cannot see, or already gone, or not ours to delete: leave it.
            }
        }
        return removed;
    }

    private static bool IsProcessAlive(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false; // no such process
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private const string Restore = "Restore from a backup or a replica.";

    private static (MetaState Meta, int Slot, MetaState Other) ReadMeta(IPageFile file, string path, StorageOptions options)
    {
        var length = file.Length;
        if (length < 2 * StorageOptions.MinPageSize)
        {
            throw new IncompatibleFormatException($"{path} is {length} bytes, too short to be a Cairn database (a new one is at least {2 * StorageOptions.MinPageSize}); check the path.");
        }
        var buf = new byte[MetaState.RecordSize];
        file.Read(buf, 0);
        var r0 = MetaState.TryRead(buf, out var m0, out var v0);
        if (r0 == MetaState.ReadResult.BadVersion)
        {
            throw new IncompatibleFormatException($"{path} has format version {v0}; this build reads version {MetaState.FormatVersion}. Use a matching Cairn release.");
        }
        // Meta 1 sits one page in; its page size comes from meta 0, or is searched for when meta 0 is damaged.
        MetaState m1 = default;
        var r1 = MetaState.ReadResult.NotCairn;
        uint v1 = 0;
        for (var ps = StorageOptions.MinPageSize; ps <= StorageOptions.MaxPageSize && r1 != MetaState.ReadResult.Ok; ps *= 2)
        {
            if (r0 == MetaState.ReadResult.Ok && ps != m0.PageSize) continue;
            if (length < 2L * ps) break;
            file.Read(buf, ps);
            r1 = MetaState.TryRead(buf, out m1, out v1);
            if (r1 == MetaState.ReadResult.Ok && m1.PageSize != ps) r1 = MetaState.ReadResult.BadChecksum;
        }
        if (r1 == MetaState.ReadResult.BadVersion)
        {
            throw new IncompatibleFormatException($"{path} has format version {v1}; this build reads version {MetaState.FormatVersion}.");
        }
        if (r0 == MetaState.ReadResult.NotCairn)
        {
            // No magic at the start: a foreign file, unless meta 1 proves it is ours with page 0 damaged.
            if (r1 == MetaState.ReadResult.NotCairn) throw new IncompatibleFormatException($"{path} is not a Cairn database (no Cairn magic at the start); check the path.");
            r0 = MetaState.ReadResult.BadChecksum;
        }
        MetaState chosen;
        int slot;
        if (r0 == MetaState.ReadResult.Ok && r1 == MetaState.ReadResult.Ok)
        {
            if (m0.FileId != m1.FileId)
            {
                throw new CorruptDatabaseException(path, 1, "the two meta pages belong to different files", Restore);
            }
            (chosen, slot) = m0.TxnId >= m1.TxnId ? (m0, 0) : (m1, 1);
        }
        else if (r0 == MetaState.ReadResult.Ok || r1 == MetaState.ReadResult.Ok)
        {
            var (good, goodSlot, bad) = r0 == MetaState.ReadResult.Ok ? (m0, 0, 1) : (m1, 1, 0);
            if (!options.AllowMetaFallback)
            {
                throw new CorruptDatabaseException(path, bad, "meta page checksum mismatch",
                    $"Meta page {goodSlot} is intact at transaction {good.TxnId}: restore from a backup or a replica, or open with AllowMetaFallback to roll back to that transaction.",
                    fallbackTransaction: good.TxnId);
            }
            (chosen, slot) = (good, goodSlot);
        }
        else
        {
            throw new CorruptDatabaseException(path, 0, "both meta pages are damaged (checksum mismatch)", Restore);
        }
        if (chosen.PageSize < StorageOptions.MinPageSize || chosen.PageSize > StorageOptions.MaxPageSize || (chosen.PageSize & (chosen.PageSize - 1)) != 0)
        {
            throw new CorruptDatabaseException(path, slot, $"meta page names an impossible page size {chosen.PageSize}", Restore);
        }
        // Compared in pages: a page count past 2^63 / page size must not wrap the byte count into something small.
        if (chosen.PageCount < 2 || chosen.PageCount > (ulong)length / (ulong)chosen.PageSize)
        {
            throw new CorruptDatabaseException(path, -1, $"the file is truncated: its meta page (transaction {chosen.TxnId}) needs {chosen.PageCount} pages of {chosen.PageSize} bytes but the file has {length} bytes", Restore);
        }
        return (chosen, slot, slot == 0 ? m1 : m0);
    }

    private static PageCipher? OpenCipher(string path, MetaState meta, StorageOptions options)
    {
        if (!meta.Encrypted)
        {
            if (options.MasterKey is not null)
            {
                throw new EncryptionKeyException($"{path} is not encrypted but a master key was given. Cairn does not encrypt a database in place: open it without a key, or create a new encrypted database and copy the data into it.");
            }
            return null;
        }
        if (options.MasterKey is null)
        {
            throw new EncryptionKeyException($"{path} is encrypted; open it with the master key it was created (or last rotated) with.");
        }
        Span<byte> dataKey = stackalloc byte[32];
        try
        {
            if (meta.WrappedKey is null || !KeyWrap.TryUnwrap(options.MasterKey, meta.WrappedKey, meta.KeyContext(), dataKey))
            {
                throw new EncryptionKeyException($"The master key ({options.MasterKey.KeyId}) does not open {path}: it is not the key the database was created or last rotated with. Nothing was changed.");
            }
            return new PageCipher(dataKey, (ushort)meta.DataKeyId, meta.FileId);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(dataKey);
        }
    }

    /// <summary>
    /// Wraps the data key under <paramref name="newKey"/> and writes it into both meta pages, so the old master key
    /// opens nothing from now on. Data pages are not touched. Waits for the writer.
    /// </summary>
    public void RotateMasterKey(IKeyProvider newKey)
    {
        ArgumentNullException.ThrowIfNull(newKey);
        if (Cipher is null) throw new EncryptionKeyException($"{Path} is not encrypted; there is no master key to rotate.");
        _writer.Wait();
        try
        {
            RepairMetaSlot();
            MetaState meta;
            lock (_lock)
            {
                ObjectDisposedException.ThrowIf(_disposed, this);
                meta = _current;
            }
            var wrapped = new byte[KeyWrap.WrappedSize];
            KeyWrap.Wrap(newKey, Cipher.DataKey, meta.KeyContext(), wrapped);
            meta.WrappedKey = wrapped;
            // Twice, so neither meta page keeps the data key wrapped under the old master key.
            for (var i = 0; i < 2; i++)
            {
                meta.TxnId++;
                WriteMetaDurably(meta);
                lock (_lock) _current = meta;
            }
        }
        finally
        {
            _writer.Release();
        }
    }
}
