using System.Globalization;

namespace Cairn.Load;

/// <summary>
/// The live progress line: elapsed time, successes, the last interval's rate, failures, p99 so far, clients or
/// requests in flight. Rewritten in place on a terminal; one line per update when the output is a file or a pipe.
/// </summary>
internal sealed class ProgressLine(TextWriter writer, bool inPlace)
{
    private int _lastLength;

    public void Update(double seconds, double totalSeconds, StepStats main, TimelinePoint last, double intervalSeconds, int copies, int inFlight)
    {
        var rate = intervalSeconds > 0 ? last.Ok / intervalSeconds : 0;
        var who = copies > 0 ? $"clients {copies}" : $"in flight {inFlight}";
        var line = string.Create(CultureInfo.InvariantCulture,
            $"[{seconds,6:0.0}s/{totalSeconds:0}s] {main.Name}: {main.Ok:N0} ok, {rate:N0}/s, {main.Errors:N0} errors, p99 {main.PercentileMs(99):0.00} ms, {who}");
        if (inPlace)
        {
            writer.Write("\r" + line.PadRight(_lastLength));
            _lastLength = line.Length;
        }
        else
        {
            writer.WriteLine(line);
        }
        writer.Flush();
    }

    public void Done()
    {
        if (inPlace && _lastLength > 0) writer.WriteLine();
    }
}
