using System.Security.Cryptography;

namespace Cairn.Crypto;

/// <summary>
/// Where a master key comes from: a key file, an environment variable, or a key-management service. The master key
/// only wraps data keys; it never encrypts data itself, so rotating it rewraps a few bytes.
/// </summary>
public interface IKeyProvider
{
    /// <summary>A name for the key that is safe to print (never the key): used in error messages.</summary>
    string KeyId { get; }

    /// <summary>Writes the 32-byte master key into <paramref name="destination"/>.</summary>
    void GetKey(Span<byte> destination);
}

/// <summary>A master key held in memory (tests, or a key already fetched from a KMS).</summary>
public sealed class StaticKeyProvider : IKeyProvider
{
    private readonly byte[] _key;

    /// <summary>Wraps a 32-byte key; <paramref name="keyId"/> names it in messages.</summary>
    public StaticKeyProvider(ReadOnlySpan<byte> key, string keyId = "static key")
    {
        if (key.Length != Aes256Gcm.KeySizeInBytes) throw new ArgumentException($"A master key is {Aes256Gcm.KeySizeInBytes} bytes; this one is {key.Length}.", nameof(key));
        _key = key.ToArray();
        KeyId = keyId;
    }

    /// <summary>A new random key.</summary>
    public static StaticKeyProvider CreateRandom(string keyId = "random key") => new(RandomNumberGenerator.GetBytes(32), keyId);

    /// <inheritdoc/>
    public string KeyId { get; }

    /// <inheritdoc/>
    public void GetKey(Span<byte> destination) => _key.CopyTo(destination);
}

/// <summary>The master key in an environment variable, as 64 hex digits or base64 of 32 bytes.</summary>
public sealed class EnvironmentKeyProvider(string variable) : IKeyProvider
{
    /// <inheritdoc/>
    public string KeyId => $"environment variable {variable}";

    /// <inheritdoc/>
    public void GetKey(Span<byte> destination)
    {
        var text = Environment.GetEnvironmentVariable(variable)
            ?? throw new InvalidOperationException($"The master key variable {variable} is not set; set it to 64 hex digits (e.g. from `openssl rand -hex 32`).");
        if (!KeyText.TryParse(text, destination))
        {
            throw new FormatException($"The master key in {KeyId} is not 32 bytes as 64 hex digits or base64; make one with `openssl rand -hex 32`.");
        }
    }
}

/// <summary>The text form of a master key: 64 hex digits, or base64 of 32 bytes, with white space around it.</summary>
internal static class KeyText
{
    /// <summary>The longest key text accepted, white space included (a key file is one short line).</summary>
    public const int MaxLength = 256;

    /// <summary>Parses key text in UTF-8 (a key file's bytes); false when it is not a key. Leaves no copy of the key behind.</summary>
    public static bool TryParse(ReadOnlySpan<byte> utf8, Span<byte> destination)
    {
        if (utf8.Length > MaxLength) return false;
        Span<char> chars = stackalloc char[MaxLength];
        try
        {
            for (var i = 0; i < utf8.Length; i++)
            {
                if (utf8[i] >= 0x80) return false; // a key is ASCII
                chars[i] = (char)utf8[i];
            }
            return TryParse(chars[..utf8.Length], destination);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(System.Runtime.InteropServices.MemoryMarshal.AsBytes(chars));
        }
    }

    /// <summary>Parses key text; false when it is not 32 bytes as 64 hex digits or base64.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, Span<byte> destination)
    {
        if (destination.Length != 32) throw new ArgumentException("A master key is 32 bytes.", nameof(destination));
        text = text.Trim();
        if (text.Length == 64)
        {
            return Convert.FromHexString(text, destination, out _, out var written) == System.Buffers.OperationStatus.Done && written == 32;
        }
        return Convert.TryFromBase64Chars(text, destination, out var n) && n == 32;
    }
}

/// <summary>Seals a data key under a master key (AES-256-GCM, random nonce) and opens it again.</summary>
public static class KeyWrap
{
    /// <summary>Bytes of a wrapped 32-byte key: nonce, ciphertext, tag.</summary>
    public const int WrappedSize = Aes256Gcm.NonceSizeInBytes + 32 + Aes256Gcm.TagSizeInBytes;

    /// <summary>Wraps <paramref name="dataKey"/>; <paramref name="context"/> is authenticated (e.g. file id and key id), so a wrapped key moved elsewhere fails.</summary>
    public static void Wrap(IKeyProvider master, ReadOnlySpan<byte> dataKey, ReadOnlySpan<byte> context, Span<byte> wrapped)
    {
        Span<byte> mk = stackalloc byte[32];
        try
        {
            master.GetKey(mk);
            using var gcm = new Aes256Gcm(mk);
            var nonce = wrapped[..Aes256Gcm.NonceSizeInBytes];
            RandomNumberGenerator.Fill(nonce);
            gcm.Encrypt(nonce, dataKey, wrapped.Slice(Aes256Gcm.NonceSizeInBytes, 32), wrapped.Slice(Aes256Gcm.NonceSizeInBytes + 32, Aes256Gcm.TagSizeInBytes), context);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(mk);
        }
    }

    /// <summary>Opens a wrapped key; false when the master key is not the one it was wrapped with (or the bytes were changed).</summary>
    public static bool TryUnwrap(IKeyProvider master, ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> context, Span<byte> dataKey)
    {
        Span<byte> mk = stackalloc byte[32];
        try
        {
            master.GetKey(mk);
            using var gcm = new Aes256Gcm(mk);
            gcm.Decrypt(wrapped[..Aes256Gcm.NonceSizeInBytes], wrapped.Slice(Aes256Gcm.NonceSizeInBytes, 32), wrapped.Slice(Aes256Gcm.NonceSizeInBytes + 32, Aes256Gcm.TagSizeInBytes), dataKey, context);
            return true;
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
        finally
        {
            CryptographicOperations.ZeroMemory(mk);
        }
    }
}
