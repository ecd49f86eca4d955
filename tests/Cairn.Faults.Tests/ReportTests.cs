using Cairn.Faults;

namespace Cairn.Faults.Tests;

/// <summary>The printed report is the point for people reading a failed run: its shape is pinned here.</summary>
public class ReportTests
{
    [Fact]
    public void Stale_read_report()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.Put(1, "x", "2", 20, 30);
        h.Get(2, "x", "1", 40, 50);
        h.Put(3, "y", "1", 0, 10);
        var text = new LinearizabilityChecker().Check(h.Build()).ToString();
        var lines = text.Split('\n').Select(l => l.TrimEnd('\r')).ToArray();
        Assert.Equal("NOT linearizable: 2 keys, 4 operations checked; not linearizable: x", lines[0]);
        Assert.StartsWith("key \"x\": NOT linearizable - 3 operations (0 failed dropped), ", lines[1]);
        Assert.Equal("  smallest failing sub-history: 3 of 3 operations (1-minimal: no single operation can be left out)", lines[2]);
        Assert.Equal(
        [
            "    op  process  invoke  complete  outcome  operation    result",
            "    #0  1             0        10  ok       put(x, \"1\")  ok",
            "    #1  1            20        30  ok       put(x, \"2\")  ok",
            "    #2  2            40        50  ok       get(x)       \"1\"",
            "  longest linearizable prefix:",
            "    #0 put(x, \"1\") = ok   -> x = \"1\"",
            "    #1 put(x, \"2\") = ok   -> x = \"2\"",
            "  then no pending operation can take effect before #2 get(x) = \"1\" completes at 50; the key is \"2\"",
        ], lines[3..11]);
        Assert.StartsWith("key \"y\": linearizable - 1 operations", lines[11]);
    }

    [Fact]
    public void Unknown_outcomes_print_as_question_marks_and_infinity()
    {
        var h = new HistoryBuilder();
        h.Put(1, "x", "1", 0, 10);
        h.CasUnknown(2, "x", "1", "2", 5);
        h.Get(3, "x", "3", 20, 30);
        var report = new LinearizabilityChecker().Check(h.Build());
        var text = report.ToString();
        Assert.Contains("#2 get(x) = \"3\"", text);
        Assert.Contains("note: #2 read \"3\", which no operation in the history wrote", text);
        Assert.Equal("#1 cas(x, \"1\" -> \"2\") = ?", h.Build().Operations[1].ToString());
    }
}
