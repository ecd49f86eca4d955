using Cairn.Faults;

namespace Cairn.Faults.Tests;

/// <summary>Hand-written histories with known verdicts. Times are small integers; intervals are [invoke, complete].</summary>
public class CheckerTests
{
    private static CheckReport Check(HistoryBuilder h, CheckerOptions? options = null) =>
        new LinearizabilityChecker(options).Check(h.Build());

    private static void Linearizable(HistoryBuilder h)
    {
        var report = Check(h);
        Assert.True(report.Verdict == Verdict.Linearizable, report.ToString());
    }

    private static KeyReport NotLinearizable(HistoryBuilder h, string key = "x")
    {
        var report = Check(h);
        Assert.True(report.Verdict == Verdict.NotLinearizable, report.ToString());
        var k = report[key];
        Assert.Equal(Verdict.NotLinearizable, k.Verdict);
        Assert.NotNull(k.Violation);
        // The evidence really fails, on its own.
        Assert.Equal(Verdict.NotLinearizable, new LinearizabilityChecker(new CheckerOptions { ShrinkTimeBudget = TimeSpan.Zero })
            .Check(new History(k.Violation.Operations)).Verdict);
        return k;
    }

    private static int[] Ids(IEnumerable<Operation> ops) => [.. ops.Select(o => o.Id)];

    [Fact]
    public void Empty_history_is_linearizable()
    {
        var report = Check(new HistoryBuilder());
        Assert.Equal(Verdict.Linearizable, report.Verdict);
        Assert.Empty(report.Keys);
    }

    [Fact]
    public void Sequential_puts_and_gets()
    {
        var h = new HistoryBuilder();
        h.Get(1, "x", null, 0, 1);
        h.Put(1, "x", "1", 2, 3);
        h.Get(2, "x", "1", 4, 5);
        h.Put(2, "x", "2", 6, 7);
        h.Get(1, "x", "2", 8, 9);
        Linearizable(h);
    }

    [Fact]
    public void Stale_read_after_a_newer_write_completed_is_a_violation()
    {
        var h = new HistoryBuilder();
        var p1 = h.Put(1, "x", "1", 0, 10);
        var p2 = h.Put(1, "x", "2", 20, 30);
        h.Get(2, "y", null, 0, 100); // another key, irrelevant
        var read = h.Get(2, "x", "1", 40, 50);
        var k = NotLinearizable(h);
        Assert.Equal([p1, p2, read], Ids(k.Violation!.Operations));
        Assert.Equal([p1, p2], Ids(k.Violation.LongestPrefix.Select(s => s.Operation)));
        Assert.Equal(read, k.Violation.Blocked!.Id);
        Assert.Equal("2", k.Violation.BlockedState);
        Assert.True(k.Violation.Minimal);
    }

