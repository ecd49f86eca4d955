using System.Diagnostics.CodeAnalysis;
using System.Runtime.Intrinsics.X86;
using System.Security.Cryptography;

using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Cairn.Crypto;

/// <summary>
/// AES-256 in Galois/Counter Mode (NIST SP 800-38D) with the method shapes of <see cref="AesGcm"/>,
/// so one can stand in for the other.
/// </summary>
/// <remarks>
/// <para>
/// On x86 with AES-NI and PCLMULQDQ the cipher runs on hardware intrinsics: eight counter blocks in
/// flight, and GHASH aggregated over eight blocks with one reduction per group (up to four blocks
/// per VPCLMULQDQ where the CPU has it). Without them it delegates to <see cref="AesGcm"/> and
/// produces the same bytes; nonces other than 12 bytes, which <see cref="AesGcm"/> refuses on
/// Linux, then run on the platform's AES block cipher with a portable GHASH.
/// <see cref="Encrypt"/> and <see cref="Decrypt"/> allocate nothing, except on that last path.
/// </para>
/// <para>
/// Nonces may be any length of at least one byte (other lengths than 12 derive the initial counter
/// with GHASH, SP 800-38D §7.1); 12 bytes is the recommended size and the fast one. A nonce must
/// never be used twice with the same key. Tags are 12 to 16 bytes; 16 is the recommended size.
/// </para>
/// <para>
/// <see cref="Encrypt"/> and <see cref="Decrypt"/> may run concurrently on one instance (unlike
/// <see cref="AesGcm"/>): the intrinsic path reads only state fixed at construction, and the
/// fallback serializes its calls. <see cref="Dispose"/> must not race with them.
/// </para>
/// </remarks>
public sealed partial class Aes256Gcm : IDisposable
{
    /// <summary>The key size AES-256 requires, in bytes.</summary>
    public const int KeySizeInBytes = 32;

    /// <summary>The recommended nonce size in bytes; the only size <see cref="AesGcm"/> accepts on every platform.</summary>
    public const int NonceSizeInBytes = 12;

    /// <summary>The largest and recommended tag size in bytes.</summary>
    public const int TagSizeInBytes = 16;

    /// <summary>The smallest tag size accepted, in bytes (as <see cref="AesGcm"/>).</summary>
    public const int MinTagSizeInBytes = 12;

    /// <summary>
    /// Whether this machine runs the cipher on AES-NI and PCLMULQDQ; when false every instance
    /// delegates to <see cref="AesGcm"/>.
    /// </summary>
    public static bool IsHardwareAccelerated =>
        X86Aes.IsSupported && Pclmulqdq.IsSupported && Ssse3.IsSupported;

    // Intrinsic path: the AES round keys and the powers of H (see Aes256Gcm.Aes.cs, Aes256Gcm.Ghash.cs).
    // Fallback path: the raw key and H (see Aes256Gcm.Fallback.cs).
    // Allocated on the pinned heap so the GC never leaves a stale copy behind a compaction; wiped on Dispose.
    private readonly byte[] _keyMaterial;

    // Fixed at construction: true runs the intrinsic path, false the AesGcm fallback.
    private readonly bool _useIntrinsics;

    private bool _disposed;

    /// <summary>Creates the cipher for a 32-byte key.</summary>
    /// <param name="key">The AES-256 key; exactly <see cref="KeySizeInBytes"/> bytes. It is copied.</param>
    /// <exception cref="ArgumentException"><paramref name="key"/> is not 32 bytes.</exception>
    /// <exception cref="PlatformNotSupportedException">
    /// The machine has neither AES-NI with PCLMULQDQ nor a platform <see cref="AesGcm"/>.
    /// </exception>
    public Aes256Gcm(ReadOnlySpan<byte> key)
        : this(key, forceFallback: false)
    {
    }

    /// <summary>Creates the cipher, optionally forcing the <see cref="AesGcm"/> fallback (for tests and benchmarks).</summary>
    internal Aes256Gcm(ReadOnlySpan<byte> key, bool forceFallback)
    {
        if (key.Length != KeySizeInBytes)
        {
            ThrowKeyLength(key.Length, nameof(key));
        }

        _useIntrinsics = IsHardwareAccelerated && !forceFallback;
        if (_useIntrinsics)
        {
            _keyMaterial = GC.AllocateArray<byte>(IntrinsicKeyMaterialSize, pinned: true);
            ExpandKey(key);
        }
        else
        {
            if (!AesGcm.IsSupported)
            {
                throw new PlatformNotSupportedException(
                    "AES-GCM needs either AES-NI with PCLMULQDQ or a platform AesGcm; this machine has neither.");
            }

            _keyMaterial = GC.AllocateArray<byte>(FallbackKeyMaterialSize, pinned: true);
            InitializeFallback(key);
        }
    }

    /// <summary>Whether this instance runs on hardware intrinsics rather than the <see cref="AesGcm"/> fallback.</summary>
    internal bool UsesIntrinsics => _useIntrinsics;

    /// <summary>Whether every byte of the key schedule is zero (true after <see cref="Dispose"/>); for tests.</summary>
    internal bool IsKeyMaterialWiped => !_keyMaterial.AsSpan().ContainsAnyExcept((byte)0);

