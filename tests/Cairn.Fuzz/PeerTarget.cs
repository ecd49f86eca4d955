using System.Net.Sockets;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Server;

namespace Cairn.Fuzz;

/// <summary>
/// Peer links (net/Cairn.Server): the input is the byte stream a member receives on an inbound peer link. It is sent
/// through a real socket and read with the member's own <see cref="FrameReader"/>; each frame goes where
/// PeerTransport sends it — <see cref="PeerCodec.ReadHello"/>, <see cref="PeerCodec.ReadMessage"/>,
/// <see cref="PeerCodec.ReadForward"/> (and the forwarded client request's decoder), <see cref="PeerCodec.ReadForwardReply"/>
/// with <see cref="PeerCodec.TryReadFrame"/> (and the client's answer decoders). As on a real link, the first refusal
/// ends the stream. Clean: <see cref="ProtocolException"/> (malformed, too large), and <see cref="IOException"/> from
/// the reader when the stream ends in the middle of a frame.
/// </summary>
public sealed class PeerTarget : FuzzTarget
{
    /// <summary>Frame limit of the fuzzed link (a member's is 64 MiB; smaller here so the allocation bound stays meaningful).</summary>
    public const int MaxFrame = 1 << 20;

    private readonly Lazy<IReadOnlyList<byte[]>> _seeds = new(PeerSeeds.All); // lazy: under AFL, instrumented code runs only after the fork server starts
    private readonly string _path = Path.Combine(Path.GetTempPath(), $"cairn-fuzz-peer-{Environment.ProcessId}-{Guid.NewGuid():N}.sock");
    private Socket? _listener;

    /// <inheritdoc/>
    public override string Name => "peer";

    /// <inheritdoc/>
    public override IReadOnlyList<byte[]> Seeds => _seeds.Value;

    /// <inheritdoc/>
    public override string CleanExceptions => "ProtocolException, IOException (stream ended inside a frame)";

    /// <inheritdoc/>
    public override bool IsClean(Exception e) => e is ProtocolException or IOException;

    /// <summary>The reader may buffer one whole frame up to the link's limit before it is complete: that, plus the per-input allowance.</summary>
    public override long AllocationBound(int inputLength) => 2L * MaxFrame + base.AllocationBound(inputLength);

    /// <inheritdoc/>
    public override void RunSeed(byte[] input) => ProtocolTarget.Strict(() => Run(input));

    /// <summary>Peer frames decoded per input when set (for the direct, socket-free path used by the AFL harness).</summary>
    public bool WithoutSocket { get; init; }

    /// <inheritdoc/>
    public override void Run(byte[] input)
    {
        if (WithoutSocket)
        {
            RunFrames(input);
            return;
        }
        lock (_path)
        {
            if (_listener is null)
            {
                _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                _listener.Bind(new UnixDomainSocketEndPoint(_path));
                _listener.Listen(4);
            }
            using var sender = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            sender.Connect(new UnixDomainSocketEndPoint(_path));
            using var receiver = _listener.Accept();
            // Inputs are far below the socket buffer, so the whole stream is there before the reader starts.
            var sent = 0;
            while (sent < input.Length) sent += sender.Send(input.AsSpan(sent));
            sender.Shutdown(SocketShutdown.Send);
            using var stream = new NetworkStream(receiver, ownsSocket: false);
            using var reader = new FrameReader(stream, MaxFrame);
            var first = true;
            while (true)
            {
                var next = reader.ReadAsync(CancellationToken.None);
                var frame = next.IsCompleted ? next.Result : next.AsTask().GetAwaiter().GetResult();
                if (frame is not var (h, payload)) return;
                Dispatch(h, payload.Span, first);
                first = false;
            }
        }
    }

