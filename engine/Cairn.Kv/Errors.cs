namespace Cairn.Kv;

/// <summary>Base type of the key-value store's errors; each says what to do.</summary>
public class KvException : Exception
{
    /// <summary>Creates the exception.</summary>
    public KvException(string message) : base(message) { }
}

/// <summary>A read or watch asked for a revision that compaction has removed.</summary>
public sealed class CompactedException(long requested, long compactRevision)
    : KvException($"revision {requested} has been compacted (compacted up to {compactRevision}); read at {compactRevision} or later")
{
    /// <summary>The revision asked for.</summary>
    public long Requested { get; } = requested;

    /// <summary>Reads below this revision fail.</summary>
    public long CompactRevision { get; } = compactRevision;
}

/// <summary>A read or compaction named a revision the store has not reached yet.</summary>
public sealed class FutureRevisionException(long requested, long current)
    : KvException($"revision {requested} is in the future (the store is at {current})")
{
    /// <summary>The revision asked for.</summary>
    public long Requested { get; } = requested;

    /// <summary>The store's current revision.</summary>
    public long Current { get; } = current;
}

/// <summary>A key or value is larger than the store accepts.</summary>
public sealed class TooLargeException(string message) : KvException(message);

/// <summary>A transaction writes one key twice (etcd refuses this too).</summary>
public sealed class DuplicateKeyException(string message) : KvException(message);

/// <summary>A put with IgnoreValue or IgnoreLease named a key that does not exist.</summary>
public sealed class KeyNotFoundForUpdateException(string message) : KvException(message);

/// <summary>A put or revoke named a lease that does not exist (never granted, revoked, or expired).</summary>
public sealed class LeaseNotFoundException(long id) : KvException($"lease {id} not found; grant a lease first (it may have expired or been revoked)")
{
    /// <summary>The lease asked for.</summary>
    public long Id { get; } = id;
}

/// <summary>A grant named a lease id already in use.</summary>
public sealed class LeaseExistsException(long id) : KvException($"lease {id} already exists; grant with another id");

/// <summary>The NOSPACE alarm is raised: writes that add data are refused until space is freed and the alarm disarmed.</summary>
public sealed class NoSpaceException(string message) : KvException(message);

/// <summary>An auth change that cannot be made (no such user or role, root missing, ...); the message says what to do.</summary>
public sealed class AuthException(string message) : KvException(message);
