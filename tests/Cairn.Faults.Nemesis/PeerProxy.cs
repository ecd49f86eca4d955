using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Cairn.Faults.Nemesis;

/// <summary>
/// Stands at a member's published peer address (its --initial-cluster entry) and relays to its real --listen-peer.
/// Every peer link (Raft stream, snapshot stream, join query) opens with a hello naming the dialing member
/// (docs/protocol.md, "Peer links"); the proxy reads it to learn who is dialing, refuses links the
/// <see cref="Network"/> forbids and cuts open ones when the rules change.
/// </summary>
internal sealed class PeerProxy : IDisposable
{
    private const int HeaderSize = 16;               // Cairn.Protocol.Frame.HeaderSize: payload length u32, type, flags, request id
    private const int HelloFromOffset = 4 + 2 + 8;   // magic u32, version u16, cluster u64, then from u64

    private readonly Socket _listener;
    private readonly IPEndPoint _target;
    private readonly int _slot;
    private readonly Network _network;
    private readonly Func<ulong, int?> _slotOf;
    private readonly Lock _lock = new();
    private readonly List<(int From, Socket Down, Socket Up)> _links = [];   // guarded by _lock
    private readonly CancellationTokenSource _stop = new();
    private long _relayed;
    private long _refused;

    public PeerProxy(int slot, int port, int targetPort, Network network, Func<ulong, int?> slotOf)
    {
        _slot = slot;
        _network = network;
        _slotOf = slotOf;
        _target = new IPEndPoint(IPAddress.Loopback, targetPort);
        _listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        _listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
        _listener.Bind(new IPEndPoint(IPAddress.Loopback, port));
        _listener.Listen(64);
        network.Attach(this);
        _ = AcceptAsync();
    }

    /// <summary>Links relayed so far (each opened through the proxy).</summary>
    public long Relayed => Interlocked.Read(ref _relayed);

    /// <summary>Links refused or cut by the rules.</summary>
    public long Refused => Interlocked.Read(ref _refused);

    public void Enforce()
    {
        List<(int From, Socket Down, Socket Up)> cut;
        lock (_lock) cut = _links.Where(l => !_network.Allowed(l.From, _slot)).ToList();
        foreach (var l in cut)
        {
            Interlocked.Increment(ref _refused);
            Abort(l.Down);
            Abort(l.Up);
        }
    }

    private static void Abort(Socket s)
    {
        try
        {
            s.LingerState = new LingerOption(true, 0);   // RST: the member sees the link break at once
            s.Close();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;
            }
            _ = RelayAsync(s);
        }
    }

    private async Task RelayAsync(Socket down)
    {
        Socket? up = null;
        (int, Socket, Socket) entry = default;
        try
        {
            down.NoDelay = true;
            using var helloWait = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            helloWait.CancelAfter(TimeSpan.FromSeconds(5));
            var header = new byte[HeaderSize];
            await ReadExactlyAsync(down, header, helloWait.Token).ConfigureAwait(false);
            var length = BinaryPrimitives.ReadUInt32LittleEndian(header);
            if (length > 4096) throw new IOException("not a peer hello");
            var payload = new byte[length];
            await ReadExactlyAsync(down, payload, helloWait.Token).ConfigureAwait(false);
            var from = payload.Length >= HelloFromOffset + 8 ? _slotOf(BinaryPrimitives.ReadUInt64LittleEndian(payload.AsSpan(HelloFromOffset))) : null;
            // A dialer the proxy cannot name (a member being added) is relayed: rules are about known members.
            var fromSlot = from ?? -1;
            if (fromSlot >= 0 && !_network.Allowed(fromSlot, _slot))
            {
                Interlocked.Increment(ref _refused);
                Abort(down);
                return;
            }
            up = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await up.ConnectAsync(_target, helloWait.Token).ConfigureAwait(false);
            await up.SendAsync(header, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            await up.SendAsync(payload, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            entry = (fromSlot < 0 ? _slot : fromSlot, down, up);
            lock (_lock) _links.Add(entry);
            Interlocked.Increment(ref _relayed);
            if (fromSlot >= 0 && !_network.Allowed(fromSlot, _slot)) Enforce();   // the rules changed while it connected
            var a = PumpAsync(down, up);
            var b = PumpAsync(up, down);
            await Task.WhenAny(a, b).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            if (entry.Item2 is not null) lock (_lock) _links.Remove(entry);
            Abort(down);
            if (up is not null) Abort(up);
        }
    }

    private async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 << 10];
        try
        {
            while (true)
            {
                var n = await from.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
                if (n == 0) return;
                await to.SendAsync(buffer.AsMemory(0, n), SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static async Task ReadExactlyAsync(Socket s, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (!buffer.IsEmpty)
        {
            var n = await s.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0) throw new IOException("closed during the hello");
            buffer = buffer[n..];
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        List<(int From, Socket Down, Socket Up)> all;
        lock (_lock) all = [.. _links];
        foreach (var l in all)
        {
            Abort(l.Down);
            Abort(l.Up);
        }
        _stop.Dispose();
    }
}
