using Cairn.Load;

namespace Cairn.Load.Tests;

public class LoadSimulationTests
{
    [Fact]
    public void A_constant_injection_is_evenly_spaced()
    {
        var t = new InjectionTimeline(100, 100, TimeSpan.FromSeconds(2));
        Assert.Equal(200, t.Count);
        Assert.Equal(0.01, t.DueSeconds(0), 9);
        Assert.Equal(0.02, t.DueSeconds(1), 9);
        Assert.Equal(2.0, t.DueSeconds(199), 9);
    }

    [Fact]
    public void A_ramp_schedules_the_integral_of_its_rate()
    {
        var t = new InjectionTimeline(0, 1000, TimeSpan.FromSeconds(1));   // N(t) = 500 t²
        Assert.Equal(500, t.Count);
        Assert.Equal(Math.Sqrt(1 / 500.0), t.DueSeconds(0), 9);
        Assert.Equal(Math.Sqrt(125 / 500.0), t.DueSeconds(124), 9);       // a quarter of the requests by half the time
        Assert.Equal(1.0, t.DueSeconds(499), 9);
        var down = new InjectionTimeline(1000, 0, TimeSpan.FromSeconds(1));  // N(t) = 1000 t − 500 t²
        Assert.Equal(500, down.Count);
        Assert.Equal(0.5, down.DueSeconds(374), 6);                       // 375 by half the time
        var previous = 0.0;
        for (var k = 0; k < down.Count; k++)
        {
            var due = down.DueSeconds(k);
            Assert.True(due > previous && due <= 1.0);
            previous = due;
        }
    }

    [Fact]
    public void Phases_parse_and_print_back()
    {
        var phases = LoadSimulation.Parse("ramping-constant:64:5s, keep-constant:64:30s,ramping-inject:2000:500ms,inject:1000.5:2m");
        Assert.Equal(
            [
                new LoadSimulation.RampingConstant(64, TimeSpan.FromSeconds(5)),
                new LoadSimulation.KeepConstant(64, TimeSpan.FromSeconds(30)),
                new LoadSimulation.RampingInject(2000, TimeSpan.FromMilliseconds(500)),
                new LoadSimulation.Inject(1000.5, TimeSpan.FromMinutes(2)),
            ], phases);
        Assert.Equal("ramping-constant:64:5s,keep-constant:64:30s,ramping-inject:2000:500ms,inject:1000.5:120s", string.Join(",", phases));
        Assert.Equal(TimeSpan.FromSeconds(155.5), LoadSimulation.Total(phases));
        Assert.Equal(64, LoadSimulation.MaxCopies(phases));
    }

    [Theory]
    [InlineData("keep-constant:16", "is not KIND:LEVEL:DURATION")]
    [InlineData("hold:16:10s", "unknown kind 'hold'")]
    [InlineData("keep-constant:many:10s", "copies 'many' is not a whole number")]
    [InlineData("inject:-5:10s", "rate '-5' is not a number")]
    [InlineData("inject:100:soon", "'soon' is not a duration")]
    [InlineData("inject:100:0s", "has no duration")]
    public void Bad_phases_say_what_is_wrong(string text, string expected)
    {
        var e = Assert.Throws<LoadConfigurationException>(() => LoadSimulation.Parse(text));
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }
}
