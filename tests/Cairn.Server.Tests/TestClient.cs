using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>A bare protocol client for the server's tests (the real client library has its own tests).</summary>
internal sealed class TestClient : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly ConcurrentDictionary<ulong, TaskCompletionSource<(FrameHeader Header, byte[] Payload)>> _pending = new();
    private readonly ConcurrentDictionary<ulong, Channel<(FrameHeader, byte[])>> _streams = new();
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly Task _reader;
    private long _next;

    private TestClient(Socket socket)
    {
        _socket = socket;
        _reader = ReadLoopAsync();
    }

    public bool Closed { get; private set; }

    public static async Task<TestClient> ConnectAsync(IPEndPoint endpoint, bool hello = true)
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(endpoint);
        var c = new TestClient(socket);
        if (hello)
        {
            var (h, _) = await c.CallAsync(MessageType.Hello, w => Messages.WriteHello(w));
            Assert.Equal(MessageType.Hello, h.Type);
        }
        return c;
    }

    public ulong NextId() => (ulong)Interlocked.Increment(ref _next);

    public async Task SendRawAsync(ReadOnlyMemory<byte> bytes)
    {
        await _send.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, SocketFlags.None);
        }
        finally
        {
            _send.Release();
        }
    }

    public async Task<(FrameHeader Header, byte[] Payload)> CallAsync(MessageType type, Action<FrameWriter> body, TimeSpan? timeout = null)
    {
        var id = NextId();
        var tcs = new TaskCompletionSource<(FrameHeader, byte[])>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = tcs;
        using var w = new FrameWriter();
        w.BeginFrame(type, FrameFlags.None, id);
        body(w);
        w.EndFrame();
        await SendRawAsync(w.Written.ToArray());
        return await tcs.Task.WaitAsync(timeout ?? TimeSpan.FromSeconds(20));
    }

    public Channel<(FrameHeader, byte[])> OpenStream(out ulong id)
    {
        id = NextId();
        var ch = Channel.CreateUnbounded<(FrameHeader, byte[])>();
        _streams[id] = ch;
        return ch;
    }

    public async Task SendAsync(MessageType type, ulong id, Action<FrameWriter> body)
    {
        using var w = new FrameWriter();
        w.BeginFrame(type, FrameFlags.None, id);
        body(w);
        w.EndFrame();
        await SendRawAsync(w.Written.ToArray());
    }

    /// <summary>Expects an answer that is not an error and returns its reader positioned after the header.</summary>
    public static byte[] Ok((FrameHeader Header, byte[] Payload) answer, MessageType type)
    {
        if (answer.Header.Type == MessageType.Error)
        {
            var r = new PayloadReader(answer.Payload);
            var (code, message) = Messages.ReadError(ref r);
            throw new ServerError(code, message);
        }
        Assert.Equal(type, answer.Header.Type);
        return answer.Payload;
    }

    /// <summary>Retries what the member guarantees was not applied (no leader, busy, stopping), as a real client does.</summary>
    private static async Task<byte[]> RetryAsync(Func<Task<(FrameHeader, byte[])>> call, MessageType type)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            try
            {
                return Ok(await call(), type);
            }
            catch (ServerError e) when (e.Code is ErrorCode.NoLeader or ErrorCode.Busy && DateTime.UtcNow < deadline)
            {
                await Task.Delay(50);
            }
        }
    }

    public async Task<long> PutAsync(string key, string value)
    {
        var p = await RetryAsync(() => CallAsync(MessageType.Put, w => Messages.WritePut(w, new PutRequest { Key = Bytes(key), Value = Bytes(value) })), MessageType.Put);
        var r = new PayloadReader(p);
        return Messages.ReadHeader(ref r).Revision;
    }

    public async Task<RangeResponse> RangeAsync(RangeRequest request, Consistency consistency = Consistency.Linearizable)
    {
        var p = await RetryAsync(() => CallAsync(MessageType.Range, w => Messages.WriteRange(w, request, consistency)), MessageType.Range);
        var r = new PayloadReader(p);
        var h = Messages.ReadHeader(ref r);
        return Messages.ReadRangeResponse(ref r, h.Revision);
    }

    public async Task<string?> GetAsync(string key, Consistency consistency = Consistency.Linearizable)
    {
        var resp = await RangeAsync(new RangeRequest { Key = Bytes(key) }, consistency);
        return resp.Kvs.Count == 0 ? null : System.Text.Encoding.UTF8.GetString(resp.Kvs[0].Value);
    }

    public async Task<MemberInfo[]> MembersAsync()
    {
        var p = Ok(await CallAsync(MessageType.MemberList, _ => { }), MessageType.MemberList);
        var r = new PayloadReader(p);
        Messages.ReadHeader(ref r);
        return Messages.ReadMembers(ref r);
    }

    public static byte[] Bytes(string s) => System.Text.Encoding.UTF8.GetBytes(s);

    private async Task ReadLoopAsync()
    {
        var header = new byte[Frame.HeaderSize];
        try
        {
            while (true)
            {
                if (!await ReadExactlyAsync(header)) break;
                Frame.TryReadHeader(header, out var h);
                var payload = new byte[h.PayloadLength];
                if (!await ReadExactlyAsync(payload)) break;
                if (_streams.TryGetValue(h.RequestId, out var ch))
                {
                    ch.Writer.TryWrite((h, payload));
                    continue;
                }
                if (_pending.TryRemove(h.RequestId, out var tcs)) tcs.TrySetResult((h, payload));
                else if (h.RequestId == 0 && h.Type == MessageType.Error)
                {
                    foreach (var id in _pending.Keys) if (_pending.TryRemove(id, out var t)) t.TrySetResult((h, payload));
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        Closed = true;
        foreach (var id in _pending.Keys) if (_pending.TryRemove(id, out var t)) t.TrySetException(new IOException("connection closed"));
        foreach (var ch in _streams.Values) ch.Writer.TryComplete();
    }

    private async Task<bool> ReadExactlyAsync(Memory<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = await _socket.ReceiveAsync(buffer, SocketFlags.None);
            if (n == 0) return false;
            buffer = buffer[n..];
        }
        return true;
    }

    public async ValueTask DisposeAsync()
    {
        _socket.Dispose();
        await _reader;
        _send.Dispose();
    }
}

internal sealed class ServerError(ErrorCode code, string message) : Exception($"{code}: {message}")
{
    public ErrorCode Code { get; } = code;
}
