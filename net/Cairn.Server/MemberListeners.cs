using System.Net;
using System.Net.Sockets;

namespace Cairn.Server;

/// <summary>
/// The member's listening sockets (clients, peers, metrics, etcd's gRPC API), bound before anything touches the data directory,
/// so a busy port or an address the host lacks refuses start with nothing written. `cairn serve` binds them before
/// it creates a key file; <see cref="Member.Start(MemberOptions, MemberListeners?)"/> takes them over.
/// </summary>
/// <remarks>
/// Only SO_REUSEADDR is set, never SO_REUSEPORT: .NET's <see cref="SocketOptionName.ReuseAddress"/> sets both on Linux,
/// and SO_REUSEPORT lets a second process bind the same port and take half the connections — two members answering
/// on one address. SO_REUSEADDR alone still lets a restarted member bind while old connections sit in TIME_WAIT,
/// and Linux refuses it while another socket listens there.
/// </remarks>
public sealed class MemberListeners : IDisposable
{
    private const int SolSocket = 1;   // SOL_SOCKET on Linux
    private const int SoReuseAddr = 2; // SO_REUSEADDR on Linux

    private MemberListeners(Socket client, Socket peer, Socket? metrics, Socket? grpc)
    {
        Client = client;
        Peer = peer;
        Metrics = metrics;
        Grpc = grpc;
    }

    /// <summary>Listening for etcd's gRPC API (null when turned off).</summary>
    internal Socket? Grpc { get; }

    /// <summary>Listening for clients.</summary>
    internal Socket Client { get; }

    /// <summary>Listening for peers.</summary>
    internal Socket Peer { get; }

    /// <summary>Listening for metrics and health (null when turned off).</summary>
    internal Socket? Metrics { get; }

    /// <summary>Binds and listens on every address of <paramref name="options"/>, or throws <see cref="MemberStartException"/> naming the one that failed.</summary>
    public static MemberListeners Bind(MemberOptions options)
    {
        Socket? client = null, peer = null, metrics = null, grpc = null;
        try
        {
            client = Listen(options.ListenClient, "--listen-client", "client port", 512);
            peer = Listen(options.ListenPeer, "--listen-peer", "peer port", 64);
            if (!string.IsNullOrEmpty(options.ListenMetrics)) metrics = Listen(options.ListenMetrics, "--listen-metrics", "metrics port", 16);
            if (!string.IsNullOrEmpty(options.ListenGrpc)) grpc = Listen(options.ListenGrpc, "--listen-grpc", "etcd gRPC port", 512);
            return new MemberListeners(client, peer, metrics, grpc);
        }
        catch
        {
            client?.Dispose();
            peer?.Dispose();
            metrics?.Dispose();
            grpc?.Dispose();
            throw;
        }
    }

    /// <summary>One listening socket; a failure names the address, what it was for and why, as one line.</summary>
    internal static Socket Listen(string address, string flag, string role, int backlog)
    {
        var endpoint = MemberOptions.ParseEndpoint(address, flag);
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (OperatingSystem.IsLinux()) socket.SetRawSocketOption(SolSocket, SoReuseAddr, BitConverter.GetBytes(1));
            socket.Bind(endpoint);
            socket.Listen(backlog);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new MemberStartException($"cannot listen on {endpoint} ({role}): {Reason(e)}{Hint(e, flag)}", e);
        }
    }

    private static string Reason(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => "address already in use",
        SocketError.AddressNotAvailable => "this host has no such address",
        SocketError.AccessDenied => "permission denied",
        _ => e.Message.ToLowerInvariant(),
    };

    private static string Hint(SocketException e, string flag) => e.SocketErrorCode switch
    {
        SocketError.AddressAlreadyInUse => $"; another program (another member?) listens there: stop it or choose another {flag}",
        SocketError.AddressNotAvailable => $"; give {flag} an address of this host (e.g. 127.0.0.1 or 0.0.0.0)",
        SocketError.AccessDenied => $"; ports below 1024 need privileges: choose another {flag}",
        _ => "",
    };

    /// <summary>Closes the sockets (a member that started owns them and closes them itself).</summary>
    public void Dispose()
    {
        Client.Dispose();
        Peer.Dispose();
        Metrics?.Dispose();
        Grpc?.Dispose();
    }
}
