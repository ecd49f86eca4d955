using System.Buffers.Binary;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Configs;
using Cairn.Client;
using Cairn.Crypto;

namespace Cairn.Bench;

/// <summary>
/// Client-side value protection of one 256-byte value: <see cref="ValueProtector"/> (Cairn's <see cref="Aes256Gcm"/>)
/// against the same envelope sealed and opened with .NET's <see cref="AesGcm"/> (the baseline of each category): the
/// same session key, counter nonce, key name as associated data and a new result array per call.
/// Run: <c>dotnet run -c Release --project bench/Cairn.Bench -- --filter '*ValueProtector*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
public class ValueProtectorBenchmarks
{
    private const int Size = 256;
    private static readonly byte[] Name = "users/42/email"u8.ToArray();
    private readonly byte[] _key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private readonly byte[] _plaintext = new byte[Size];
    private ValueProtector _cairn = null!;
    private AesGcm _platform = null!;
    private readonly byte[] _salt = new byte[16];
    private long _counter;
    private byte[] _sealedByCairn = [];
    private byte[] _sealedByPlatform = [];

    [GlobalSetup]
    public void Setup()
    {
        new Random(42).NextBytes(_plaintext);
        _cairn = new ValueProtector(new ValueKey(1, new StaticKeyProvider(_key)));
        RandomNumberGenerator.Fill(_salt);
        _platform = new AesGcm(HKDF.DeriveKey(HashAlgorithmName.SHA256, _key, 32, _salt, "cairn value key v1"u8.ToArray()), 16);
        _sealedByCairn = _cairn.Seal(Name, _plaintext);
        _sealedByPlatform = AesGcm_Seal();
        if (!AesGcm_Open().AsSpan().SequenceEqual(_plaintext) || !_cairn.Open(Name, _sealedByCairn).AsSpan().SequenceEqual(_plaintext))
        {
            throw new InvalidOperationException("A sealed value did not open to its plaintext.");
        }
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _cairn.Dispose();
        _platform.Dispose();
    }

    [Benchmark(Baseline = true), BenchmarkCategory("Seal")]
    public byte[] AesGcm_Seal()
    {
        var envelope = new byte[ValueProtector.SealedLength(Size)];
        envelope[0] = ValueProtector.Magic;
        envelope[1] = ValueProtector.Version;
        BinaryPrimitives.WriteUInt16BigEndian(envelope.AsSpan(2), 1);
        _salt.CopyTo(envelope, 4);
        var nonce = envelope.AsSpan(20, 12);
        BinaryPrimitives.WriteInt64BigEndian(nonce[4..], ++_counter);
        _platform.Encrypt(nonce, _plaintext, envelope.AsSpan(ValueProtector.HeaderSize, Size), envelope.AsSpan(ValueProtector.HeaderSize + Size), Name);
        return envelope;
    }

    [Benchmark, BenchmarkCategory("Seal")]
    public byte[] ValueProtector_Seal() => _cairn.Seal(Name, _plaintext);

    [Benchmark(Baseline = true), BenchmarkCategory("Open")]
    public byte[] AesGcm_Open()
    {
        var e = _sealedByPlatform;
        if (e[0] != ValueProtector.Magic || e[1] != ValueProtector.Version) throw new InvalidOperationException("not sealed");
        var plaintext = new byte[e.Length - ValueProtector.Overhead];
        _platform.Decrypt(e.AsSpan(20, 12), e.AsSpan(ValueProtector.HeaderSize, plaintext.Length), e.AsSpan(e.Length - 16), plaintext, Name);
        return plaintext;
    }

    [Benchmark, BenchmarkCategory("Open")]
    public byte[] ValueProtector_Open() => _cairn.Open(Name, _sealedByCairn);
}
