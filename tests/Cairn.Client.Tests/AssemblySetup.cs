using System.Runtime.CompilerServices;

namespace Cairn.Client.Tests;

internal static class AssemblySetup
{
    /// <summary>
    /// The members under test block pool threads in places (starting, stopping, joining their raft thread); on a
    /// two-core machine the pool starts with two threads and grows by about one a second, so a few blocked threads
    /// stall every socket completion and timer in the process. Start the pool wider.
    /// </summary>
    [ModuleInitializer]
    internal static void WidenThreadPool()
    {
        ThreadPool.GetMinThreads(out var workers, out var io);
        ThreadPool.SetMinThreads(Math.Max(workers, 32), Math.Max(io, 32));
    }
}
