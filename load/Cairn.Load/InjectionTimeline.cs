namespace Cairn.Load;

/// <summary>
/// When each request of an open-loop phase is due. The rate moves linearly from <c>from</c> to <c>to</c> requests per
/// second over the phase, so the number of requests due by time t is N(t) = from·t + (to − from)·t²/(2T); request k
/// (0-based) is due when N(t) reaches k + 1. Times are seconds from the phase's start; the schedule does not depend on
/// how fast the target answers — that is the point of an open loop.
/// </summary>
internal sealed class InjectionTimeline
{
    private readonly double _from;
    private readonly double _to;
    private readonly double _seconds;

    public InjectionTimeline(double from, double to, TimeSpan during)
    {
        if (from < 0 || to < 0 || (from == 0 && to == 0)) throw new ArgumentOutOfRangeException(nameof(to), "an injection needs a positive rate");
        _from = from;
        _to = to;
        _seconds = during.TotalSeconds;
        Count = (long)Math.Floor((from + to) / 2 * _seconds + 1e-9);
    }

    /// <summary>Requests in the phase.</summary>
    public long Count { get; }

    /// <summary>Seconds from the phase's start at which request <paramref name="k"/> is due.</summary>
    public double DueSeconds(long k)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        double n = k + 1;
        if (_to == _from) return n / _from;
        // Solve a·t² + from·t − n = 0 for the positive root, a = (to − from) / 2T; written to stay exact when from = 0.
        var a = (_to - _from) / (2 * _seconds);
        var t = 2 * n / (_from + Math.Sqrt(Math.Max(0, _from * _from + 4 * a * n)));
        return Math.Min(t, _seconds);
    }
}
