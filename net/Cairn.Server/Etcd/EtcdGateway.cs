using System.Collections.Concurrent;
using System.Net;
using Cairn.Protocol;
using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>Reads an answer's body (after its header) into etcd's response message.</summary>
internal delegate TResponse AnswerReader<TResponse>(ref PayloadReader r, Api.ResponseHeader header);

/// <summary>
/// Owner: the gRPC services (any request thread).
/// What etcd's gRPC API shares with the raw protocol: each call is written as a raw-protocol request frame and handed
/// to the member's <see cref="RequestRouter"/>, exactly as a session hands its frames, so auth, forwarding to the
/// leader, refusals and errors are the same through either front door (docs/etcd-compat.md). The answer frame is read
/// straight into etcd's response message; refusals become etcd's gRPC errors (<see cref="EtcdErrors"/>).
/// </summary>
internal sealed class EtcdGateway(Member member)
{
    private const int MaxCachedTokens = 10_000;
    private readonly BoundedPool<EtcdCall> _calls = new(1024);
    private readonly ConcurrentDictionary<string, SessionAuth> _tokens = new(StringComparer.Ordinal);
    private long _nextId;

    public Member Member => member;


    /// <summary>Runs one request through the router and reads its answer; a refusal throws etcd's <see cref="RpcException"/>.</summary>
    public async Task<TResponse> CallAsync<TRequest, TResponse>(MessageType type, TRequest request, ServerCallContext context,
        Action<FrameWriter, TRequest> write, AnswerReader<TResponse> read)
    {
        var call = _calls.TryRent() ?? new EtcdCall();
        var auth = Authenticate(context, out var tokenGiven);
        call.Begin((ulong)Interlocked.Increment(ref _nextId), auth, Remote(context), context.CancellationToken);
        var w = call.Request;
        w.BeginFrame(type, 0, call.Id);
        write(w, request);
        w.EndFrame();
        Frame.TryReadHeader(w.WrittenSpan, out var h);
        member.Router.Handle(call, h, w.WrittenSpan[Frame.HeaderSize..]);
        bool answered;
        using (context.CancellationToken.UnsafeRegister(static c => ((EtcdCall)c!).Cancel(), call))
        {
            answered = await call.WaitAsync().ConfigureAwait(false);
        }
        if (!answered) throw EtcdErrors.Error(StatusCode.Cancelled, "context canceled");
        try
        {
            return Read(call.AnswerFrame, read, member.Id, tokenGiven);
        }
        finally
        {
            _calls.Return(call);
        }
    }

    /// <summary>
    /// Reads one answer frame: etcd's response, or the refusal as etcd's error. The header names the member the client
    /// asked (<paramref name="memberId"/>), as etcd's does, also when the leader answered a forwarded request.
    /// </summary>
    public static TResponse Read<TResponse>(ReadOnlySpan<byte> frame, AnswerReader<TResponse> read, ulong memberId, bool tokenGiven = true)
    {
        Frame.TryReadHeader(frame, out var h);
        var r = new PayloadReader(frame.Slice(Frame.HeaderSize, (int)h.PayloadLength));
        if (h.Type == MessageType.Error)
        {
            var (code, message) = Messages.ReadError(ref r);
            // etcd answers a request without a token, when auth is on, with "user name is empty".
            if (code == ErrorCode.InvalidAuthToken && !tokenGiven) throw EtcdErrors.UserEmpty();
            throw EtcdErrors.From(code, message);
        }
        var header = Header(Messages.ReadHeader(ref r) with { MemberId = memberId });
        return read(ref r, header);
    }

    public static Api.ResponseHeader Header(in WireHeader h) => new() { ClusterId = h.ClusterId, MemberId = h.MemberId, Revision = h.Revision, RaftTerm = h.RaftTerm };

    /// <summary>The user a call's <c>token</c> metadata names (null: none, or not valid; the router then refuses what needs one).</summary>
    public SessionAuth? Authenticate(ServerCallContext context, out bool tokenGiven)
    {
        tokenGiven = false;
        string? token = null;
        foreach (var entry in context.RequestHeaders)
        {
            if (entry.Key == "token" || entry.Key == "authorization")
            {
                token = entry.Value;
                break;
            }
        }
        if (string.IsNullOrEmpty(token)) return null;
        tokenGiven = true;
        if (!member.AuthEnabled) return null;
        if (_tokens.TryGetValue(token, out var cached)) return cached;
        var auth = member.VerifyToken(token, out _);
        if (auth is null) return null;
        if (_tokens.Count >= MaxCachedTokens) _tokens.Clear(); // bounded memory; a cleared token is verified again
        _tokens[token] = auth;
        return auth;
    }

    /// <summary>The client's address, for a gRPC call or one that came through the JSON gateway.</summary>
    public static IPAddress? Remote(ServerCallContext context) =>
        context is JsonCallContext json ? json.Remote : context.GetHttpContext().Connection.RemoteIpAddress;
}