    [Fact]
    public void Read_of_the_old_value_while_the_new_write_is_in_flight_is_fine()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Put(1, "x", "2", 20, 60);
        h.Get(2, "x", "1", 30, 40);
        h.Get(3, "x", "2", 35, 45); // and another read already sees the new one...
        h.Get(2, "x", "2", 50, 55); // ...after which the old one is gone
        Linearizable(h);
    }

    [Fact]
    public void Reads_that_go_back_in_time_during_a_write_are_a_violation()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Put(1, "x", "2", 20, 100);
        h.Get(2, "x", "2", 30, 40);
        h.Get(2, "x", "1", 50, 60); // the write was not over, but a read already saw it: no going back
        NotLinearizable(h);
    }

    [Fact]
    public void Lost_update_two_swaps_from_the_same_value_both_succeed()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "0", 0, 10);
        var a = h.Cas(1, "x", "0", "a", true, 20, 40);
        var b = h.Cas(2, "x", "0", "b", true, 25, 45);
        var k = NotLinearizable(h);
        Assert.Contains(a, Ids(k.Violation!.Operations));
        Assert.Contains(b, Ids(k.Violation.Operations));
    }

    [Fact]
    public void Two_swaps_from_the_same_value_one_wins()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "0", 0, 10);
        h.Cas(1, "x", "0", "a", false, 20, 40);
        h.Cas(2, "x", "0", "b", true, 25, 45);
        h.Get(3, "x", "b", 50, 60);
        Linearizable(h);
    }

    [Fact]
    public void Two_creates_of_an_absent_key_both_succeed_is_a_violation()
    {
        var h = new HistoryBuilder();
        h.Cas(1, "x", null, "a", true, 0, 10);
        h.Cas(2, "x", null, "b", true, 5, 15);
        NotLinearizable(h);
    }

    [Fact]
    public void A_failed_swap_must_really_have_been_refused()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "0", 0, 10);
        h.Cas(1, "x", "0", "a", false, 20, 30); // nothing else could have changed x
        NotLinearizable(h);
    }

    [Fact]
    public void Read_of_a_value_never_written_is_a_violation_and_shrinks_to_the_read()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Put(2, "x", "2", 5, 15);
        var read = h.Get(3, "x", "3", 20, 30);
        h.Get(3, "x", "2", 40, 50);
        var k = NotLinearizable(h);
        Assert.Equal([read], Ids(k.Violation!.Operations));
        Assert.Contains(k.Violation.Notes, n => n.Contains("no operation in the history wrote"));
    }

    [Fact]
    public void Shrinking_does_not_invent_a_violation_by_dropping_what_explained_a_result()
    {
        // Dropping the delete would leave put 1 then a read of absent: failing, but not this history's failure.
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Delete(1, "x", 1, 20, 30);
        h.Get(2, "x", null, 40, 50);
        var bad = h.Get(2, "x", "1", 60, 70);
        var k = NotLinearizable(h);
        Assert.Contains(bad, Ids(k.Violation!.Operations));
        Assert.Equal(3, k.Violation.Operations.Count); // put, delete, the read of "1"
    }

    [Fact]
    public void Shrinking_drops_writes_that_a_later_write_hides()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "0", 0, 10);
        h.Delete(1, "x", 1, 12, 18);
        h.Put(1, "x", "1", 20, 30);
        h.Put(1, "x", "2", 40, 50);
        h.Get(2, "x", "1", 60, 70);
        var k = NotLinearizable(h);
        Assert.Equal([2, 3, 4], Ids(k.Violation!.Operations));
    }

    [Fact]
    public void Concurrent_puts_are_linearizable_in_only_one_order()
    {
        var h = new HistoryBuilder();
        var a = h.Put(1, "x", "a", 0, 50);
        var b = h.Put(2, "x", "b", 10, 60);
        var readB = h.Get(3, "x", "b", 20, 30); // b went first...
        var readA = h.Get(3, "x", "a", 70, 80); // ...then a
        var report = Check(h);
        Assert.Equal(Verdict.Linearizable, report.Verdict);
        Assert.Equal([b, readB, a, readA], Ids(report["x"].Linearization.Select(s => s.Operation)));

        h.Get(3, "x", "b", 90, 100); // no order has b after a
        NotLinearizable(h);
    }

    [Fact]
    public void A_put_of_the_value_already_there_is_not_a_read()
    {
        // After #0 the key is "1" and #2 would leave it so; but #2 must go after #1 for the read to see "1".
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Put(2, "x", "2", 20, 30);
        h.Put(3, "x", "1", 15, 50);
        h.Get(1, "x", "1", 60, 70);
        Linearizable(h);
    }

    [Fact]
    public void Unknown_write_observed_later_took_effect()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.PutUnknown(1, "x", "2", 20);
        h.Get(2, "x", "2", 100, 110);
        h.Get(2, "x", "2", 120, 130);
        Linearizable(h);
    }

    [Fact]
    public void Unknown_write_never_observed_may_never_have_happened()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.PutUnknown(1, "x", "2", 20);
        h.Get(2, "x", "1", 100, 110);
        h.Get(2, "x", "1", 1000, 1010);
        var report = Check(h);
        Assert.Equal(Verdict.Linearizable, report.Verdict);
        Assert.Equal(3, report["x"].Linearization.Count); // the unknown put is left out
    }

    [Fact]
    public void Unknown_write_seen_then_unseen_is_a_violation()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.PutUnknown(1, "x", "2", 20);
        h.Get(2, "x", "2", 100, 110);
        h.Get(2, "x", "1", 120, 130); // nothing wrote "1" again
        NotLinearizable(h);
    }

    [Fact]
    public void Unknown_write_cannot_be_seen_before_it_was_invoked()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Get(2, "x", "2", 20, 30);
        h.PutUnknown(1, "x", "2", 40);
        NotLinearizable(h);
    }

    [Fact]
    public void Unknown_swap_takes_effect_only_if_its_comparison_holds()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.CasUnknown(1, "x", "0", "2", 20); // x is "1": even if applied, it cannot swap
        h.Get(2, "x", "2", 100, 110);
        NotLinearizable(h);

        var ok = new HistoryBuilder();
        ok.Put(1, "x", "1", 0, 10);
        ok.CasUnknown(1, "x", "1", "2", 20);
        ok.Get(2, "x", "2", 100, 110);
        Linearizable(ok);
    }

    [Fact]
    public void Failed_write_observed_by_a_read_is_a_violation()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        var failed = h.PutFailed(1, "x", "2", 20, 30);
        var read = h.Get(2, "x", "2", 40, 50);
        var report = Check(h);
        Assert.Equal(Verdict.NotLinearizable, report.Verdict);
        Assert.Equal(1, report["x"].Failed);
        Assert.Equal([read], Ids(report["x"].Violation!.Operations));
        Assert.Contains(report["x"].Violation!.Notes, n => n.Contains($"written only by #{failed}") && n.Contains("not applied"));
    }

    [Fact]
    public void Failed_write_not_observed_is_fine()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.PutFailed(1, "x", "2", 20, 30);
        h.Get(2, "x", "1", 40, 50);
        Linearizable(h);
    }

    [Fact]
    public void Deletes()
    {
        var h = new HistoryBuilder();
        h.Delete(1, "x", 0, 0, 5);   // nothing to delete yet
        h.Put(1, "x", "1", 10, 20);
        h.Delete(2, "x", 1, 30, 40);
        h.Get(1, "x", null, 50, 60);
        h.Put(1, "x", "1", 70, 80); // the same value again, after the delete
        h.Get(2, "x", "1", 90, 100);
        Linearizable(h);
    }

    [Fact]
    public void Delete_of_an_absent_key_that_reports_one_is_a_violation()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Delete(1, "x", 1, 20, 30);
        h.Delete(2, "x", 1, 40, 50);
        NotLinearizable(h);
    }

    [Fact]
    public void Delete_that_found_nothing_while_the_key_existed_is_a_violation()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Delete(2, "x", 0, 20, 30);
        NotLinearizable(h);
    }

    [Fact]
    public void Read_of_a_deleted_value_after_the_delete_completed_is_a_violation()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Delete(1, "x", 1, 20, 30);
        h.Get(2, "x", "1", 40, 50);
        NotLinearizable(h);
    }

    [Fact]
    public void Concurrent_delete_and_put_either_order()
    {
        foreach (var (deleted, seen) in new[] { (1L, (string?)"2"), (1L, null), (0L, "2") })
        {
            var h = new HistoryBuilder();
            if (deleted == 1) h.Put(1, "x", "1", 0, 10);
            h.Delete(1, "x", deleted, 20, 40);
            h.Put(2, "x", "2", 25, 45);
            h.Get(3, "x", seen, 50, 60);
            Linearizable(h);
        }
    }

    [Fact]
    public void Unknown_delete_observed_or_not()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.DeleteUnknown(1, "x", 20);
        h.Get(2, "x", "1", 30, 40);
        h.Get(2, "x", null, 50, 60);
        Linearizable(h);
        h.Get(2, "x", "1", 70, 80);
        NotLinearizable(h);
    }

    [Fact]
    public void Touching_intervals_count_as_concurrent()
    {
        // The ticks cannot tell which came first when one completes at the tick the other is invoked.
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Get(2, "x", null, 10, 20);
        Linearizable(h);
    }

    [Fact]
    public void Keys_are_checked_independently()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Get(2, "x", "1", 20, 30);
        h.Put(1, "y", "1", 0, 10);
        h.Put(1, "y", "2", 20, 30);
        h.Get(2, "y", "1", 40, 50);
        var report = Check(h);
        Assert.Equal(Verdict.NotLinearizable, report.Verdict);
        Assert.Equal(Verdict.Linearizable, report["x"].Verdict);
        Assert.Equal(Verdict.NotLinearizable, report["y"].Verdict);
        Assert.Equal(["y"], report.Violations.Select(v => v.Key));
    }

    [Fact]
    public void Initial_values_are_the_starting_state()
    {
        var h = new HistoryBuilder();
        h.Get(1, "x", "0", 0, 10);
        Assert.Equal(Verdict.NotLinearizable, Check(h).Verdict);
        var options = new CheckerOptions { InitialValues = new Dictionary<string, string> { ["x"] = "0" } };
        Assert.Equal(Verdict.Linearizable, Check(h, options).Verdict);
    }

    [Fact]
    public void Unknown_gets_are_ignored()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Add(new Operation { Id = 0, Process = 2, Kind = OperationKind.Get, Key = "x", Invoke = 20, Complete = Operation.Never, Outcome = Outcome.Unknown, Observed = "junk" });
        var report = Check(h);
        Assert.Equal(Verdict.Linearizable, report.Verdict);
        Assert.Equal(1, report["x"].Operations);
    }

    [Fact]
    public void Exhausted_budget_reports_unknown_instead_of_hanging()
    {
        // Twenty concurrent writes and a read of a value none wrote: proving that takes every subset of the writes.
        var h = new HistoryBuilder();
        for (var i = 0; i < 20; i++) h.Put(i, "x", $"v{i}", i, 1000 + i);
        h.Get(99, "x", "nobody", 500, 2000);
        var report = Check(h, new CheckerOptions { KeyStepBudget = 10_000 });
        Assert.Equal(Verdict.Unknown, report.Verdict);
        Assert.Contains("budget exhausted: 10,000 steps", report.ToString());

        var timed = Check(h, new CheckerOptions { KeyTimeBudget = TimeSpan.FromMilliseconds(1) });
        Assert.Equal(Verdict.Unknown, timed.Verdict);
        Assert.Contains("budget exhausted", timed["x"].Reason);
    }

    [Fact]
    public void Many_commuting_reads_are_cheap()
    {
        // 12 overlapping reads of the same value commute: plain Wing-Gong would try 12! orders, the memo 2^12 sets, and
        // the eager rule (a read that fits the state now takes effect now) one.
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        for (var i = 0; i < 12; i++) h.Get(i, "x", "1", 20 + i, 100 + i);
        h.Get(99, "x", "2", 200, 210);
        var report = Check(h, new CheckerOptions { KeyStepBudget = 2_000_000, ShrinkTimeBudget = TimeSpan.Zero });
        Assert.Equal(Verdict.NotLinearizable, report.Verdict);
        Assert.True(report["x"].Steps < 200_000, $"{report["x"].Steps} steps");
    }

    [Fact]
    public void Many_pending_unknown_writes_stay_cheap()
    {
        // Timed-out writes that never landed stay pending to the end; without the dominance rules every read would
        // make the search try every subset of them.
        var h = new HistoryBuilder();
        h.Put(0, "x", "0", 0, 5);
        for (var i = 0; i < 200; i++)
        {
            h.PutUnknown(1, "x", $"lost{i}", 10 + 10 * i);
            h.DeleteUnknown(2, "x", 12 + 10 * i);
            h.CasUnknown(3, "x", "0", $"lost-cas{i}", 14 + 10 * i);
            h.Get(4, "x", "0", 15 + 10 * i, 18 + 10 * i);
        }
        var options = new CheckerOptions { KeyStepBudget = 1_000_000 };
        var report = Check(h, options);
        Assert.True(report.Verdict == Verdict.Linearizable, report.ToString());

        h.Put(5, "x", "1", 3000, 3010);
        h.Get(5, "x", "0", 3020, 3030); // stale, whatever the lost writes did
        var bad = Check(h, options);
        Assert.True(bad.Verdict == Verdict.NotLinearizable, bad.ToString());
        Assert.True(bad["x"].Steps < 1_000_000, $"{bad["x"].Steps} steps");
    }

    [Fact]
    public void Options_are_validated()
    {
        Assert.Throws<ArgumentException>(() => new LinearizabilityChecker(new CheckerOptions { KeyStepBudget = 0 }));
        Assert.Throws<ArgumentException>(() => new LinearizabilityChecker(new CheckerOptions { KeyTimeBudget = TimeSpan.Zero }));
        Assert.Throws<ArgumentException>(() => new LinearizabilityChecker(new CheckerOptions { ShrinkTimeBudget = TimeSpan.FromSeconds(-1) }));
    }

    [Fact]
    public void Malformed_operations_are_refused()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 10, 5);
        Assert.Throws<ArgumentException>(h.Build);
        var u = new HistoryBuilder();
        u.Add(new Operation { Id = 0, Process = 1, Kind = OperationKind.Put, Key = "x", Value = "1", Invoke = 0, Complete = 10, Outcome = Outcome.Unknown });
        Assert.Throws<ArgumentException>(u.Build);
    }
}
