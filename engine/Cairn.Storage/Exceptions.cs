namespace Cairn.Storage;

/// <summary>Base type of every error Cairn.Storage raises on purpose.</summary>
public class StorageException : Exception
{
    /// <summary>Creates the exception with a message that says what happened and what to do.</summary>
    public StorageException(string message) : base(message) { }

    /// <summary>Creates the exception wrapping the cause.</summary>
    public StorageException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>
/// The file's bytes are not what Cairn wrote: a checksum or authentication tag failed, a page is not where
/// it claims to be, or a structure is inconsistent. <see cref="PageNumber"/> names the damaged page when known.
/// The message is for a library user; the parts (<see cref="Path"/>, <see cref="PageNumber"/>, <see cref="Detail"/>,
/// <see cref="FallbackTransaction"/>) let a caller such as the server compose its own, naming its own remedies.
/// </summary>
public sealed class CorruptDatabaseException : StorageException
{
    /// <summary>Creates the exception for a damaged page.</summary>
    public CorruptDatabaseException(long pageNumber, string detail)
        : base($"page {pageNumber}: {detail}")
    {
        PageNumber = pageNumber;
        Detail = detail;
    }

    /// <summary>Creates the exception for damage not tied to one page (e.g. a truncated file).</summary>
    public CorruptDatabaseException(string detail) : base(detail)
    {
        PageNumber = -1;
        Detail = detail;
    }

    /// <summary>
    /// Creates the exception for damage found at open in the file at <paramref name="path"/>: the message is
    /// "path: page N: detail. remedy" (without the page when <paramref name="pageNumber"/> is -1).
    /// </summary>
    public CorruptDatabaseException(string path, long pageNumber, string detail, string remedy, ulong? fallbackTransaction = null)
        : base($"{path}: {(pageNumber >= 0 ? $"page {pageNumber}: " : "")}{detail}. {remedy}")
    {
        Path = path;
        PageNumber = pageNumber;
        Detail = detail;
        FallbackTransaction = fallbackTransaction;
    }

    /// <summary>The damaged page, or -1 when the damage is not tied to one page.</summary>
    public long PageNumber { get; }

    /// <summary>What is wrong, without the page number or any remedy (e.g. "meta page checksum mismatch").</summary>
    public string Detail { get; }

    /// <summary>The database file, when known (damage found at open).</summary>
    public string? Path { get; }

    /// <summary>
    /// When one meta page is damaged and the other is intact: the transaction the intact one holds, to which opening
    /// with <see cref="StorageOptions.AllowMetaFallback"/> rolls the database back (giving up the newest commit). Null
    /// when there is no such way out.
    /// </summary>
    public ulong? FallbackTransaction { get; }
}

/// <summary>The file is not a Cairn database, or was written by an incompatible format version.</summary>
public sealed class IncompatibleFormatException : StorageException
{
    /// <summary>Creates the exception.</summary>
    public IncompatibleFormatException(string message) : base(message) { }
}

/// <summary>
/// Another process (or another <see cref="Database"/> in this one) has the file open: one process owns a database at a
/// time. <see cref="HolderPid"/> names the holder when it can be found (on Linux, from /proc/locks).
/// </summary>
public sealed class DatabaseLockedException : StorageException
{
    /// <summary>Creates the exception with a message of the caller's.</summary>
    public DatabaseLockedException(string message, Exception inner) : base(message, inner) { }

    /// <summary>Creates the exception for <paramref name="path"/>, held by <paramref name="holderPid"/> when known.</summary>
    public DatabaseLockedException(string path, int? holderPid, Exception inner)
        : base(Describe(path, holderPid), inner)
    {
        Path = path;
        HolderPid = holderPid;
    }

    /// <summary>The database file, when the exception was made for one.</summary>
    public string? Path { get; }

    /// <summary>The process holding the file's lock, when it could be found; this very process when another <see cref="Database"/> in it holds the file.</summary>
    public int? HolderPid { get; }

    /// <summary>True when the holder is another <see cref="Database"/> instance in this process.</summary>
    public bool HeldByThisProcess => HolderPid == Environment.ProcessId;

    private static string Describe(string path, int? pid) => pid switch
    {
        { } p when p == Environment.ProcessId => $"{path} is in use by another Database instance in this process (pid {p}); dispose that one first — one Database owns a file at a time.",
        { } p => $"{path} is in use by another process (pid {p}); stop it first — one process owns a database at a time.",
        null => $"{path} is in use by another process, or by another Database instance in this one; stop or close it first — one process owns a database at a time.",
    };
}

/// <summary>The database is encrypted and no master key was given, the key given does not open it, or a key was given for an unencrypted database.</summary>
public sealed class EncryptionKeyException : StorageException
{
    /// <summary>Creates the exception.</summary>
    public EncryptionKeyException(string message) : base(message) { }
}
