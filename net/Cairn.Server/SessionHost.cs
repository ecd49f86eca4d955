using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// Owner: its accept loop and sweep timer (thread-pool tasks); sessions register and leave from their own tasks.
/// The client front door: accepts connections up to the cap (telling the rest why they are closed), runs a
/// <see cref="ClientSession"/> per connection, and enforces the handshake and idle timeouts. Each session hands its
/// requests to <see cref="RequestRouter.Handle"/>.
/// </summary>
internal sealed class SessionHost(Member member, Socket listener, CancellationToken stopping)
{
    private readonly Member _member = member;
    private readonly Socket _clientListener = listener;
    private readonly CancellationToken _stopping = stopping;
    private readonly ConcurrentDictionary<ClientSession, byte> _sessions = new();
    private int _openSessions;        // client connections being served (the cap counts these)
    private int _refusing;            // connections being told TooManyConnections

    /// <summary>Where clients connect.</summary>
    public IPEndPoint Endpoint => (IPEndPoint)_clientListener.LocalEndPoint!;

    /// <summary>The sessions now open.</summary>
    public IEnumerable<ClientSession> Sessions => _sessions.Keys;

    /// <summary>How many sessions are open.</summary>
    public int Count => _sessions.Count;

    /// <summary>Starts accepting and sweeping (both end when the member stops).</summary>
    public void Start()
    {
        _ = AcceptClientsAsync();
        _ = SweepSessionsAsync();
    }

    /// <summary>Stops accepting and closes every session.</summary>
    public void Close()
    {
        _clientListener.Dispose();
        foreach (var s in _sessions.Keys) s.Close();
    }

    /// <summary>
    /// Enforces the handshake and idle timeouts: a few times per timeout it asks every session whether it is overdue
    /// (cheaper than a timer per connection, and a receive needs no deadline of its own).
    /// </summary>
    private async Task SweepSessionsAsync()
    {
        var shortest = _member.Options.IdleTimeout > TimeSpan.Zero && _member.Options.IdleTimeout < _member.Options.HandshakeTimeout ? _member.Options.IdleTimeout : _member.Options.HandshakeTimeout;
        var period = TimeSpan.FromTicks(Math.Clamp(shortest.Ticks / 4, TimeSpan.FromMilliseconds(10).Ticks, TimeSpan.FromSeconds(1).Ticks));
        using var timer = new PeriodicTimer(period, _member.Options.Time);
        try
        {
            while (await timer.WaitForNextTickAsync(_stopping).ConfigureAwait(false))
            {
                var now = _member.Options.Time.GetTimestamp();
                foreach (var s in _sessions.Keys)
                {
                    try
                    {
                        s.Sweep(now);
                    }
                    catch (ObjectDisposedException)
                    {
                        // closed meanwhile
                    }
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task AcceptClientsAsync()
    {
        while (!_stopping.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _clientListener.AcceptAsync(_stopping).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stopping.IsCancellationRequested) return;
                continue;
            }
            socket.NoDelay = true;
            if (Interlocked.Increment(ref _openSessions) > _member.Options.MaxClientConnections)
            {
                Interlocked.Decrement(ref _openSessions);
                Interlocked.Increment(ref _member.Stats.ConnectionsRefused);
                _ = RefuseConnectionAsync(socket);
                continue;
            }
            var session = new ClientSession(socket, _member);
            _sessions[session] = 0;
            Interlocked.Increment(ref _member.Stats.ClientConnections);
            _ = RunSessionAsync(session);
        }
    }

    private async Task RunSessionAsync(ClientSession session)
    {
        try
        {
            await session.RunAsync().ConfigureAwait(false);
        }
        finally
        {
            _sessions.TryRemove(session, out _);
            Interlocked.Decrement(ref _openSessions);
        }
    }

    /// <summary>
    /// Tells a connection over the cap why it is closed: a TooManyConnections frame before anything is read (over TLS
    /// after the handshake, within the handshake timeout). At most 64 refusals run at once; past that it just closes.
    /// </summary>
    private async Task RefuseConnectionAsync(Socket socket)
    {
        if (Interlocked.Increment(ref _refusing) > 64)
        {
            Interlocked.Decrement(ref _refusing);
            socket.Dispose();
            return;
        }
        try
        {
            using var w = new FrameWriter(256);
            Responder.WriteError(w, 0, ErrorCode.TooManyConnections,
                $"member {_member.Name} serves {_member.Options.MaxClientConnections} client connections, the most it accepts (--max-connections); nothing on this connection was served: try another member, or later");
            if (!_member.Tls.ClientTls)
            {
                await ClientSession.GoodbyeAsync(socket, w.Written, _member.Options.HandshakeTimeout).ConfigureAwait(false);
                return;
            }
            using var deadline = new CancellationTokenSource(_member.Options.HandshakeTimeout);
            await using var ssl = new System.Net.Security.SslStream(new NetworkStream(socket, ownsSocket: false), leaveInnerStreamOpen: false);
            await ssl.AuthenticateAsServerAsync(_member.Tls.ClientServerOptions(new MemberTls.Verdict()), deadline.Token).ConfigureAwait(false);
            await ssl.WriteAsync(w.Written, deadline.Token).ConfigureAwait(false);
            await ssl.ShutdownAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException or System.Security.Authentication.AuthenticationException)
        {
        }
        finally
        {
            socket.Dispose();
            Interlocked.Decrement(ref _refusing);
        }
    }
}
