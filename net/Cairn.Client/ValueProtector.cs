using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using Cairn.Crypto;

namespace Cairn.Client;

/// <summary>
/// Seals values on the client before they are stored, and opens them when they come back (docs/client.md, "Value
/// protection"): AES-256-GCM (<see cref="Aes256Gcm"/>) under a client-held keyring, so the members only ever hold
/// ciphertext. One key — the current one — seals; every key of the keyring opens. Set it as
/// <see cref="CairnClientOptions.ValueProtector"/> and puts, gets, ranges, transactions and watches seal and open
/// transparently.
/// </summary>
/// <remarks>
/// <para>Envelope (version 1), 48 bytes around the ciphertext:</para>
/// <code>
/// [0]       0xCA  magic
/// [1]       0x01  version
/// [2..4)    key id, big-endian
/// [4..20)   session salt: 128 random bits drawn when this protector was built
/// [20..32)  nonce: [0 × 4][message counter, u64 big-endian] — unique within the session
/// [32..^16) ciphertext, as long as the value
/// [^16..)   GCM tag
/// </code>
/// <para>
/// Nonces: each protector instance is a sealing session with its own key,
/// <c>HKDF-SHA256(value key, session salt, "cairn value key v1")</c>, and its nonces count up from 1 in memory, so
/// within a session no nonce repeats, by construction. Two sessions share a GCM key only if they draw the same 128-bit
/// salt: about n²/2¹²⁹ for n sessions, 2⁻⁶⁵ after four billion. So there is no per-key message limit to watch (random
/// 96-bit nonces under the value key itself would allow only 2³² seals per key across every client, SP 800-38D §8.3).
/// </para>
/// <para>
/// The associated data is the key the value is stored under, so a sealed value copied to another key fails to open;
/// revision, version and lease are not bound (a member could hand back an older sealed value of the same key).
/// </para>
/// <para>
/// <see cref="Seal(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/> and <see cref="Open(ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>
/// allocate only the array they return (the span overloads nothing), except that opening a value from a session not
/// seen before derives that session's cipher once (up to <see cref="MaxCachedSessions"/> are kept). Thread-safe;
/// dispose it (it wipes the keys) only after every client using it.
/// </para>
/// </remarks>
public sealed class ValueProtector : IDisposable
{
    /// <summary>First byte of every sealed value.</summary>
    public const byte Magic = 0xCA;

    /// <summary>The envelope version this protector writes (and the only one it reads).</summary>
    public const byte Version = 1;

    /// <summary>Bytes before the ciphertext: magic, version, key id, session salt, nonce.</summary>
    public const int HeaderSize = 2 + 2 + SaltSize + Aes256Gcm.NonceSizeInBytes;

    /// <summary>Bytes a sealed value has beyond its plaintext: the header and the tag.</summary>
    public const int Overhead = HeaderSize + Aes256Gcm.TagSizeInBytes;

    /// <summary>Sessions whose ciphers are kept for opening; values from further sessions derive theirs per value.</summary>
    public const int MaxCachedSessions = 4096;

    private const int SaltSize = 16;
    private const int KeyIdOffset = 2;
    private const int SaltOffset = 4;
    private const int NonceOffset = SaltOffset + SaltSize;

    private static ReadOnlySpan<byte> SessionInfo => "cairn value key v1"u8;

    private readonly Dictionary<ushort, byte[]> _keys = [];          // id → key (pinned, wiped on Dispose); fixed after construction
    private readonly ConcurrentDictionary<Session, Aes256Gcm> _ciphers = new(); // sessions seen → their cipher; at most MaxCachedSessions
    private readonly Session _sealing;                               // this instance's session under the current key
    private readonly Aes256Gcm _sealer;
    private long _counter;                                           // the last nonce counter used by _sealer; only grows
    private bool _disposed;

