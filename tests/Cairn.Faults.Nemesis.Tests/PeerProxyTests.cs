using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Cairn.Faults.Nemesis.Tests;

/// <summary>The partition proxy: it relays a peer link, learns the dialer from the hello, cuts and refuses by the rules.</summary>
public sealed class PeerProxyTests : IDisposable
{
    private readonly Socket _member = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Network _network = new(3);
    private readonly PeerProxy _proxy;
    private readonly int _proxyPort = Node.FreePort();

    public PeerProxyTests()
    {
        _member.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        _member.Listen(8);
        // The proxy stands for slot 2; member ids 100 + slot.
        _proxy = new PeerProxy(2, _proxyPort, ((IPEndPoint)_member.LocalEndPoint!).Port, _network, id => id >= 100 ? (int)(id - 100) : null);
    }

    /// <summary>A peer hello as cairn sends it: frame header, then magic, version, cluster, from, to, kind.</summary>
    private static byte[] Hello(ulong from)
    {
        var b = new byte[16 + 4 + 2 + 8 + 8 + 8 + 1];
        BinaryPrimitives.WriteUInt32LittleEndian(b, (uint)(b.Length - 16));
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16 + 4 + 2 + 8), from);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(16 + 4 + 2 + 8 + 8), 102);
        b[^1] = 1;
        return b;
    }

    private async Task<Socket> DialAsync(ulong from)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, _proxyPort));
        await s.SendAsync(Hello(from));
        return s;
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the stream ends (the proxy may relay a hello in more than one write); the bytes read.</summary>
    private static async Task<int> ReadFullAsync(Socket s, byte[] buffer)
    {
        var read = 0;
        while (read < buffer.Length)
        {
            var n = await ReadAsync(s, buffer[read..] is var rest ? rest : []);
            if (n == 0) break;
            rest.AsSpan(0, n).CopyTo(buffer.AsSpan(read));
            read += n;
        }
        return read;
    }

    private static async Task<int> ReadAsync(Socket s, byte[] buffer)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            return await s.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
        }
        catch (SocketException)
        {
            return 0;    // reset: closed as well
        }
    }

    [Fact]
    public async Task A_link_is_relayed_both_ways_with_its_hello_then_cut_by_a_partition_and_refused_until_healed()
    {
        using var dialer = await DialAsync(100);
        using var accepted = await _member.AcceptAsync();
        var hello = new byte[Hello(100).Length];
        Assert.Equal(hello.Length, await ReadFullAsync(accepted, hello));
        Assert.Equal(Hello(100), hello);
        await accepted.SendAsync(new byte[] { 7 });
        var one = new byte[1];
        Assert.Equal(1, await ReadAsync(dialer, one));
        Assert.Equal(7, one[0]);

        _network.Cut([0], [1, 2]);               // slot 0 cut off from the others: its open link to slot 2 closes
        Assert.Equal(0, await ReadAsync(dialer, one));
        Assert.Equal(0, await ReadAsync(accepted, one));

        using var refused = await DialAsync(100); // and a new one is refused before it reaches the member
        Assert.Equal(0, await ReadAsync(refused, one));
        using (var other = await DialAsync(101))  // slot 1 to slot 2 is not cut
        {
            using var a = await _member.AcceptAsync();
            Assert.Equal(hello.Length, await ReadFullAsync(a, hello));
        }

        _network.Heal();
        using var again = await DialAsync(100);
        using var b = await _member.AcceptAsync();
        Assert.Equal(hello.Length, await ReadFullAsync(b, hello));
        Assert.Equal(2, _proxy.Refused);
        Assert.Equal(3, _proxy.Relayed);
    }

    public void Dispose()
    {
        _proxy.Dispose();
        _member.Dispose();
    }
}
