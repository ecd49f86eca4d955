using System.Diagnostics;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: the scrub task.
/// The background scrub (docs/server.md, "Scrub"): every page in use is read back from the file and checked once per
/// --scrub-interval, a few pages at a time, as a RAID scrub reads every block — so damage is found (and the CORRUPT
/// alarm raised) before a client reads it, or before the page is needed to rebuild another member. Each step is one
/// short read transaction: the writer is never blocked, and no page is pinned between steps.
/// </summary>
public sealed partial class Member
{
    /// <summary>The scrub never reads slower than this, however long the interval: a small file is done in minutes (then it waits for the interval to end).</summary>
    internal const double ScrubFloorPagesPerSecond = 10;

    /// <summary>Most pages one step verifies (one read transaction each): bounds how long a step holds its snapshot.</summary>
    private const int MaxScrubStep = 256;

    private Task _scrub = Task.CompletedTask;
    private double _scrubRate;      // pages per second of the pass under way (0: scrub off)

    /// <summary>
    /// Pass after pass: the rate is the file's pages over the interval (at least <see cref="ScrubFloorPagesPerSecond"/>),
    /// taken in steps of what has accrued since the last one; a pass that ends early waits out the rest of its interval.
    /// </summary>
    private async Task ScrubAsync()
    {
        var scrubber = new Scrubber();
        var interval = _options.ScrubInterval;
        var token = _stopping.Token;
        var found = new HashSet<long>();
        try
        {
            while (true)
            {
                var passStart = _options.Time.GetTimestamp();
                var pages = Math.Max(1, _sm.Storage.DataSize / _sm.Storage.PageSize);
                var rate = Math.Max(ScrubFloorPagesPerSecond, pages / interval.TotalSeconds);
                Volatile.Write(ref _scrubRate, rate);
                var pause = TimeSpan.FromSeconds(Math.Clamp(1 / rate, 0.05, 1));
                var credit = 0.0;
                var last = passStart;
                while (true)
                {
                    await Task.Delay(pause, _options.Time, token).ConfigureAwait(false);
                    var now = _options.Time.GetTimestamp();
                    credit = Math.Min(credit + rate * (now - last) / _options.Time.TimestampFrequency, MaxScrubStep);
                    last = now;
                    if (credit < 1) continue;
                    var step = _sm.Scrub(scrubber, (int)credit);
                    credit -= step.PagesVerified; // a step ends at a leaf boundary: what it read beyond is paid back
                    Interlocked.Add(ref Stats.ScrubPages, step.PagesVerified);
                    foreach (var damage in step.Damage)
                    {
                        if (found.Add(damage.PageNumber)) Interlocked.Increment(ref Stats.ScrubDamagedPages);
                        OnDamage(damage, "the background scrub");
                    }
                    if (step.PassCompleted) break;
                }
                Interlocked.Increment(ref Stats.ScrubPasses);
                Volatile.Write(ref Stats.ScrubLastPass, _options.Time.GetUtcNow().ToUnixTimeSeconds());
                var rest = interval - _options.Time.GetElapsedTime(passStart);
                if (rest > TimeSpan.Zero) await Task.Delay(rest, _options.Time, token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException && token.IsCancellationRequested)
        {
            // stopping
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            // The scrub is a help, not a duty: whatever stopped it (a bug, an I/O error) must not stop the member.
            Log($"the background scrub stopped: {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            Volatile.Write(ref _scrubRate, 0);
        }
    }
}