    /// <summary>A protector that seals with <paramref name="current"/> and opens with it and every key of <paramref name="older"/>.</summary>
    /// <exception cref="ArgumentException">Two keys share an id.</exception>
    public ValueProtector(ValueKey current, params IEnumerable<ValueKey> older)
    {
        ArgumentNullException.ThrowIfNull(current);
        ArgumentNullException.ThrowIfNull(older);
        try
        {
            foreach (var k in (IEnumerable<ValueKey>)[current, .. older])
            {
                ArgumentNullException.ThrowIfNull(k, nameof(older));
                if (_keys.ContainsKey(k.Id)) throw new ArgumentException($"value key id {k.Id} is given twice; each key of the keyring needs its own id", nameof(older));
                var material = GC.AllocateArray<byte>(Aes256Gcm.KeySizeInBytes, pinned: true);
                _keys.Add(k.Id, material);
                k.Provider.GetKey(material);
            }
            Span<byte> salt = stackalloc byte[SaltSize];
            RandomNumberGenerator.Fill(salt);
            _sealing = new Session(current.Id, BinaryPrimitives.ReadUInt128BigEndian(salt));
            _sealer = Derive(_keys[current.Id], salt);
            _ciphers[_sealing] = _sealer;
        }
        catch
        {
            Dispose();
            throw;
        }
        CurrentKeyId = current.Id;
    }

    /// <summary>A protector over the key files of <paramref name="keyFiles"/>, written <c>[ID=]FILE[,ID=FILE...]</c>: the first seals.</summary>
    public static ValueProtector FromKeyFiles(string keyFiles)
    {
        var keys = ValueKey.ParseKeyFiles(keyFiles);
        return new ValueProtector(keys[0], keys.Skip(1));
    }

    /// <summary>The id of the key that seals.</summary>
    public ushort CurrentKeyId { get; }

    /// <summary>Every key id this protector opens, in ascending order.</summary>
    public IReadOnlyList<ushort> KeyIds => [.. _keys.Keys.Order()];

    /// <summary>The length of a sealed value of <paramref name="plaintextLength"/> bytes.</summary>
    public static int SealedLength(int plaintextLength) => checked(plaintextLength + Overhead);

    /// <summary>Whether <paramref name="value"/> is long enough and begins as a sealed value of this version does.</summary>
    public static bool IsSealed(ReadOnlySpan<byte> value) => value.Length >= Overhead && value[0] == Magic && value[1] == Version;

    /// <summary>The id of the key a sealed value names, or false when it is not a sealed value.</summary>
    public static bool TryReadKeyId(ReadOnlySpan<byte> value, out ushort keyId)
    {
        keyId = IsSealed(value) ? BinaryPrimitives.ReadUInt16BigEndian(value[KeyIdOffset..]) : (ushort)0;
        return keyId != 0;
    }

