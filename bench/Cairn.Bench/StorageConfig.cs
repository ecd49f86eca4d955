using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Configs;

namespace Cairn.Bench;

/// <summary>Columns shared by the storage benchmarks: operations per second next to the mean (one op = one get, put or scan).</summary>
internal sealed class StorageConfig : ManualConfig
{
    public StorageConfig() => AddColumn(StatisticColumn.OperationsPerSecond);
}
