using System.Net;
using System.Net.Sockets;
using System.Text;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client.Tests;

/// <summary>
/// A scripted member: it answers the hello, then hands every request to a script that answers it, refuses it, drops
/// it, or closes the connection. The retry rules are checked against exactly what reached it.
/// </summary>
internal sealed class FakeMember : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<FrameHeader, byte[], Reply> _script;
    private readonly List<Socket> _sockets = [];

    public FakeMember(Func<FrameHeader, byte[], Reply> script)
    {
        _script = script;
        _listener.Start();
        _ = AcceptAsync();
    }

    public string Endpoint => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    /// <summary>Every request received (not the hello), in order.</summary>
    public List<FrameHeader> Received { get; } = [];

    public abstract record Reply;

    /// <summary>An answer: the header, then what <paramref name="Body"/> writes.</summary>
    public sealed record Answer(Action<FrameWriter> Body, long Revision = 1) : Reply;

    public sealed record Refuse(ErrorCode Code, string Message) : Reply;

    public sealed record Close : Reply;

    /// <summary>Keep it: the script answers later with <see cref="Respond"/> (out of order).</summary>
    public sealed record Hold : Reply;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket s;
            try
            {
                s = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception)
            {
                return;
            }
            lock (_sockets) _sockets.Add(s);
            _ = ServeAsync(s);
        }
    }

    private async Task ServeAsync(Socket s)
    {
        var buffer = new byte[1 << 20];
        var filled = 0;
        try
        {
            while (true)
            {
                var n = await s.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token);
                if (n == 0) return;
                filled += n;
                while (Frame.TryReadHeader(buffer.AsSpan(0, filled), out var h) && filled >= Frame.HeaderSize + (int)h.PayloadLength)
                {
                    var payload = buffer.AsSpan(Frame.HeaderSize, (int)h.PayloadLength).ToArray();
                    var total = Frame.HeaderSize + (int)h.PayloadLength;
                    buffer.AsSpan(total, filled - total).CopyTo(buffer);
                    filled -= total;
                    if (h.Type == MessageType.Hello)
                    {
                        await SendAsync(s, w =>
                        {
                            w.BeginFrame(MessageType.Hello, FrameFlags.Response, h.RequestId);
                            Messages.WriteHelloResponse(w, new HelloResponse(Frame.Version, 7, 9, Frame.DefaultMaxFrameBytes));
                            w.EndFrame();
                        });
                        continue;
                    }
                    lock (Received) Received.Add(h);
                    switch (_script(h, payload))
                    {
                        case Close:
                            s.Close();
                            return;
                        case Hold:
                            lock (_held) _held.Add((s, h));
                            break;
                        case var reply:
                            await RespondAsync(s, h, reply);
                            break;
                    }
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or OperationCanceledException)
        {
        }
    }

    private readonly List<(Socket Socket, FrameHeader Header)> _held = [];

    /// <summary>Answers the held requests, in the order given by <paramref name="order"/>.</summary>
    public async Task ReleaseHeldAsync(Func<IReadOnlyList<FrameHeader>, IEnumerable<(FrameHeader Header, Reply Reply)>> order)
    {
        List<(Socket Socket, FrameHeader Header)> held;
        lock (_held) held = [.. _held];
        foreach (var (h, reply) in order([.. held.Select(x => x.Header)]))
        {
            await RespondAsync(held.First(x => x.Header == h).Socket, h, reply);
        }
    }

    public int HeldCount
    {
        get { lock (_held) return _held.Count; }
    }

    private static Task RespondAsync(Socket s, FrameHeader h, Reply reply) => SendAsync(s, w =>
    {
        switch (reply)
        {
            case Answer a:
                w.BeginFrame(h.Type, FrameFlags.Response, h.RequestId);
                Messages.WriteHeader(w, new WireHeader(7, 9, a.Revision, 1));
                a.Body(w);
                w.EndFrame();
                break;
            case Refuse r:
                w.BeginFrame(MessageType.Error, FrameFlags.Response, h.RequestId);
                Messages.WriteError(w, r.Code, r.Message);
                w.EndFrame();
                break;
        }
    });

    private static async Task SendAsync(Socket s, Action<FrameWriter> write)
    {
        using var w = new FrameWriter();
        write(w);
        await s.SendAsync(w.Written, SocketFlags.None);
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        lock (_sockets) foreach (var s in _sockets) s.Dispose();
        _stop.Dispose();
    }
}