    private static void RunFrames(ReadOnlySpan<byte> data)
    {
        var first = true;
        while (Frame.TryReadHeader(data, out var h))
        {
            if (h.PayloadLength > MaxFrame) throw new ProtocolException(ErrorCode.FrameTooLarge, "peer frame over the limit");
            if (!PeerCodec.TryReadFrame(ref data, out h, out var payload)) throw new IOException("the stream ended in the middle of a frame");
            Dispatch(h, payload, first);
            first = false;
        }
        if (!data.IsEmpty) throw new IOException("the stream ended in the middle of a header");
    }

    /// <summary>One peer frame, as PeerTransport.ServeAsync / ServeRaftAsync / ReceiveSnapshotAsync handle it.</summary>
    private static void Dispatch(in FrameHeader h, ReadOnlySpan<byte> payload, bool first)
    {
        if (first && h.Type != MessageType.PeerHello) throw new ProtocolException(ErrorCode.Malformed, "a peer link must start with a peer hello");
        switch (h.Type)
        {
            case MessageType.PeerHello:
                if (!first) throw new ProtocolException(ErrorCode.Malformed, "unexpected PeerHello on a raft link");
                if ((h.Flags & FrameFlags.Response) != 0)
                {
                    var r = new PayloadReader(payload);
                    _ = r.U64();
                    r.End();
                }
                else
                {
                    _ = PeerCodec.ReadHello(payload);
                }
                break;
            case MessageType.PeerChallenge:
                // The listener's nonce and proof (PeerHandshake.DialAsync): fixed sizes, checked before use.
                if (payload.Length != 2 * PeerCodec.NonceBytes) throw new ProtocolException(ErrorCode.Malformed, "a peer challenge is a nonce and a proof");
                break;
            case MessageType.PeerProof:
                if (payload.Length != PeerCodec.NonceBytes) throw new ProtocolException(ErrorCode.PeerAuthFailed, "a peer proof is one HMAC");
                break;
            case MessageType.PeerRaft:
            {
                var m = PeerCodec.ReadMessage(payload);
                _ = m.Entries?.Count;
                break;
            }
            case MessageType.PeerForward:
            {
                _ = PeerCodec.ReadForward(payload, out var inner, out var request);
                try
                {
                    ProtocolTarget.DecodeRequest(inner, request);
                }
                catch (ProtocolException e)
                {
                    ProtocolTarget.Refused(e); // answered with an error to the follower; the link carries on
                }
                break;
            }
            case MessageType.PeerForwardReply:
            {
                _ = PeerCodec.ReadForwardReply(payload, out var frames);
                while (PeerCodec.TryReadFrame(ref frames, out var ih, out var answer))
                {
                    try
                    {
                        ProtocolTarget.DecodeResponse(ih, answer);
                    }
                    catch (ProtocolException e)
                    {
                        ProtocolTarget.Refused(e); // the client is told its answer was malformed
                    }
                }
                break;
            }
            case MessageType.PeerSnapshotChunk:
                break; // raw LZ4 bytes, checked when the dump is read
            default:
                throw new ProtocolException(ErrorCode.Malformed, $"unexpected {h.Type} on a peer link");
        }
    }

    /// <inheritdoc/>
    public override void Dispose()
    {
        _listener?.Dispose();
        try
        {
            File.Delete(_path);
        }
        catch (IOException)
        {
        }
        base.Dispose();
    }
}

/// <summary>Valid peer-link streams written by <see cref="PeerCodec"/>: hellos of each kind, a Raft message of every type, forwards, replies and snapshot chunks.</summary>
public static class PeerSeeds
{
    private static byte[] Frames(Action<FrameWriter> write)
    {
        using var w = new FrameWriter(512);
        write(w);
        return w.WrittenSpan.ToArray();
    }

