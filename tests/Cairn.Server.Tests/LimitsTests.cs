using System.Net.Sockets;
using Cairn.Client;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>
/// Abuse limits over real sockets: the connection cap, requests in flight per connection, and the handshake and idle
/// timeouts (short ones, so nothing here waits on the clock: each test waits for the event, never for a duration).
/// </summary>
public sealed class LimitsTests
{
    [Fact]
    public async Task The_connection_cap_holds_the_extra_connection_is_told_and_closed_and_the_others_keep_working()
    {
        await using var cluster = new TestCluster(1) { Customize = (_, o) => o with { MaxClientConnections = 2 } };
        await cluster.StartAllAsync();
        var m = cluster.Members["m1"]!;
        var a = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        await using var b = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));

        using (var extra = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp))
        {
            await extra.ConnectAsync(m.ClientEndpoint);
            using var stream = new NetworkStream(extra, ownsSocket: false);
            var (h, payload) = await SecurityTests.ReadFrameAsync(stream) ?? throw new Xunit.Sdk.XunitException("the extra connection was closed without a word");
            Assert.Equal(MessageType.Error, h.Type);
            var (code, message) = SecurityTests.ReadError(payload);
            Assert.Equal(ErrorCode.TooManyConnections, code);
            Assert.Contains("--max-connections", message, StringComparison.Ordinal);
            Assert.Null(await SecurityTests.ReadFrameAsync(stream));
        }
        // The client library reports it as an unreachable member, naming the reason.
        await using (var lib = new CairnClient(new CairnClientOptions { Endpoints = [m.ClientEndpoint.ToString()], DiscoverEndpoints = false }))
        {
            var e = await Assert.ThrowsAsync<CairnUnavailableException>(() => lib.ConnectAsync());
            Assert.Contains("TooManyConnections", e.Message, StringComparison.Ordinal);
        }

        await a.PutAsync("k", "1");
        Assert.Equal("1", await b.GetAsync("k"));
        Assert.Equal(2, m.Stats.ConnectionsRefused);
        Assert.Contains("cairn_client_connections_refused_total 2", m.MetricsText(), StringComparison.Ordinal);

        // A slot that frees up is taken again.
        await a.DisposeAsync();
        await TestCluster.EventuallyAsync(() => m.Sessions.Count() == 1, "the closed connection is gone");
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        Assert.Equal("1", await c.GetAsync("k"));
    }

    [Fact]
    public async Task The_in_flight_cap_is_answered_with_TooManyRequests_and_open_watches_count_until_they_end()
    {
        await using var cluster = new TestCluster(1) { Customize = (_, o) => o with { MaxRequestsInFlight = 2 } };
        await cluster.StartAllAsync();
        var m = cluster.Members["m1"]!;
        await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        await c.PutAsync("a", "1");

        // Two watches: two streams in flight, as they count against etcd's --max-concurrent-streams.
        var watches = new List<(System.Threading.Channels.Channel<(FrameHeader, byte[])> Stream, ulong Id)>();
        for (var i = 0; i < 2; i++)
        {
            var stream = c.OpenStream(out var id);
            await c.SendAsync(MessageType.WatchCreate, id, w => Messages.WriteWatchCreate(w, new WatchRequest { Key = TestClient.Bytes($"w{i}") }));
            var (created, _) = await stream.Reader.ReadAsync();
            Assert.Equal(MessageType.WatchCreate, created.Type);
            watches.Add((stream, id));
        }
        Assert.Equal(2, Assert.Single(m.Sessions).InFlight);


        // A third request is refused at once, typed, and nothing is done.
        var refused = await c.CallAsync(MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = TestClient.Bytes("b"), Value = TestClient.Bytes("2") }));
        Assert.Equal(MessageType.Error, refused.Header.Type);
        var (code, message) = SecurityTests.ReadError(refused.Payload);
        Assert.Equal(ErrorCode.TooManyRequests, code);
        Assert.Contains("--max-requests-in-flight", message, StringComparison.Ordinal);
        await using (var other = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"))) Assert.Null(await other.GetAsync("b"));
        Assert.Equal(1, m.Stats.TooManyRequests);

        // Ending a watch frees its slot.
        var (cancelHeader, _) = await c.CallAsync(MessageType.WatchCancel, w => w.U64(watches[0].Id));
        Assert.Equal(MessageType.WatchCancel, cancelHeader.Type);
        await foreach (var (h, _) in watches[0].Stream.Reader.ReadAllAsync())
        {
            if ((h.Flags & FrameFlags.Last) != 0) break;
        }
        await TestCluster.EventuallyAsync(() => m.Sessions.Sum(s => s.InFlight) == 1, "the ended watch leaves the in-flight set");
        await c.PutAsync("b", "2");
        Assert.Equal("2", await c.GetAsync("b"));
        Assert.Contains("cairn_client_requests_refused_in_flight_total 1", m.MetricsText(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Silent_and_slow_clients_are_cut_off_after_the_handshake_and_idle_timeouts_while_others_are_served()
    {
        await using var cluster = new TestCluster(1)
        {
            // Long enough that the busy client below never pauses this long between two puts, even on a loaded machine
            // (a CI run with every test project at once once stalled it for over 400 ms and it was rightly cut off).
            Customize = (_, o) => o with { HandshakeTimeout = TimeSpan.FromMilliseconds(1000), IdleTimeout = TimeSpan.FromMilliseconds(1500) },
        };
        await cluster.StartAllAsync();
        var m = cluster.Members["m1"]!;

        // A watcher: idle, but with a watch open, so it holds a stream the member must keep.
        await using var watcher = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
        var events = watcher.OpenStream(out var watchId);
        await watcher.SendAsync(MessageType.WatchCreate, watchId, w => Messages.WriteWatchCreate(w, new WatchRequest { Key = TestClient.Bytes("late") }));
        Assert.Equal(MessageType.WatchCreate, (await events.Reader.ReadAsync()).Item1.Type);

        // A busy client keeps working throughout.
        using var stop = new CancellationTokenSource();
        var busy = Task.Run(async () =>
        {
            await using var c = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"));
            var n = 0;
            while (!stop.IsCancellationRequested) await c.PutAsync("busy", $"{n++}");
            return n;
        });

        // Silent from the start: no hello within the handshake timeout.
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(m.ClientEndpoint);
        // Says hello, then nothing.
        using var idle = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await idle.ConnectAsync(m.ClientEndpoint);
        // Says hello, then half a frame, then nothing.
        using var slow = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await slow.ConnectAsync(m.ClientEndpoint);
        using (var w = new FrameWriter(64))
        {
            w.BeginFrame(MessageType.Hello, FrameFlags.None, 1);
            Messages.WriteHello(w);
            w.EndFrame();
            await idle.SendAsync(w.Written, SocketFlags.None);
            await slow.SendAsync(w.Written, SocketFlags.None);
            await slow.SendAsync(new byte[] { 40, 0, 0, 0, 11, 0, 0, 0 }, SocketFlags.None);
        }

        await using (var s = new NetworkStream(silent))
        {
            var (h, payload) = await SecurityTests.ReadFrameAsync(s) ?? throw new Xunit.Sdk.XunitException("closed without a word");
            Assert.Equal(0UL, h.RequestId);
            var (code, message) = SecurityTests.ReadError(payload);
            Assert.Equal(ErrorCode.IdleTimeout, code);
            Assert.Contains("no hello", message, StringComparison.Ordinal);
            Assert.Null(await SecurityTests.ReadFrameAsync(s));
        }
        foreach (var socket in new[] { idle, slow })
        {
            await using var s = new NetworkStream(socket);
            Assert.Equal(MessageType.Hello, (await SecurityTests.ReadFrameAsync(s))!.Value.Header.Type);
            var (h, payload) = await SecurityTests.ReadFrameAsync(s) ?? throw new Xunit.Sdk.XunitException("closed without a word");
            Assert.Equal(MessageType.Error, h.Type);
            var (code, message) = SecurityTests.ReadError(payload);
            Assert.Equal(ErrorCode.IdleTimeout, code);
            Assert.Contains("--idle-timeout", message, StringComparison.Ordinal);
            Assert.Null(await SecurityTests.ReadFrameAsync(s));
        }
        Assert.Equal(1, m.Stats.HandshakeTimeouts);
        Assert.True(m.Stats.IdleClosed >= 2);

        // The watcher outlived them (its watch is a stream in flight) and the busy client was served all along.
        await using (var writer = await TestClient.ConnectAsync(cluster.ClientEndpoint("m1"))) await writer.PutAsync("late", "event");
        var (evh, _) = await events.Reader.ReadAsync();
        Assert.Equal(MessageType.WatchEvents, evh.Type);
        Assert.False(watcher.Closed);
        stop.Cancel();
        Assert.True(await busy > 0);
    }

    [Fact]
    public async Task A_client_that_never_finishes_its_tls_handshake_is_cut_off()
    {
        using var pki = new TestPki();
        await using var cluster = new TestCluster(1)
        {
            Customize = (_, o) => o with { ClientCertFile = pki.Member.Cert, ClientKeyFile = pki.Member.Key, HandshakeTimeout = TimeSpan.FromMilliseconds(300) },
        };
        await cluster.StartAllAsync();
        var m = cluster.Members["m1"]!;
        using var silent = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await silent.ConnectAsync(m.ClientEndpoint);
        // Half a TLS record header, then nothing.
        await silent.SendAsync(new byte[] { 0x16, 0x03 }, SocketFlags.None);
        await using (var s = new NetworkStream(silent)) Assert.Null(await SecurityTests.ReadFrameAsync(s));
        Assert.Equal(1, m.Stats.HandshakeTimeouts);
        Assert.Contains(cluster.Log, l => l.Contains("did not finish its TLS handshake", StringComparison.Ordinal));
        await using var c = new CairnClient(new CairnClientOptions { Endpoints = [m.ClientEndpoint.ToString()], DiscoverEndpoints = false, Tls = new CairnTlsOptions { CaFile = pki.CaFile } });
        await c.PutAsync("still", "served");
    }
}