/// <summary>The client's retry rules, against scripted members: what is sent again, what is not, and what is reported.</summary>
public sealed class RetryTests
{
    private static CairnClient Client(params string[] endpoints) => new(new CairnClientOptions
    {
        Endpoints = endpoints,
        DiscoverEndpoints = false,
        ConnectTimeout = TimeSpan.FromSeconds(1),
        RequestTimeout = TimeSpan.FromSeconds(3),
        RetryBackoff = TimeSpan.FromMilliseconds(5),
    });

    private static readonly FakeMember.Answer PutOk = new(w => w.Bool(false));

    private static FakeMember.Answer RangeOf(string value) => new(w =>
    {
        w.Count(1);
        Messages.WriteKv(w, "k"u8, Encoding.UTF8.GetBytes(value), 1, 1, 1, 0);
        w.Bool(false);
        w.I64(1);
    });

    private static int Count(FakeMember m, MessageType type)
    {
        lock (m.Received) return m.Received.Count(h => h.Type == type);
    }

    [Fact]
    public async Task A_write_refused_with_NoLeader_Busy_or_Stopping_is_sent_again_until_it_succeeds()
    {
        var refusals = new Queue<ErrorCode>([ErrorCode.NoLeader, ErrorCode.Busy, ErrorCode.NoLeader]);
        await using var m = new FakeMember((h, _) => refusals.TryDequeue(out var code) ? new FakeMember.Refuse(code, "not now") : PutOk);
        await using var client = Client(m.Endpoint);
        var (header, _) = await client.PutAsync("k", "v");
        Assert.Equal(9UL, header.MemberId);
        Assert.Equal(4, Count(m, MessageType.Put));
    }

    [Fact]
    public async Task A_write_lost_with_its_connection_after_sending_is_an_unknown_outcome_and_is_not_sent_again()
    {
        await using var a = new FakeMember((h, _) => new FakeMember.Close());
        await using var b = new FakeMember((h, _) => PutOk);
        await using var client = Client(a.Endpoint, b.Endpoint);
        var e = await Assert.ThrowsAsync<CairnUnknownOutcomeException>(() => client.PutAsync("k", "v"));
        Assert.Contains(a.Endpoint, e.Message);
        Assert.Null(e.Code);
        Assert.Equal(1, Count(a, MessageType.Put));
        Assert.Equal(0, Count(b, MessageType.Put));
        // The client moved on: the next write goes to the other member.
        await client.PutAsync("k", "v2");
        Assert.Equal(1, Count(b, MessageType.Put));
    }

    [Fact]
    public async Task A_write_the_member_timed_out_is_an_unknown_outcome()
    {
        await using var m = new FakeMember((h, _) => new FakeMember.Refuse(ErrorCode.Timeout, "the leader did not answer in time"));
        await using var client = Client(m.Endpoint);
        var e = await Assert.ThrowsAsync<CairnUnknownOutcomeException>(() => client.TxnAsync(new TxnRequest()));
        Assert.Equal(ErrorCode.Timeout, e.Code);
        Assert.Equal(1, Count(m, MessageType.Txn));
    }

