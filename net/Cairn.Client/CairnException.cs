using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>
/// A request failed. <see cref="Code"/> is the member's <see cref="ErrorCode"/> when a member refused it (null when
/// the client gave up on its own: nothing reachable, connection lost); the message says what to do.
/// </summary>
public class CairnException : Exception
{
    /// <summary>Creates the exception.</summary>
    public CairnException(ErrorCode? code, string message, string? endpoint = null, Exception? inner = null) : base(message, inner)
    {
        Code = code;
        Endpoint = endpoint;
    }

    /// <summary>Creates the exception.</summary>
    public CairnException() : this(null, "Cairn request failed") { }

    /// <summary>Creates the exception.</summary>
    public CairnException(string message) : this(null, message) { }

    /// <summary>Creates the exception.</summary>
    public CairnException(string message, Exception inner) : this(null, message, null, inner) { }

    /// <summary>The member's error code; null when the client raised it.</summary>
    public ErrorCode? Code { get; }

    /// <summary>The endpoint that answered (or was tried last), HOST:PORT.</summary>
    public string? Endpoint { get; }

    /// <summary>The typed exception for an error a member sent.</summary>
    public static CairnException FromServer(ErrorCode code, string message, string endpoint) => code switch
    {
        ErrorCode.Compacted => new CairnCompactedException(message, endpoint),
        ErrorCode.NoSpace => new CairnNoSpaceException(message, endpoint),
        ErrorCode.Corrupt => new CairnCorruptException(message, endpoint),
        ErrorCode.LeaseNotFound => new CairnLeaseNotFoundException(message, endpoint),
        ErrorCode.Timeout => new CairnUnknownOutcomeException(ErrorCode.Timeout, $"{endpoint}: {message}", endpoint),
        ErrorCode.AuthFailed or ErrorCode.PermissionDenied or ErrorCode.InvalidAuthToken or ErrorCode.AuthError => new CairnAuthException(code, message, endpoint),
        _ => new CairnException(code, message, endpoint),
    };

    /// <summary>Whether a member sending <paramref name="code"/> guarantees the request was not applied (so it may be sent again).</summary>
    public static bool IsNotApplied(ErrorCode code) => code is ErrorCode.NoLeader or ErrorCode.Busy or ErrorCode.Stopping or ErrorCode.TooManyRequests;
}

/// <summary>The revision asked for was compacted away: read or watch from <see cref="CompactRevision"/> or later.</summary>
public sealed class CairnCompactedException : CairnException
{
    /// <summary>Creates the exception.</summary>
    public CairnCompactedException(string message, string? endpoint = null, long compactRevision = 0) : base(ErrorCode.Compacted, message, endpoint)
    {
        CompactRevision = compactRevision != 0 ? compactRevision : ParseCompactRevision(message);
    }

    /// <summary>The compaction revision (0 when the member did not say).</summary>
    public long CompactRevision { get; }

    // The member says "... (compacted up to N) ..." (Cairn.Kv.CompactedException).
    private static long ParseCompactRevision(string message)
    {
        const string marker = "compacted up to ";
        var at = message.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) return 0;
        var span = message.AsSpan(at + marker.Length);
        var n = 0;
        while (n < span.Length && char.IsAsciiDigit(span[n])) n++;
        return long.TryParse(span[..n], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : 0;
    }
}

/// <summary>The storage quota is exhausted (NOSPACE alarm): compact, defragment and disarm, or raise the quota.</summary>
public sealed class CairnNoSpaceException(string message, string? endpoint = null) : CairnException(ErrorCode.NoSpace, message, endpoint);

/// <summary>
/// A member's database is damaged (<see cref="ErrorCode.Corrupt"/>): a page the request needed failed its authentication
/// tag or checksum on the member that answered (<see cref="PageNumber"/> names it), or a write was refused because a
/// member raised the CORRUPT alarm. Nothing was applied. Reads can be served by another member (the client tries the
/// others first); writes are refused cluster-wide until the damaged member's data is replaced and the alarm disarmed
/// (`cairn alarm list`, then `cairn alarm disarm`).
/// </summary>
public sealed class CairnCorruptException : CairnException
{
    /// <summary>Creates the exception.</summary>
    public CairnCorruptException(string message, string? endpoint = null) : base(ErrorCode.Corrupt, message, endpoint)
    {
        PageNumber = ParsePage(message);
    }

    /// <summary>The damaged page the member named — of its own database, or, for a write refused under the alarm, of the damaged member's the message names — or -1 when it named none.</summary>
    public long PageNumber { get; }