    /// <summary>Seals <paramref name="plaintext"/>, to be stored under <paramref name="key"/>, with the current key.</summary>
    public byte[] Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext)
    {
        var result = new byte[SealedLength(plaintext.Length)];
        Seal(key, plaintext, result);
        return result;
    }

    /// <summary>Seals into <paramref name="destination"/>, which must hold <see cref="SealedLength"/> bytes; returns the bytes written.</summary>
    public int Seal(ReadOnlySpan<byte> key, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var length = SealedLength(plaintext.Length);
        if (destination.Length < length) ThrowDestination(length, destination.Length);
        var counter = Interlocked.Increment(ref _counter);
        if (counter == long.MaxValue) throw new InvalidOperationException("This protector has sealed 2^63 values; build a new one (a new session).");
        destination[0] = Magic;
        destination[1] = Version;
        BinaryPrimitives.WriteUInt16BigEndian(destination[KeyIdOffset..], _sealing.KeyId);
        BinaryPrimitives.WriteUInt128BigEndian(destination[SaltOffset..], _sealing.Salt);
        var nonce = destination.Slice(NonceOffset, Aes256Gcm.NonceSizeInBytes);
        BinaryPrimitives.WriteUInt32BigEndian(nonce, 0);
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], counter);
        _sealer.Encrypt(nonce, plaintext, destination.Slice(HeaderSize, plaintext.Length), destination.Slice(HeaderSize + plaintext.Length, Aes256Gcm.TagSizeInBytes), key);
        return length;
    }

    /// <summary>Opens a value stored under <paramref name="key"/>.</summary>
    /// <exception cref="CairnValueProtectionException">It is not a sealed value, names a key this keyring lacks, or does not authenticate.</exception>
    public byte[] Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedValue)
    {
        if (!IsSealed(sealedValue)) ThrowNotSealed(key, sealedValue);
        var result = new byte[sealedValue.Length - Overhead];
        Open(key, sealedValue, result);
        return result;
    }

    /// <summary>Opens into <paramref name="destination"/> (at least the sealed length less <see cref="Overhead"/>); returns the bytes written.</summary>
    /// <exception cref="CairnValueProtectionException">It is not a sealed value, names a key this keyring lacks, or does not authenticate.</exception>
    public int Open(ReadOnlySpan<byte> key, ReadOnlySpan<byte> sealedValue, Span<byte> destination)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (!IsSealed(sealedValue)) ThrowNotSealed(key, sealedValue);
        var length = sealedValue.Length - Overhead;
        if (destination.Length < length) ThrowDestination(length, destination.Length);
        var session = new Session(BinaryPrimitives.ReadUInt16BigEndian(sealedValue[KeyIdOffset..]), BinaryPrimitives.ReadUInt128BigEndian(sealedValue[SaltOffset..]));
        var ephemeral = false;
        if (!_ciphers.TryGetValue(session, out var cipher))
        {
            if (!_keys.TryGetValue(session.KeyId, out var material)) ThrowUnknownKey(key, session.KeyId);
            cipher = Derive(material, sealedValue.Slice(SaltOffset, SaltSize));
            if (_ciphers.Count >= MaxCachedSessions)
            {
                ephemeral = true; // used once and wiped: a cached cipher is never disposed while another thread may use it
            }
            else if (!_ciphers.TryAdd(session, cipher))
            {
                cipher.Dispose();
                cipher = _ciphers[session];
            }
        }
        try
        {
            cipher.Decrypt(
                sealedValue.Slice(NonceOffset, Aes256Gcm.NonceSizeInBytes),
                sealedValue.Slice(HeaderSize, length),
                sealedValue[^Aes256Gcm.TagSizeInBytes..],
                destination[..length],
                key);
        }
        catch (AuthenticationTagMismatchException)
        {
            ThrowTampered(key, session.KeyId);
        }
        finally
        {
            if (ephemeral) cipher.Dispose();
        }
        return length;
    }

    /// <summary>Wipes every key and session key; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var c in _ciphers.Values) c.Dispose();
        _ciphers.Clear();
        foreach (var k in _keys.Values) CryptographicOperations.ZeroMemory(k);
    }

    /// <summary>The salt of this instance's sealing session (for tests).</summary>
    internal UInt128 SessionSalt => _sealing.Salt;

    /// <summary>Sessions whose ciphers are cached (for tests).</summary>
    internal int CachedSessions => _ciphers.Count;

    private static Aes256Gcm Derive(byte[] material, ReadOnlySpan<byte> salt)
    {
        Span<byte> sessionKey = stackalloc byte[Aes256Gcm.KeySizeInBytes];
        try
        {
            HKDF.DeriveKey(HashAlgorithmName.SHA256, material, sessionKey, salt, SessionInfo);
            return new Aes256Gcm(sessionKey);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(sessionKey);
        }
    }

    /// <summary>A sealing session: the key it derives from and its salt.</summary>
    private readonly record struct Session(ushort KeyId, UInt128 Salt);

    [DoesNotReturn]
    private static void ThrowDestination(int needed, int given, string paramName = "destination") =>
        throw new ArgumentException($"The destination holds {given} bytes; {needed} are needed.", paramName);

    [DoesNotReturn]
    private static void ThrowNotSealed(ReadOnlySpan<byte> key, ReadOnlySpan<byte> value)
    {
        var (reason, what) = value.Length >= 2 && value[0] == Magic && value[1] != Version
            ? (ValueProtectionError.UnsupportedVersion, $"is sealed with envelope version {value[1]}, which this client does not read (it reads {Version}); use a newer client")
            : (ValueProtectionError.NotSealed, $"is not a sealed value ({value.Length} bytes without the envelope): it was written without a value protector; rewrite it through a client with one");
        throw new CairnValueProtectionException(reason, key.ToArray(), null, $"the value of {CairnValueProtectionException.Name(key)} {what}");
    }

    [DoesNotReturn]
    private static void ThrowUnknownKey(ReadOnlySpan<byte> key, ushort keyId) =>
        throw new CairnValueProtectionException(ValueProtectionError.UnknownKey, key.ToArray(), keyId,
            $"the value of {CairnValueProtectionException.Name(key)} is sealed with value key {keyId}, which this keyring does not hold; add key {keyId} to the ValueProtector as an older key (or to --value-key-file as {keyId}=FILE)");

    [DoesNotReturn]
    private static void ThrowTampered(ReadOnlySpan<byte> key, ushort keyId) =>
        throw new CairnValueProtectionException(ValueProtectionError.AuthenticationFailed, key.ToArray(), keyId,
            $"the value of {CairnValueProtectionException.Name(key)} does not authenticate under value key {keyId}: it was altered or copied from another key, or the key given as id {keyId} is not the one it was sealed with");
}
