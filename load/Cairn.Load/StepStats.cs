using System.Collections.Concurrent;
using System.Diagnostics;
using HdrHistogram;

namespace Cairn.Load;

/// <summary>One point of a step's latency over time: what happened in the interval that ended at <see cref="Seconds"/>.</summary>
internal readonly record struct TimelinePoint(double Seconds, long Ok, long Errors, double P50Ms, double P99Ms, double MaxMs);

/// <summary>
/// The measurements of one step (NBomber's step stats): successful latencies in an HdrHistogram (1 µs to an hour, three
/// significant digits), failures counted by kind, and a timeline of one point per sampling interval. Recording is
/// thread-safe and lock-free (an HdrHistogram <see cref="Recorder"/> over a concurrent histogram); <see cref="Sample"/>
/// swaps the interval histogram out and folds it into the total, and is called by one thread at a time.
/// </summary>
internal sealed class StepStats
{
    internal const long HighestMicroseconds = 3_600_000_000;

    private static readonly double MicrosecondsPerTick = 1_000_000.0 / Stopwatch.Frequency;

    private readonly Recorder _recorder = new(1, HighestMicroseconds, 3, (id, low, high, digits) => new LongConcurrentHistogram(id, low, high, digits));
    private readonly Lock _lock = new();
    private readonly LongHistogram _total = new(HighestMicroseconds, 3);   // guarded by _lock
    private readonly List<TimelinePoint> _timeline = [];                    // guarded by _lock
    private readonly ConcurrentDictionary<string, long> _errorsByKind = new(StringComparer.Ordinal);
    private HistogramBase? _spare;                                          // guarded by _lock; recycled interval histogram
    private long _ok;
    private long _errors;
    private long _okAtLastSample;                                           // guarded by _lock
    private long _errorsAtLastSample;                                       // guarded by _lock

    public StepStats(string name)
    {
        Name = name;
    }

    public string Name { get; }

    public long Ok => Interlocked.Read(ref _ok);

    public long Errors => Interlocked.Read(ref _errors);

    /// <summary>A success that took <paramref name="elapsedTicks"/> Stopwatch ticks.</summary>
    public void RecordOk(long elapsedTicks) => RecordOkMicroseconds((long)(elapsedTicks * MicrosecondsPerTick));

    /// <summary>A success that took <paramref name="microseconds"/> (clamped to 1 µs … an hour).</summary>
    public void RecordOkMicroseconds(long microseconds)
    {
        _recorder.RecordValue(Math.Clamp(microseconds, 1, HighestMicroseconds));
        Interlocked.Increment(ref _ok);
    }

    /// <summary>Failures of one kind.</summary>
    public void RecordError(string kind, long count = 1)
    {
        ArgumentNullException.ThrowIfNull(kind);
        if (count <= 0) return;
        _errorsByKind.AddOrUpdate(kind, count, (_, n) => n + count);
        Interlocked.Add(ref _errors, count);
    }

    /// <summary>Records what <paramref name="response"/> says, timed from <paramref name="startTimestamp"/> to <paramref name="endTimestamp"/>.</summary>
    public void Record(Response response, long startTimestamp, long endTimestamp)
    {
        if (response.IsOk) RecordOk(endTimestamp - startTimestamp);
        else RecordError(response.ErrorKind!);
    }

    /// <summary>
    /// Folds what was recorded since the last sample into the total and appends a timeline point (an empty interval
    /// only when <paramref name="keepEmpty"/>, so the final settling sample adds nothing when nothing came).
    /// </summary>
    public TimelinePoint Sample(double atSeconds, bool keepEmpty = true)
    {
        lock (_lock)
        {
            var interval = _recorder.GetIntervalHistogram(_spare);
            _total.Add(interval);
            var ok = Ok;
            var errors = Errors;
            var point = new TimelinePoint(atSeconds, ok - _okAtLastSample, errors - _errorsAtLastSample,
                Ms(interval.TotalCount == 0 ? 0 : interval.GetValueAtPercentile(50)),
                Ms(interval.TotalCount == 0 ? 0 : interval.GetValueAtPercentile(99)),
                Ms(interval.TotalCount == 0 ? 0 : interval.GetMaxValue()));
            _okAtLastSample = ok;
            _errorsAtLastSample = errors;
            if (keepEmpty || point.Ok + point.Errors > 0) _timeline.Add(point);
            _spare = interval;
            return point;
        }
    }

    /// <summary>Forgets everything (after a warm-up).</summary>
    public void Reset()
    {
        lock (_lock)
        {
            _recorder.Reset();
            _total.Reset();
            _timeline.Clear();
            _errorsByKind.Clear();
            Interlocked.Exchange(ref _ok, 0);
            Interlocked.Exchange(ref _errors, 0);
            _okAtLastSample = 0;
            _errorsAtLastSample = 0;
        }
    }

    /// <summary>The latency at <paramref name="percentile"/> (0–100) of everything sampled so far, in milliseconds.</summary>
    public double PercentileMs(double percentile)
    {
        lock (_lock) return _total.TotalCount == 0 ? 0 : Ms(_total.GetValueAtPercentile(percentile));
    }

    /// <summary>How many successes sampled so far took at least <paramref name="ms"/> milliseconds (to the histogram's precision).</summary>
    public long CountAtOrAboveMs(double ms)
    {
        var threshold = (long)(ms * 1000);
        lock (_lock) return _total.RecordedValues().Where(v => v.ValueIteratedTo >= threshold).Sum(v => v.CountAddedInThisIterationStep);
    }

    /// <summary>The report of this step over <paramref name="seconds"/> of measurement (call after a final <see cref="Sample"/>).</summary>
    public StepReport ToReport(double seconds)
    {
        lock (_lock)
        {
            var h = _total;
            var any = h.TotalCount > 0;
            return new StepReport(Name, Ok, Errors, seconds > 0 ? Ok / seconds : 0,
                any ? Ms(h.GetValueAtPercentile(50)) : 0,
                any ? Ms(h.GetValueAtPercentile(90)) : 0,
                any ? Ms(h.GetValueAtPercentile(99)) : 0,
                any ? Ms(h.GetValueAtPercentile(99.9)) : 0,
                any ? Ms(h.GetMaxValue()) : 0,
                any ? h.GetMean() / 1000 : 0,
                _errorsByKind.OrderByDescending(e => e.Value).ThenBy(e => e.Key, StringComparer.Ordinal).Select(e => (e.Key, e.Value)).ToList(),
                [.. _timeline]);
        }
    }

    private static double Ms(long microseconds) => microseconds / 1000.0;
}