    [Fact]
    public async Task A_read_lost_with_its_connection_or_timed_out_is_retried_on_the_next_member()
    {
        var first = true;
        await using var a = new FakeMember((h, _) =>
        {
            if (!first) return new FakeMember.Refuse(ErrorCode.Timeout, "slow");
            first = false;
            return new FakeMember.Close();
        });
        await using var b = new FakeMember((h, _) => RangeOf("from b"));
        await using var client = Client(a.Endpoint, b.Endpoint);
        var (_, kv) = await client.GetAsync("k");
        Assert.Equal("from b", Encoding.UTF8.GetString(kv!.Value));
        Assert.Equal(b.Endpoint, client.CurrentEndpoint);

        var ranges = 0;
        await using var c = new FakeMember((h, _) => ++ranges < 3 ? new FakeMember.Refuse(ErrorCode.Timeout, "slow") : RangeOf("third time"));
        await using var only = Client(c.Endpoint);
        Assert.Equal("third time", Encoding.UTF8.GetString((await only.GetAsync("k")).Body!.Value));
        Assert.Equal(3, Count(c, MessageType.Range));
    }

    [Fact]
    public async Task Stopping_moves_the_client_to_the_next_member()
    {
        await using var a = new FakeMember((h, _) => new FakeMember.Refuse(ErrorCode.Stopping, "stopping"));
        await using var b = new FakeMember((h, _) => PutOk);
        await using var client = Client(a.Endpoint, b.Endpoint);
        await client.PutAsync("k", "v");
        Assert.Equal((1, 1), (Count(a, MessageType.Put), Count(b, MessageType.Put)));
        Assert.Equal(b.Endpoint, client.CurrentEndpoint);
    }

    [Fact]
    public async Task Other_refusals_are_thrown_at_once_and_a_retried_read_gives_up_with_the_last_refusal()
    {
        await using var m = new FakeMember((h, _) => h.Type == MessageType.Put ? new FakeMember.Refuse(ErrorCode.InvalidArgument, "key too long") : new FakeMember.Refuse(ErrorCode.NoLeader, "no leader"));
        await using var client = Client(m.Endpoint);
        var e = await Assert.ThrowsAsync<CairnException>(() => client.PutAsync("k", "v"));
        Assert.Equal((ErrorCode.InvalidArgument, "key too long"), (e.Code, e.Message));
        Assert.Equal(1, Count(m, MessageType.Put));
        var started = DateTime.UtcNow;
        var read = await Assert.ThrowsAsync<CairnException>(() => client.GetAsync("k"));
        Assert.Equal(ErrorCode.NoLeader, read.Code);
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromSeconds(2.5), TimeSpan.FromSeconds(10)); // retried until the request timeout
        Assert.True(Count(m, MessageType.Range) > 3);
    }

    [Fact]
    public async Task Answers_released_in_reverse_order_reach_their_own_requests()
    {
        await using var m = new FakeMember((h, _) => new FakeMember.Hold());
        await using var client = Client(m.Endpoint);
        var calls = Enumerable.Range(0, 50).Select(i => client.GetAsync($"k{i}")).ToList();
        await TestCluster.EventuallyAsync(() => Task.FromResult(m.HeldCount == 50), "every request reached the member");
        // The member answers each request with its own id in the value, last request first.
        await m.ReleaseHeldAsync(held => held.Reverse().Select(h => (h, (FakeMember.Reply)RangeOf($"answer to {h.RequestId}"))));
        var answers = await Task.WhenAll(calls);
        var ids = new HashSet<string>(answers.Select(a => Encoding.UTF8.GetString(a.Body!.Value)));
        Assert.Equal(50, ids.Count);
        lock (m.Received) Assert.Equal(m.Received.Select(h => $"answer to {h.RequestId}").Order(), ids.Order());
    }

    [Fact]
    public async Task A_malformed_answer_fails_only_its_request()
    {
        await using var m = new FakeMember((h, payload) => Encoding.UTF8.GetString(payload).Contains("bad", StringComparison.Ordinal)
            ? new FakeMember.Answer(w => w.U8(7))                 // a range body cut short
            : RangeOf("fine"));
        await using var client = Client(m.Endpoint);
        var e = await Assert.ThrowsAsync<CairnException>(() => client.GetAsync("bad"));
        Assert.Equal(ErrorCode.Malformed, e.Code);
        Assert.Contains("malformed Range response", e.Message);
        Assert.Equal("fine", Encoding.UTF8.GetString((await client.GetAsync("good")).Body!.Value));
        Assert.Equal(1, client.OpenConnections);
    }
}
