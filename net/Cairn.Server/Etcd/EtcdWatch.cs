using System.Net;
using System.Threading.Channels;
using Cairn.Protocol;
using Google.Protobuf;
using Grpc.Core;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: the gRPC request threads; each Watch stream reads its requests on its call's task.
/// etcd's Watch service: one bidirectional stream holds many watches. Each stream is a client of the request router,
/// as a raw-protocol session is: a create is a WatchCreate request whose id is the watch id, and the frames the
/// member pushes for it become etcd's watch responses.
/// </summary>
internal sealed class EtcdWatch(EtcdGateway gateway) : Api.Watch.WatchBase
{
    public override async Task Watch(IAsyncStreamReader<Api.WatchRequest> requestStream, IServerStreamWriter<Api.WatchResponse> responseStream, ServerCallContext context)
    {
        using var closed = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        using var stream = new EtcdWatchStream(gateway.Authenticate(context, out _), EtcdGateway.Remote(context), closed.Token);
        var writer = WriteAllAsync(stream, responseStream, closed.Token);
        try
        {
            long nextId = 0;
            ulong nextCancel = 0;
            await foreach (var request in requestStream.ReadAllAsync(context.CancellationToken).ConfigureAwait(false))
            {
                switch (request.RequestUnionCase)
                {
                    case Api.WatchRequest.RequestUnionOneofCase.CreateRequest:
                    {
                        var q = request.CreateRequest;
                        long id;
                        if (q.WatchId != 0) id = q.WatchId;
                        else
                        {
                            while (stream.Watches.Has((ulong)nextId)) nextId++;
                            id = nextId++;
                        }
                        stream.Send(gateway.Member, MessageType.WatchCreate, (ulong)id, q, static (w, q) =>
                        {
                            var noPut = q.Filters.Contains(Api.WatchCreateRequest.Types.FilterType.Noput);
                            var noDelete = q.Filters.Contains(Api.WatchCreateRequest.Types.FilterType.Nodelete);
                            Messages.WriteWatchCreate(w, new Kv.WatchRequest
                            {
                                Key = q.Key.ToByteArray(), RangeEnd = q.RangeEnd.ToByteArray(), StartRevision = Math.Max(q.StartRevision, 0),
                                PrevKv = q.PrevKv, NoPut = noPut, NoDelete = noDelete, ProgressNotify = q.ProgressNotify,
                            });
                        });
                        break;
                    }
                    case Api.WatchRequest.RequestUnionOneofCase.CancelRequest:
                        // Cancel requests take ids of their own (top bit set), apart from the watch ids.
                        stream.Send(gateway.Member, MessageType.WatchCancel, (1UL << 63) | nextCancel++, (ulong)request.CancelRequest.WatchId, static (w, id) => w.U64(id));
                        break;
                    case Api.WatchRequest.RequestUnionOneofCase.ProgressRequest:
                        // Each watch of the stream answers with its progress (no events, the revision it has reached), in order with its events.
                        stream.Watches.RequestProgress();
                        break;
                    default:
                        break;
                }
            }
        }
        finally
        {
            await closed.CancelAsync().ConfigureAwait(false);
            stream.Complete();
            try
            {
                await writer.ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
            }
        }
    }

    private static async Task WriteAllAsync(EtcdWatchStream stream, IServerStreamWriter<Api.WatchResponse> responseStream, CancellationToken cancellationToken)
    {
        await foreach (var response in stream.Responses.ReadAllAsync(cancellationToken).ConfigureAwait(false))
            await responseStream.WriteAsync(response, cancellationToken).ConfigureAwait(false);
    }
}

