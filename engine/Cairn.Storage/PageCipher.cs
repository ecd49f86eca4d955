using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using Cairn.Crypto;

namespace Cairn.Storage;

/// <summary>
/// Seals pages with AES-256-GCM (docs/encryption.md). Trailer of every page or overflow run:
/// <code>[0..2) data key id  [2..12) session salt  [12..16) counter  [16..32) GCM tag</code>
/// Each writing session (each open of the file) draws a fresh random salt and encrypts under
/// HKDF-SHA256(data key, salt); its nonce is a counter that never repeats within the session. A (key, nonce) pair
/// therefore never repeats: not after a crash (the next open draws a new salt), not after restoring a backup or
/// copying the file (likewise). Associated data: file id, page number and the trailer's first 16 bytes, so a page
/// moved, swapped or copied from another file fails.
/// </summary>
internal sealed class PageCipher : IDisposable
{
    public const int SaltSize = 10;
    private static ReadOnlySpan<byte> Info => "cairn page key v1"u8;

    private readonly byte[] _dataKey = GC.AllocateArray<byte>(32, pinned: true);
    private readonly byte[] _fileId = new byte[16];
    private readonly ushort _keyId;
    private readonly Lock _keysLock = new();
    private readonly Dictionary<Salt, Aes256Gcm> _keys = [];

    // The writer's session: touched only by the one writer.
    private Salt _salt;
    private Aes256Gcm? _session;
    private uint _counter;

    public PageCipher(ReadOnlySpan<byte> dataKey, ushort keyId, Guid fileId)
    {
        dataKey.CopyTo(_dataKey);
        _keyId = keyId;
        fileId.TryWriteBytes(_fileId);
    }

    [StructLayout(LayoutKind.Sequential)]
    private readonly record struct Salt(ulong Low, ushort High)
    {
        public static Salt Read(ReadOnlySpan<byte> b) => new(BinaryPrimitives.ReadUInt64LittleEndian(b), BinaryPrimitives.ReadUInt16LittleEndian(b[8..]));

        public void Write(Span<byte> b)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(b, Low);
            BinaryPrimitives.WriteUInt16LittleEndian(b[8..], High);
        }
    }

    /// <summary>Encrypts a page or run in place and fills its trailer. Writer only.</summary>
    public void Seal(Span<byte> run, ulong pgno)
    {
        if (_session is null || _counter == uint.MaxValue) NewSession();
        var trailer = run[^Node.TrailerSize..];
        BinaryPrimitives.WriteUInt16LittleEndian(trailer, _keyId);
        _salt.Write(trailer[2..]);
        BinaryPrimitives.WriteUInt32LittleEndian(trailer[12..], _counter);
        Span<byte> nonce = stackalloc byte[12];
        Span<byte> ad = stackalloc byte[40];
        Build(trailer, pgno, nonce, ad);
        var body = run[..^Node.TrailerSize];
        _session!.Encrypt(nonce, body, body, trailer[16..], ad);
        _counter++;
    }

    /// <summary>Decrypts a sealed page or run into <paramref name="plain"/>; false when the tag does not verify.</summary>
    public bool TryOpen(ReadOnlySpan<byte> sealedRun, Span<byte> plain, ulong pgno)
    {
        var trailer = sealedRun[^Node.TrailerSize..];
        if (BinaryPrimitives.ReadUInt16LittleEndian(trailer) != _keyId) return false;
        var gcm = KeyFor(Salt.Read(trailer[2..]));
        Span<byte> nonce = stackalloc byte[12];
        Span<byte> ad = stackalloc byte[40];
        Build(trailer, pgno, nonce, ad);
        try
        {
            gcm.Decrypt(nonce, sealedRun[..^Node.TrailerSize], trailer[16..], plain[..^Node.TrailerSize], ad);
        }
        catch (AuthenticationTagMismatchException)
        {
            return false;
        }
        trailer.CopyTo(plain[^Node.TrailerSize..]);
        return true;
    }

    private void Build(ReadOnlySpan<byte> trailer, ulong pgno, Span<byte> nonce, Span<byte> ad)
    {
        nonce.Clear();
        trailer.Slice(12, 4).CopyTo(nonce);
        _fileId.CopyTo(ad);
        BinaryPrimitives.WriteUInt64LittleEndian(ad[16..], pgno);
        trailer[..16].CopyTo(ad[24..]);
    }

    private void NewSession()
    {
        Span<byte> s = stackalloc byte[SaltSize];
        RandomNumberGenerator.Fill(s);
        _salt = Salt.Read(s);
        _counter = 0;
        _session = KeyFor(_salt);
    }

    private Aes256Gcm KeyFor(Salt salt)
    {
        lock (_keysLock)
        {
            if (_keys.TryGetValue(salt, out var gcm)) return gcm;
            Span<byte> saltBytes = stackalloc byte[SaltSize];
            salt.Write(saltBytes);
            Span<byte> key = stackalloc byte[32];
            HKDF.DeriveKey(HashAlgorithmName.SHA256, _dataKey, key, saltBytes, Info);
            gcm = new Aes256Gcm(key);
            CryptographicOperations.ZeroMemory(key);
            // One entry per writing session whose pages survive. Past 4096 the table starts again (older sessions'
            // keys are derived again on demand); dropped instances are not disposed, as a reader may be mid-call.
            if (_keys.Count >= 4096)
            {
                _keys.Clear();
                if (_session is not null) _keys[_salt] = _session;
            }
            _keys[salt] = gcm;
            return gcm;
        }
    }

    public ReadOnlySpan<byte> DataKey => _dataKey;

    public void Dispose()
    {
        lock (_keysLock)
        {
            foreach (var k in _keys.Values) k.Dispose();
            _keys.Clear();
        }
        CryptographicOperations.ZeroMemory(_dataKey);
    }
}