    /// <summary>Every Raft message type, some with entries and a snapshot.</summary>
    public static IReadOnlyList<Message> Messages()
    {
        var entries = new[]
        {
            new LogEntry(5, 2, [1, 2, 3]),
            new LogEntry(6, 2, []),
            new LogEntry(7, 3, new ConfigChange(ConfigChangeType.AddLearner, 0xA4).Encode("m4"u8), EntryKind.Config),
        };
        var list = new List<Message>();
        foreach (var t in Enum.GetValues<RaftMessageType>())
        {
            list.Add(new Message(t, 0xA1, 0xA2, 3, 2, 4, t == RaftMessageType.Append ? entries : null, 4, t == RaftMessageType.AppendResponse, 9,
                t == RaftMessageType.Snapshot ? new SnapshotMetadata(40, 3, [0xA1, 0xA2, 0xA3], [0xA4]) : null));
        }
        return list;
    }

    private static readonly byte[] Nonce = [.. Enumerable.Range(0, PeerCodec.NonceBytes).Select(i => (byte)i)];

    /// <summary>Seed streams.</summary>
    public static IReadOnlyList<byte[]> All()
    {
        var seeds = new List<byte[]>();
        var hello = Frames(w => PeerCodec.WriteHello(w, 0xC1C1, 0xA1, 0xA2, PeerCodec.LinkKind.Raft, Nonce));
        var snapHello = Frames(w => PeerCodec.WriteHello(w, 0xC1C1, 0xA1, 0xA2, PeerCodec.LinkKind.Snapshot, Nonce));
        var queryHello = Frames(w => PeerCodec.WriteHello(w, 0, 0xA4, 0xA2, PeerCodec.LinkKind.Query, Nonce));
        var helloAnswer = Frames(w =>
        {
            w.BeginFrame(MessageType.PeerHello, FrameFlags.Response, 0);
            w.U64(0xC1C1);
            w.EndFrame();
        });
        seeds.Add(hello);
        seeds.Add(queryHello);
        seeds.Add(helloAnswer);
        // The handshake after the hello: the listener's challenge (nonce, proof), the dialer's proof, then the answer.
        seeds.Add([.. hello, .. Frames(w =>
        {
            w.BeginFrame(MessageType.PeerChallenge, FrameFlags.Response, 0);
            w.Raw(Nonce);
            w.Raw(Nonce);
            w.EndFrame();
            w.BeginFrame(MessageType.PeerProof, FrameFlags.None, 0);
            w.Raw(Nonce);
            w.EndFrame();
        })]);
        foreach (var m in Messages()) seeds.Add([.. hello, .. Frames(w => PeerCodec.WriteMessage(w, m))]);
        var requests = ProtocolSeeds.Requests();
        var responses = ProtocolSeeds.Responses();
        for (var i = 0; i < requests.Count; i += 4)
        {
            var request = requests[i];
            var forward = Frames(w =>
            {
                w.BeginFrame(MessageType.PeerForward, FrameFlags.None, 0);
                w.U64((ulong)i + 1);
                w.Raw(request);
                w.EndFrame();
            });
            seeds.Add([.. hello, .. forward]);
        }
        for (var i = 0; i < responses.Count; i += 4)
        {
            var answers = responses.Skip(i).Take(3).SelectMany(f => f).ToArray();
            var reply = Frames(w =>
            {
                w.BeginFrame(MessageType.PeerForwardReply, FrameFlags.Response, 0);
                w.U64((ulong)i + 1);
                w.Raw(answers);
                w.EndFrame();
            });
            seeds.Add([.. hello, .. reply]);
        }
        var snapshot = PeerSeeds.Messages().First(m => m.Type == RaftMessageType.Snapshot);
        seeds.Add([.. snapHello, .. Frames(w =>
        {
            PeerCodec.WriteMessage(w, snapshot);
            w.BeginFrame(MessageType.PeerSnapshotChunk, FrameFlags.None, 0);
            w.Raw([0x04, 0x22, 0x4D, 0x18, 1, 2, 3]);
            w.EndFrame();
            w.BeginFrame(MessageType.PeerSnapshotChunk, FrameFlags.Last, 0);
            w.EndFrame();
        })]);
        // A busy raft link: every message back to back.
        seeds.Add([.. hello, .. Messages().SelectMany(m => Frames(w => PeerCodec.WriteMessage(w, m)))]);
        return seeds;
    }
}