/// <summary>
/// Owner: one Watch stream; the member's watch pumps write frames from their own tasks (under the lock), the
/// stream's writer task sends what they became.
/// </summary>
internal sealed class EtcdWatchStream : ClientResponder, IDisposable
{
    private readonly FrameWriter _out = new(4096);
    private readonly FrameWriter _request = new(256);
    private readonly Lock _lock = new();
    private readonly Channel<Api.WatchResponse> _responses = Channel.CreateUnbounded<Api.WatchResponse>(new UnboundedChannelOptions { SingleReader = true });
    private readonly IPAddress? _remote;
    private readonly CancellationToken _closed;

    public EtcdWatchStream(SessionAuth? auth, IPAddress? remote, CancellationToken closed)
    {
        Auth = auth;
        _remote = remote;
        _closed = closed;
    }

    public ChannelReader<Api.WatchResponse> Responses => _responses.Reader;

    public override IPAddress? RemoteAddress => _remote;

    public override CancellationToken Closed => _closed;

    public override bool IsOpen => !_closed.IsCancellationRequested;

    public override Task DrainAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Hands one request of this stream to the router.</summary>
    public void Send<T>(Member member, MessageType type, ulong id, T state, Action<FrameWriter, T> write)
    {
        // The router answers synchronously or from other threads; the request frame is only read during Handle.
        lock (_request)
        {
            _request.Reset();
            _request.BeginFrame(type, 0, id);
            write(_request, state);
            _request.EndFrame();
            Frame.TryReadHeader(_request.WrittenSpan, out var h);
            member.Router.Handle(this, h, _request.WrittenSpan[Frame.HeaderSize..]);
        }
    }

    public void Complete()
    {
        Watches.CancelAll();
        _responses.Writer.TryComplete();
    }

    public override FrameWriter Begin()
    {
        _lock.Enter();
        return _out;
    }

    public override void End()
    {
        try
        {
            var span = _out.WrittenSpan;
            while (Frame.TryReadHeader(span, out var h) && span.Length >= Frame.HeaderSize + (int)h.PayloadLength)
            {
                var payload = span.Slice(Frame.HeaderSize, (int)h.PayloadLength);
                if (ToResponse(h, payload) is { } response) _responses.Writer.TryWrite(response);
                span = span[(Frame.HeaderSize + (int)h.PayloadLength)..];
            }
            _out.Reset();
        }
        finally
        {
            _lock.Exit();
        }
    }

    private static Api.WatchResponse? ToResponse(in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        var watchId = (long)h.RequestId;
        switch (h.Type)
        {
            case MessageType.WatchCreate:
                return new Api.WatchResponse { Header = EtcdGateway.Header(Messages.ReadHeader(ref r)), WatchId = watchId, Created = true };
            case MessageType.WatchEvents:
            {
                var response = new Api.WatchResponse { Header = EtcdGateway.Header(Messages.ReadHeader(ref r)), WatchId = watchId };
                response.Canceled = r.Bool();
                response.CompactRevision = r.I64();
                var n = r.Count(42);
                for (var i = 0; i < n; i++)
                {
                    var e = new Api.Event { Type = r.U8() == 0 ? Api.Event.Types.EventType.Put : Api.Event.Types.EventType.Delete };
                    e.Kv = EtcdKv.ReadKv(ref r);
                    if (r.Bool()) e.PrevKv = EtcdKv.ReadKv(ref r);
                    response.Events.Add(e);
                }
                if (response.Canceled && response.CompactRevision > 0) response.CancelReason = "etcdserver: mvcc: required revision has been compacted";
                return response;
            }
            case MessageType.Error when (h.RequestId >> 63) == 0:
            {
                var (_, message) = Messages.ReadError(ref r);
                // A refused create is answered created and canceled at once, as etcd does, so the client matches it to its request.
                return new Api.WatchResponse { WatchId = watchId, Created = true, Canceled = true, CancelReason = "etcdserver: " + message };
            }
            default:
                return null; // the answer to a cancel request (the watch's own canceled response follows), or an error for one
        }
    }

    public void Dispose()
    {
        _out.Dispose();
        _request.Dispose();
    }
}
