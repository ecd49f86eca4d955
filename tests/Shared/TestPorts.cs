using System.Net;
using System.Net.Sockets;

namespace Cairn.Tests;

/// <summary>
/// Ports for test servers that must be known before they listen (a cluster's peers name each other up front). They
/// come from below the kernel's ephemeral range (32768 and up on Linux), where outgoing connections never take a
/// port between the test choosing it and the member binding it, and no port is handed out twice in one process.
/// Members bind without SO_REUSEPORT, so a collision would fail loudly rather than share a port.
/// </summary>
internal static class TestPorts
{
    private const int First = 20_000, Last = 32_000;
    private static int _next = First + (int)((long)Environment.ProcessId * 7919 % (Last - First));

    /// <summary>A port nothing listens on now, never returned before by this process.</summary>
    public static int Next()
    {
        for (var tries = 0; tries < Last - First; tries++)
        {
            var port = First + (Interlocked.Increment(ref _next) - First) % (Last - First);
            if (port < First) port += Last - First;
            try
            {
                using var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Bind(new IPEndPoint(IPAddress.Loopback, port));
                return port;
            }
            catch (SocketException)
            {
                // taken: try the next
            }
        }
        throw new InvalidOperationException($"no free port between {First} and {Last}");
    }
}
