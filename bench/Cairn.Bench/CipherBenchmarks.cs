using System.Globalization;
using System.Security.Cryptography;
using BenchmarkDotNet.Attributes;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Reports;
using BenchmarkDotNet.Running;
using Cairn.Crypto;

namespace Cairn.Bench;

/// <summary>
/// Page cipher throughput: Cairn's <see cref="Aes256Gcm"/> against the platform <see cref="AesGcm"/>
/// (the baseline of each category), 12-byte nonce, 16-byte tag and 16 bytes of associated data.
/// Run: <c>dotnet run -c Release --project bench/Cairn.Bench -- --filter '*Cipher*' --job short</c>.
/// </summary>
[MemoryDiagnoser]
[CategoriesColumn]
[GroupBenchmarksBy(BenchmarkLogicalGroupRule.ByCategory)]
[Config(typeof(ThroughputConfig))]
public class CipherBenchmarks
{
    private readonly byte[] _key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private readonly byte[] _nonce = new byte[12];
    private readonly byte[] _tag = new byte[16];
    private readonly byte[] _associatedData = new byte[16];
    private byte[] _plaintext = [];
    private byte[] _ciphertext = [];
    private byte[] _output = [];
    private AesGcm _platform = null!;
    private Aes256Gcm _cairn = null!;

    /// <summary>Message size in bytes; the throughput column divides it by the mean time.</summary>
    [Params(64, 4096, 65536)]
    public int Size { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _plaintext = new byte[Size];
        new Random(42).NextBytes(_plaintext);
        _ciphertext = new byte[Size];
        _output = new byte[Size];
        _platform = new AesGcm(_key, 16);
        _cairn = new Aes256Gcm(_key);
        if (!_cairn.UsesIntrinsics)
        {
            throw new InvalidOperationException("Aes256Gcm is on its AesGcm fallback here; the comparison would be meaningless.");
        }

        // Both decrypt benchmarks authenticate the same ciphertext.
        _cairn.Encrypt(_nonce, _plaintext, _ciphertext, _tag, _associatedData);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _platform.Dispose();
        _cairn.Dispose();
    }

    [Benchmark(Baseline = true), BenchmarkCategory("Encrypt")]
    public void AesGcm_Encrypt() => _platform.Encrypt(_nonce, _plaintext, _output, _tag, _associatedData);

    [Benchmark, BenchmarkCategory("Encrypt")]
    public void Aes256Gcm_Encrypt() => _cairn.Encrypt(_nonce, _plaintext, _output, _tag, _associatedData);

    [Benchmark(Baseline = true), BenchmarkCategory("Decrypt")]
    public void AesGcm_Decrypt() => _platform.Decrypt(_nonce, _ciphertext, _tag, _output, _associatedData);

    [Benchmark, BenchmarkCategory("Decrypt")]
    public void Aes256Gcm_Decrypt() => _cairn.Decrypt(_nonce, _ciphertext, _tag, _output, _associatedData);

    private sealed class ThroughputConfig : ManualConfig
    {
        public ThroughputConfig() => AddColumn(new ThroughputColumn());
    }

    /// <summary>GB/s (10^9 bytes per second) from the Size parameter and the mean time.</summary>
    private sealed class ThroughputColumn : IColumn
    {
        public string Id => nameof(ThroughputColumn);

        public string ColumnName => "GB/s";

        public bool AlwaysShow => true;

        public ColumnCategory Category => ColumnCategory.Custom;

        public int PriorityInCategory => 0;

        public bool IsNumeric => true;

        public UnitType UnitType => UnitType.Dimensionless;

        public string Legend => "Message bytes per nanosecond of mean time (10^9 bytes/s)";

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase) =>
            GetValue(summary, benchmarkCase, SummaryStyle.Default);

        public string GetValue(Summary summary, BenchmarkCase benchmarkCase, SummaryStyle style)
        {
            double? meanNanoseconds = summary[benchmarkCase]?.ResultStatistics?.Mean;
            object? size = benchmarkCase.Parameters[nameof(Size)];
            if (meanNanoseconds is not > 0 || size is not int bytes)
            {
                return "NA";
            }

            return (bytes / meanNanoseconds.Value).ToString("0.00", CultureInfo.InvariantCulture);
        }

        public bool IsDefault(Summary summary, BenchmarkCase benchmarkCase) => false;

        public bool IsAvailable(Summary summary) => true;
    }
}