    /// <summary>
    /// Encrypts <paramref name="plaintext"/> into <paramref name="ciphertext"/> and writes the
    /// authentication tag over both it and <paramref name="associatedData"/>.
    /// </summary>
    /// <param name="nonce">The nonce, at least one byte; 12 bytes recommended. Never reuse one with the same key.</param>
    /// <param name="plaintext">The bytes to encrypt.</param>
    /// <param name="ciphertext">
    /// Receives the encrypted bytes; the same length as <paramref name="plaintext"/>. It may be the
    /// same buffer as <paramref name="plaintext"/> (in place) but must not partly overlap it.
    /// </param>
    /// <param name="tag">Receives the tag; 12 to 16 bytes, and the tag is truncated to its length.</param>
    /// <param name="associatedData">Bytes authenticated but not encrypted.</param>
    /// <exception cref="ArgumentException">A buffer has the wrong length, or the buffers partly overlap.</exception>
    /// <exception cref="ObjectDisposedException">The instance was disposed.</exception>
    public void Encrypt(
        ReadOnlySpan<byte> nonce,
        ReadOnlySpan<byte> plaintext,
        Span<byte> ciphertext,
        Span<byte> tag,
        ReadOnlySpan<byte> associatedData = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckArguments(nonce, plaintext, ciphertext, tag);

        if (_useIntrinsics)
        {
            EncryptIntrinsic(nonce, plaintext, ciphertext, tag, associatedData);
        }
        else
        {
            EncryptFallback(nonce, plaintext, ciphertext, tag, associatedData);
        }
    }

    /// <summary>
    /// Checks the tag over <paramref name="ciphertext"/> and <paramref name="associatedData"/> and
    /// decrypts <paramref name="ciphertext"/> into <paramref name="plaintext"/>.
    /// </summary>
    /// <param name="nonce">The nonce the data was encrypted with.</param>
    /// <param name="ciphertext">The bytes to decrypt.</param>
    /// <param name="tag">The tag to check; 12 to 16 bytes.</param>
    /// <param name="plaintext">
    /// Receives the decrypted bytes; the same length as <paramref name="ciphertext"/>. It may be the
    /// same buffer as <paramref name="ciphertext"/> (in place) but must not partly overlap it. On a
    /// tag mismatch it is filled with zeros.
    /// </param>
    /// <param name="associatedData">The associated data the tag was computed over.</param>
    /// <exception cref="AuthenticationTagMismatchException">
    /// The tag does not match: the data, the associated data, the nonce or the key is wrong.
    /// </exception>
    /// <exception cref="ArgumentException">A buffer has the wrong length, or the buffers partly overlap.</exception>
    /// <exception cref="ObjectDisposedException">The instance was disposed.</exception>
    public void Decrypt(
        ReadOnlySpan<byte> nonce,
        ReadOnlySpan<byte> ciphertext,
        ReadOnlySpan<byte> tag,
        Span<byte> plaintext,
        ReadOnlySpan<byte> associatedData = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        CheckArguments(nonce, plaintext, ciphertext, tag);

        bool authentic = _useIntrinsics
            ? DecryptIntrinsic(nonce, ciphertext, tag, plaintext, associatedData)
            : DecryptFallback(nonce, ciphertext, tag, plaintext, associatedData);

        if (!authentic)
        {
            // The plaintext was written before the tag could be checked (one pass); none of it may leak.
            CryptographicOperations.ZeroMemory(plaintext);
            ThrowTagMismatch();
        }
    }

    /// <summary>Wipes the key schedule; later calls throw <see cref="ObjectDisposedException"/>.</summary>
    public void Dispose()
    {
        if (_disposed)
        {
            return;
        }

        _disposed = true;
        CryptographicOperations.ZeroMemory(_keyMaterial);
        DisposeFallback();
    }

    private static void CheckArguments(
        ReadOnlySpan<byte> nonce, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> ciphertext, ReadOnlySpan<byte> tag)
    {
        if (plaintext.Length != ciphertext.Length)
        {
            ThrowLengthMismatch(plaintext.Length, ciphertext.Length, nameof(ciphertext));
        }

        if (nonce.IsEmpty)
        {
            ThrowEmptyNonce(nameof(nonce));
        }

        if ((uint)(tag.Length - MinTagSizeInBytes) > TagSizeInBytes - MinTagSizeInBytes)
        {
            ThrowTagLength(tag.Length, nameof(tag));
        }

        // Eight blocks are loaded before any is stored, so only an exact alias is safe.
        if (plaintext.Overlaps(ciphertext, out int elementOffset) && elementOffset != 0)
        {
            ThrowPartialOverlap(elementOffset, nameof(ciphertext));
        }
    }

    [DoesNotReturn]
    private static void ThrowKeyLength(int length, string paramName) =>
        throw new ArgumentException(
            $"AES-256 needs a {KeySizeInBytes}-byte key; this one is {length} bytes.", paramName);

    [DoesNotReturn]
    private static void ThrowLengthMismatch(int plaintextLength, int ciphertextLength, string paramName) =>
        throw new ArgumentException(
            $"Plaintext and ciphertext must be the same length; plaintext is {plaintextLength} bytes, ciphertext {ciphertextLength}.",
            paramName);

    [DoesNotReturn]
    private static void ThrowEmptyNonce(string paramName) =>
        throw new ArgumentException(
            $"The nonce is empty; it needs at least one byte ({NonceSizeInBytes} recommended).", paramName);

    [DoesNotReturn]
    private static void ThrowTagLength(int length, string paramName) =>
        throw new ArgumentException(
            $"The tag must be {MinTagSizeInBytes} to {TagSizeInBytes} bytes; this one is {length} bytes.", paramName);

    [DoesNotReturn]
    private static void ThrowPartialOverlap(int elementOffset, string paramName) =>
        throw new ArgumentException(
            $"Plaintext and ciphertext overlap at an offset of {elementOffset} bytes; use the same buffer for in-place work, or separate ones.",
            paramName);

    [DoesNotReturn]
    private static void ThrowTagMismatch() =>
        throw new AuthenticationTagMismatchException();
}
