using System.Security.Cryptography;
using System.Text;

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
        KeyText.Parse(text, destination, KeyId);
    }
}

/// <summary>
/// The master key in a file of its own (64 hex digits). <see cref="OpenOrCreate"/> makes a new random key file with
/// mode 0600 when there is none. Keep it away from the data: a key next to the data it protects protects nothing.
/// </summary>
public sealed class KeyFileProvider : IKeyProvider
{
    private KeyFileProvider(string path) => Path = System.IO.Path.GetFullPath(path);

    /// <summary>The key file.</summary>
    public string Path { get; }

    /// <inheritdoc/>
    public string KeyId => $"key file {Path}";

    /// <summary>Uses the key file at <paramref name="path"/>, which must exist.</summary>
    public static KeyFileProvider Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"No key file at {path}; create one with KeyFileProvider.OpenOrCreate or `openssl rand -hex 32 > {path}; chmod 600 {path}`.", path);
        return new KeyFileProvider(path);
    }

    /// <summary>Uses the key file at <paramref name="path"/>, creating it with a new random key (mode 0600) when absent.</summary>
    public static KeyFileProvider OpenOrCreate(string path)
    {
        if (!File.Exists(path))
        {
            var dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
            if (dir is not null) Directory.CreateDirectory(dir);
            var key = RandomNumberGenerator.GetBytes(32);
            try
            {
                var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
                if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
                using var fs = new FileStream(path, options);
                fs.Write(Encoding.ASCII.GetBytes(Convert.ToHexStringLower(key) + "\n"));
                fs.Flush(flushToDisk: true);
            }
            catch (IOException) when (File.Exists(path))
            {
                // Created by someone else meanwhile: use theirs.
            }
            finally
            {
                CryptographicOperations.ZeroMemory(key);
            }
        }
        return new KeyFileProvider(path);
    }

    /// <summary>True when the key file lies inside <paramref name="directory"/> (worth a warning: back-ups of the data then carry the key).</summary>
    public bool IsInside(string directory)
    {
        var dir = System.IO.Path.GetFullPath(directory).TrimEnd(System.IO.Path.DirectorySeparatorChar) + System.IO.Path.DirectorySeparatorChar;
        return Path.StartsWith(dir, StringComparison.Ordinal);
    }

    /// <inheritdoc/>
    public void GetKey(Span<byte> destination) => KeyText.Parse(File.ReadAllText(Path), destination, KeyId);
}

internal static class KeyText
{
    public static void Parse(string text, Span<byte> destination, string keyId)
    {
        text = text.Trim();
        if (destination.Length != 32) throw new ArgumentException("A master key is 32 bytes.", nameof(destination));
        try
        {
            if (text.Length == 64)
            {
                Convert.FromHexString(text, destination, out _, out var written);
                if (written == 32) return;
            }
            else if (Convert.TryFromBase64String(text, destination, out var n) && n == 32)
            {
                return;
            }
        }
        catch (FormatException)
        {
        }
        throw new FormatException($"The master key in {keyId} is not 32 bytes as 64 hex digits or base64; make one with `openssl rand -hex 32`.");
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
