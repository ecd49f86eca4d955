using Cairn.Faults;

namespace Cairn.Faults.Tests;

public class WatchCheckerTests
{
    // Revisions 2..7 over keys a, b and c; revision 5 is a transaction writing a and b.
    private static readonly Change[] Committed =
    [
        Change.Put(2, "a", "1"),
        Change.Put(3, "b", "1"),
        Change.Put(4, "a", "2"),
        Change.Put(5, "a", "3"),
        Change.Delete(5, "b"),
        Change.Put(6, "c", "1"),
        Change.Delete(7, "a"),
    ];

    private static Change[] Owed(Func<Change, bool> covered) => [.. Committed.Where(covered)];

    [Fact]
    public void Exact_events_pass()
    {
        var all = WatchChecker.Check(Committed, WatchRange.All, 1, Committed);
        Assert.True(all.Ok, all.ToString());
        Assert.Equal(7, all.Matched);

        var one = WatchChecker.Check(Committed, new WatchRange("a"), 4, Owed(c => c.Key == "a" && c.Revision >= 4));
        Assert.True(one.Ok, one.ToString());
        Assert.Equal(3, one.Expected);

        var range = WatchChecker.Check(Committed, new WatchRange("a", "c"), 1, Owed(c => c.Key != "c"));
        Assert.True(range.Ok, range.ToString());
    }

    [Fact]
    public void Keys_changed_at_one_revision_may_arrive_in_either_order()
    {
        Change[] events = [Committed[0], Committed[1], Committed[2], Committed[4], Committed[3], Committed[5], Committed[6]];
        Assert.True(WatchChecker.Check(Committed, WatchRange.All, 1, events).Ok);
    }

    [Fact]
    public void Gap_is_reported()
    {
        Change[] events = [Committed[0], Committed[1], Committed[3], Committed[4], Committed[5], Committed[6]];
        var result = WatchChecker.Check(Committed, WatchRange.All, 1, events);
        Assert.Equal(WatchDiscrepancyKind.Gap, result.First!.Kind);
        Assert.Equal(2, result.First.EventIndex);
        Assert.Equal(Committed[2], result.First.Expected);
        Assert.Contains("skipped rev 4 put a = \"2\"", result.First.Message);
    }

    [Fact]
    public void Missing_tail_is_a_gap_unless_the_watcher_was_only_synced_before_it()
    {
        var events = Committed[..5];
        var result = WatchChecker.Check(Committed, WatchRange.All, 1, events);
        Assert.Equal(WatchDiscrepancyKind.Gap, result.First!.Kind);
        Assert.Equal(5, result.First.EventIndex);
        Assert.Equal(Committed[5], result.First.Expected);

        Assert.True(WatchChecker.Check(Committed, WatchRange.All, 1, events, syncedThrough: 5).Ok);
        Assert.False(WatchChecker.Check(Committed, WatchRange.All, 1, events, syncedThrough: 6).Ok);
    }

    [Fact]
    public void Duplicate_is_reported()
    {
        Change[] events = [Committed[0], Committed[1], Committed[1], Committed[2]];
        var result = WatchChecker.Check(Committed, WatchRange.All, 1, events, syncedThrough: 4);
        Assert.Equal(WatchDiscrepancyKind.Duplicate, result.First!.Kind);
        Assert.Equal(2, result.First.EventIndex);
        Assert.Contains("repeats event 1", result.First.Message);
    }

    [Fact]
    public void Redelivery_after_a_reconnect_is_a_duplicate()
    {
        // A watcher that re-created its watch from too early a revision sees old events again.
        Change[] events = [Committed[0], Committed[1], Committed[2], Committed[1], Committed[2]];
        Assert.Equal(WatchDiscrepancyKind.Duplicate, WatchChecker.Check(Committed, WatchRange.All, 1, events).First!.Kind);
    }

    [Fact]
    public void Out_of_order_is_reported()
    {
        Change[] events = [Committed[0], Committed[2], Committed[1], Committed[3], Committed[4], Committed[5], Committed[6]];
        var result = WatchChecker.Check(Committed, WatchRange.All, 1, events);
        Assert.Equal(WatchDiscrepancyKind.OutOfOrder, result.First!.Kind);
        Assert.Equal(2, result.First.EventIndex);
        Assert.Equal(Committed[1], result.First.Event);
        Assert.Contains("arrived after event 1", result.First.Message);
    }

    [Fact]
    public void Event_of_a_write_never_committed_or_outside_the_watch_is_unexpected()
    {
        var invented = WatchChecker.Check(Committed, WatchRange.All, 1, [Committed[0], Change.Put(3, "b", "9")]);
        Assert.Equal(WatchDiscrepancyKind.Mismatch, invented.First!.Kind);

        var nothing = WatchChecker.Check(Committed, WatchRange.All, 1, [Change.Put(9, "a", "x")]);
        Assert.Equal(WatchDiscrepancyKind.Unexpected, nothing.First!.Kind);
        Assert.Contains("no such write", nothing.First.Message);

        var outside = WatchChecker.Check(Committed, WatchRange.Prefix("a"), 1, [Committed[0], Committed[1]]);
        Assert.Equal(WatchDiscrepancyKind.Unexpected, outside.First!.Kind);
        Assert.Contains("outside the watched range", outside.First.Message);

        var early = WatchChecker.Check(Committed, WatchRange.All, 3, [Committed[0]]);
        Assert.Equal(WatchDiscrepancyKind.Unexpected, early.First!.Kind);
        Assert.Contains("before the watch's start revision", early.First.Message);
    }

    [Fact]
    public void Ranges_follow_etcd()
    {
        Assert.True(new WatchRange("a").Contains("a"));
        Assert.False(new WatchRange("a").Contains("ab"));
        Assert.True(WatchRange.Prefix("a").Contains("ab"));
        Assert.False(WatchRange.Prefix("a").Contains("b"));
        Assert.True(new WatchRange("b", "\0").Contains("zzz"));
        Assert.False(new WatchRange("b", "\0").Contains("a"));
        Assert.True(WatchRange.All.Contains(""));
        Assert.Throws<ArgumentException>(() => WatchChecker.Check([Change.Put(1, "a", "1"), Change.Put(1, "a", "2")], WatchRange.All, 1, []));
    }
}