    // The member says "... page N: ..." (Cairn.Storage.CorruptDatabaseException).
    private static long ParsePage(string message)
    {
        const string marker = "page ";
        var at = message.IndexOf(marker, StringComparison.Ordinal);
        if (at < 0) return -1;
        var span = message.AsSpan(at + marker.Length);
        var n = 0;
        while (n < span.Length && char.IsAsciiDigit(span[n])) n++;
        return long.TryParse(span[..n], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var v) ? v : -1;
    }
}

/// <summary>The lease does not exist (expired, revoked, or never granted): grant a new one.</summary>
public sealed class CairnLeaseNotFoundException(string message, string? endpoint = null) : CairnException(ErrorCode.LeaseNotFound, message, endpoint);

/// <summary>No endpoint could be reached; the message names each one tried and why it failed.</summary>
public sealed class CairnUnavailableException : CairnException
{
    /// <summary>Creates the exception from the endpoints tried and, for each, why it failed.</summary>
    public CairnUnavailableException(IReadOnlyList<(string Endpoint, string Reason)> failures, Exception? inner = null)
        : base(null, "no member reachable: tried " + string.Join(", ", failures.Select(f => $"{f.Endpoint} ({f.Reason})")), failures.Count > 0 ? failures[^1].Endpoint : null, inner)
    {
        Failures = failures;
    }

    /// <summary>Each endpoint tried, in order, with the reason it failed ("connection refused").</summary>
    public IReadOnlyList<(string Endpoint, string Reason)> Failures { get; }
}

/// <summary>
/// A write may or may not have been applied: the connection was lost after it was sent, or the member answered
/// Timeout. Read the key space to find out before retrying a write that is not idempotent.
/// </summary>
public sealed class CairnUnknownOutcomeException(ErrorCode? code, string message, string? endpoint = null, Exception? inner = null)
    : CairnException(code, message, endpoint, inner);

/// <summary>
/// Auth refused the request: wrong credentials (<see cref="ErrorCode.AuthFailed"/>), a user without the permission
/// (<see cref="ErrorCode.PermissionDenied"/>, the message names the operation and key), no valid token
/// (<see cref="ErrorCode.InvalidAuthToken"/>: give <see cref="CairnClientOptions.Credentials"/>), or an auth change that
/// cannot be made (<see cref="ErrorCode.AuthError"/>).
/// </summary>
public sealed class CairnAuthException(ErrorCode code, string message, string? endpoint = null) : CairnException(code, message, endpoint);

/// <summary>Why a value could not be sealed or opened by a <see cref="ValueProtector"/>.</summary>
public enum ValueProtectionError
{
    /// <summary>The stored value has no envelope: it was written without a protector.</summary>
    NotSealed,
    /// <summary>The envelope is of a version this client does not read.</summary>
    UnsupportedVersion,
    /// <summary>The value is sealed with a key id the keyring does not hold: add that key as an older key.</summary>
    UnknownKey,
    /// <summary>The tag does not match: the value was altered, moved to another key, or the key with that id is not the right one.</summary>
    AuthenticationFailed,
    /// <summary>A transaction compares values, which cannot work against ciphertext: compare mod revisions instead.</summary>
    ValueCompare,
}

/// <summary>
/// A value could not be opened (or a request cannot work with sealed values); <see cref="Error"/> says why and the
/// message what to do. Raised by the client, never by a member (<see cref="CairnException.Code"/> is null).
/// </summary>
public sealed class CairnValueProtectionException : CairnException
{
    /// <summary>Creates the exception.</summary>
    public CairnValueProtectionException(ValueProtectionError error, byte[] key, int? keyId, string message) : base(null, message)
    {
        Error = error;
        Key = key;
        KeyId = keyId;
    }

    /// <summary>Why.</summary>
    public ValueProtectionError Error { get; }

    /// <summary>The key whose value it is.</summary>
    public IReadOnlyList<byte> Key { get; }

    /// <summary>The value key id the envelope names, when it was read.</summary>
    public int? KeyId { get; }

    /// <summary>A key for a message: UTF-8 text when it is printable, else hex.</summary>
    internal static string Name(ReadOnlySpan<byte> key)
    {
        foreach (var b in key)
        {
            if (b is < 0x20 or >= 0x7F) return "0x" + Convert.ToHexStringLower(key);
        }
        return "'" + System.Text.Encoding.ASCII.GetString(key) + "'";
    }
}
