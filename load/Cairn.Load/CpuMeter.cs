using System.Diagnostics;

namespace Cairn.Load;

/// <summary>The load generator's own CPU use over an interval, as a percentage of one core (200 % = both cores of a 2-core machine).</summary>
internal sealed class CpuMeter
{
    private readonly TimeSpan _cpuAtStart;
    private readonly long _wallAtStart;

    public CpuMeter()
    {
        _cpuAtStart = Process.GetCurrentProcess().TotalProcessorTime;
        _wallAtStart = Stopwatch.GetTimestamp();
    }

    public double PercentOfOneCore()
    {
        var cpu = Process.GetCurrentProcess().TotalProcessorTime - _cpuAtStart;
        var wall = Stopwatch.GetElapsedTime(_wallAtStart);
        return wall <= TimeSpan.Zero ? 0 : 100 * cpu.TotalSeconds / wall.TotalSeconds;
    }
}
