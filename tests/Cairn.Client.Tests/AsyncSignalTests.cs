using Cairn.Protocol;

namespace Cairn.Client.Tests;

/// <summary>The writer loops' wake-up signal: one waiter, no allocation — and a waiter abandoned mid-wait is harmless.</summary>
public sealed class AsyncSignalTests
{
    [Fact]
    public async Task A_set_before_the_wait_makes_the_wait_return_at_once_and_a_set_during_it_wakes_it()
    {
        var s = new AsyncSignal();
        s.Set();
        Assert.True(s.WaitAsync().AsTask().IsCompleted);
        var wait = s.WaitAsync().AsTask();
        Assert.False(wait.IsCompleted);
        s.Set();
        await wait.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task A_wait_abandoned_before_a_set_and_overtaken_by_a_new_wait_neither_throws_nor_hangs()
    {
        // A peer link's pump returned when its stream closed, leaving its wait pending; a Set queued that wait's
        // continuation, and the next stream's pump began a new wait (resetting the signal) before it ran. The
        // continuation then asked for the status under a stale token: InvalidOperationException on a pool thread, the
        // end of the process. Many rounds, so the queued continuation runs after the reset in some of them.
        var failures = 0;
        void OnUnhandled(object? sender, UnhandledExceptionEventArgs e) => Interlocked.Increment(ref failures);
        AppDomain.CurrentDomain.UnhandledException += OnUnhandled;
        try
        {
            for (var round = 0; round < 2_000; round++)
            {
                var s = new AsyncSignal();
                var abandoned = s.WaitAsync().AsTask();
                s.Set();                                   // queues the abandoned wait's continuation
                var next = s.WaitAsync().AsTask();          // resets the signal, perhaps before that continuation runs
                s.Set();
                await Task.WhenAll(abandoned, next).WaitAsync(TimeSpan.FromSeconds(10));
            }
        }
        finally
        {
            AppDomain.CurrentDomain.UnhandledException -= OnUnhandled;
        }
        Assert.Equal(0, failures);
    }
}
