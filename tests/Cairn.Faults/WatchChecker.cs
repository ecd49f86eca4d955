namespace Cairn.Faults;

/// <summary>What went wrong first in a watcher's events.</summary>
public enum WatchDiscrepancyKind
{
    /// <summary>A committed write on the watched range was never delivered.</summary>
    Gap,

    /// <summary>An event was delivered twice.</summary>
    Duplicate,

    /// <summary>An event was delivered after one of a later revision.</summary>
    OutOfOrder,

    /// <summary>An event matches no committed write on the watched range from the start revision.</summary>
    Unexpected,

    /// <summary>An event names a committed write but says something else (type or value).</summary>
    Mismatch,
}

/// <summary>The first discrepancy in a watcher's events.</summary>
/// <param name="Kind">What kind.</param>
/// <param name="EventIndex">The index of the offending event; the number of events when the watcher stopped short.</param>
/// <param name="Event">The offending event, if there is one.</param>
/// <param name="Expected">The committed write the watcher owed at that point, if there is one.</param>
/// <param name="Message">A sentence for people.</param>
public sealed record WatchDiscrepancy(WatchDiscrepancyKind Kind, int EventIndex, Change? Event, Change? Expected, string Message)
{
    /// <summary>The kind and the message.</summary>
    public override string ToString() => $"{Kind}: {Message}";
}

/// <summary>The outcome of <see cref="WatchChecker.Check"/>.</summary>
/// <param name="Expected">Committed writes the watch covers from its start revision.</param>
/// <param name="Matched">Events that matched one of them, up to the first discrepancy.</param>
/// <param name="First">The first discrepancy; null when the events are exactly right.</param>
public sealed record WatchCheckResult(int Expected, int Matched, WatchDiscrepancy? First)
{
    /// <summary>Whether the events are exactly the committed writes owed, in revision order.</summary>
    public bool Ok => First is null;

    /// <summary>"ok: n of n events" or the first discrepancy.</summary>
    public override string ToString() => First is null ? $"ok: {Matched} of {Expected} committed writes delivered in order" : First.ToString();
}

/// <summary>
/// Checks one watcher against the history: its events must be exactly the committed writes on its range from its start
/// revision, in revision order (any order among keys changed at one revision), none missing, none twice, each as
/// committed. Reports the first discrepancy.
/// </summary>
public static class WatchChecker
{
    /// <summary>
    /// Checks <paramref name="events"/> against <paramref name="committed"/> (every committed write, any order, any key).
    /// The watcher owes every covered write at or below <paramref name="syncedThrough"/> (null: every covered write);
    /// events after that may stop early but must still be right.
    /// </summary>
    public static WatchCheckResult Check(IEnumerable<Change> committed, WatchRange range, long startRevision,
        IReadOnlyList<Change> events, long? syncedThrough = null)
    {
        ArgumentNullException.ThrowIfNull(committed);
        ArgumentNullException.ThrowIfNull(range);
        ArgumentNullException.ThrowIfNull(events);
        var all = new Dictionary<(long, string), Change>();
        foreach (var c in committed)
            if (!all.TryAdd((c.Revision, c.Key), c))
                throw new ArgumentException($"two committed writes to {c.Key} at revision {c.Revision}", nameof(committed));

        var owed = all.Values.Where(c => c.Revision >= startRevision && range.Contains(c.Key)).OrderBy(c => c.Revision).ToList();
        var index = new Dictionary<(long, string), int>();
        for (var k = 0; k < owed.Count; k++) index[(owed[k].Revision, owed[k].Key)] = k;
        var delivered = new bool[owed.Count];
        var firstSeen = new Dictionary<(long, string), int>();
        var next = 0; // first owed write not yet delivered
        var matched = 0;
        var lastRevision = long.MinValue;

        WatchCheckResult Fail(WatchDiscrepancyKind kind, int at, Change? e, Change? expected, string message) =>
            new(owed.Count, matched, new WatchDiscrepancy(kind, at, e, expected, message));

        for (var i = 0; i < events.Count; i++)
        {
            var e = events[i];
            var id = (e.Revision, e.Key);
            if (!firstSeen.TryAdd(id, i))
                return Fail(WatchDiscrepancyKind.Duplicate, i, e, null, $"event {i} ({e}) repeats event {firstSeen[id]}");
            if (e.Revision < lastRevision)
                return Fail(WatchDiscrepancyKind.OutOfOrder, i, e, null, $"event {i} ({e}) arrived after event {i - 1} at revision {lastRevision}");
            if (!index.TryGetValue(id, out var k))
            {
                var why = !range.Contains(e.Key) ? $"key {e.Key} is outside the watched range {range}"
                    : e.Revision < startRevision ? $"revision {e.Revision} is before the watch's start revision {startRevision}"
                    : "no such write was committed";
                return Fail(WatchDiscrepancyKind.Unexpected, i, e, null, $"event {i} ({e}): {why}");
            }
            while (next < owed.Count && delivered[next]) next++;
            if (next < owed.Count && owed[next].Revision < e.Revision)
            {
                var missing = owed[next];
                for (var later = i + 1; later < events.Count; later++)
                {
                    if (events[later].Revision == missing.Revision && events[later].Key == missing.Key)
                        return Fail(WatchDiscrepancyKind.OutOfOrder, later, events[later], missing,
                            $"event {later} ({events[later]}) arrived after event {i} ({e})");
                }
                return Fail(WatchDiscrepancyKind.Gap, i, e, missing, $"event {i} ({e}) skipped {missing}, which never arrived");
            }
            if (owed[k] != e)
                return Fail(WatchDiscrepancyKind.Mismatch, i, e, owed[k], $"event {i} is {e}, but the committed write is {owed[k]}");
            delivered[k] = true;
            matched++;
            lastRevision = e.Revision;
        }

        while (next < owed.Count && delivered[next]) next++;
        if (next < owed.Count && (syncedThrough is null || owed[next].Revision <= syncedThrough))
        {
            var last = events.Count == 0 ? "no events" : $"{events.Count} events, the last at revision {events[^1].Revision}";
            return Fail(WatchDiscrepancyKind.Gap, events.Count, null, owed[next], $"the watcher never received {owed[next]} (it received {last})");
        }
        return new(owed.Count, matched, null);
    }
}
