using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using K4os.Compression.LZ4.Streams;

namespace Cairn.Server;

/// <summary>
/// Links to the other members over raw TCP (or TLS over it). Each member dials each peer once and sends on that stream only: Raft
/// messages and forwarded requests queue per peer and go out several per write, without waiting for
/// acknowledgements. A snapshot goes on a link of its own, in LZ4-compressed chunks, so it never holds up the Raft
/// stream. Every link opens with a handshake naming cluster, sender and receiver and proving the cluster's peer secret
/// (<see cref="PeerHandshake"/>); a peer of another cluster, or one without the secret, is refused.
/// A peer that is slow or down only fills its own queue (past its bound, messages are dropped and Raft resends). What
/// did not get through is reported to the Raft core (<see cref="Member.ReportUnreachable"/>, and each snapshot send's
/// outcome, <see cref="Member.ReportSnapshot"/>), which decides what to send again.
/// </summary>
internal sealed class PeerTransport : IDisposable
{
    public const int MaxPeerFrame = 64 << 20;

    private readonly IPeerHost _host;
    private readonly Socket _listener;
    private readonly int _maxQueue;
    private readonly ConcurrentDictionary<ulong, PeerLink> _links = new();
    private readonly CancellationTokenSource _stop = new();

    /// <summary>Serves peers that dial <paramref name="listener"/> (bound and listening: <see cref="MemberListeners"/>).</summary>
    public PeerTransport(IPeerHost host, Socket listener, int maxQueue)
    {
        _host = host;
        _maxQueue = maxQueue;
        _listener = listener;
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndPoint!;

    public CancellationToken Stopping => _stop.Token;

    internal IPeerHost Host => _host;

    public void Start()
    {
        _ = AcceptAsync();
    }

    /// <summary>Whether the link to <paramref name="id"/> is up now.</summary>
    public bool IsConnected(ulong id) => _links.TryGetValue(id, out var link) && link.Connected;

    /// <summary>The peers to link to (id → HOST:PORT); links to members no longer listed close.</summary>
    public void SetPeers(IReadOnlyDictionary<ulong, string> peers)
    {
        foreach (var (id, url) in peers)
        {
            if (_links.TryGetValue(id, out var link) && link.Url == url) continue;
            var fresh = new PeerLink(this, id, url, _maxQueue);
            if (_links.TryGetValue(id, out var old)) old.Dispose();
            _links[id] = fresh;
            fresh.Start();
        }
        foreach (var id in _links.Keys)
        {
            if (!peers.ContainsKey(id) && _links.TryRemove(id, out var gone)) gone.Dispose();
        }
    }

    /// <summary>
    /// Queues Raft messages (never blocks: a full queue drops). Called on the raft thread before it advances the core:
    /// each message is encoded here, into its link's pending frames, because its entries' bytes belong to the core's
    /// log and may be reused once it is compacted — a message waiting in a queue must not refer to them.
    /// </summary>
    public void Send(IReadOnlyList<Message> messages)
    {
        for (var i = 0; i < messages.Count; i++)
        {
            var m = messages[i];
            if (!_links.TryGetValue(m.To, out var link))
            {
                Interlocked.Increment(ref _host.Stats.PeerDropped);
                if (m.Type == RaftMessageType.Snapshot) _host.ReportSnapshot(m.To, m.Term, succeeded: false);
                _host.ReportUnreachable(m.To);
                continue;
            }
            if (m.Type == RaftMessageType.Snapshot)
            {
                // The core sends no second snapshot to a follower until this one's outcome is reported.
                new Thread(() => SendSnapshot(link, m)) { IsBackground = true, Name = "cairn snapshot sender" }.Start();
                continue;
            }
            if (!link.Send(m))
            {
                Interlocked.Increment(ref _host.Stats.PeerDropped);
                _host.ReportUnreachable(m.To);
            }
        }
    }

    /// <summary>Queues a forwarded client request for the leader.</summary>
    public bool Forward(ulong to, ulong forwardId, in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        if (!_links.TryGetValue(to, out var link) || !link.Connected) return false;
        Span<byte> head = stackalloc byte[Frame.HeaderSize + 8 + Frame.HeaderSize];
        Frame.WriteHeader(head, new FrameHeader((uint)(8 + Frame.HeaderSize + payload.Length), MessageType.PeerForward, FrameFlags.None, 0));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head[Frame.HeaderSize..], forwardId);
        Frame.WriteHeader(head[(Frame.HeaderSize + 8)..], h with { PayloadLength = (uint)payload.Length });
        return link.Send(head, payload);
    }

    /// <summary>Queues the answer to a forwarded request.</summary>
    public void Reply(ulong to, ulong forwardId, ReadOnlySpan<byte> frames)
    {
        if (!_links.TryGetValue(to, out var link)) return;
        Span<byte> head = stackalloc byte[Frame.HeaderSize + 8];
        Frame.WriteHeader(head, new FrameHeader((uint)(8 + frames.Length), MessageType.PeerForwardReply, FrameFlags.Response, 0));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(head[Frame.HeaderSize..], forwardId);
        link.Send(head, frames);
    }

    /// <summary>Streams the state to a follower on a link of its own, from a thread of its own (the dump and the socket writes block).</summary>
    private void SendSnapshot(PeerLink link, Message m)
    {
        try
        {
            using var net = link.ConnectAsync(PeerCodec.LinkKind.Snapshot, _stop.Token).GetAwaiter().GetResult();
            using (var w = new FrameWriter())
            {
                PeerCodec.WriteMessage(w, m);
                net.Write(w.WrittenSpan);
            }
            var header = new byte[Frame.HeaderSize];
            using var chunks = new ChunkStream((chunk, last) =>
            {
                _stop.Token.ThrowIfCancellationRequested(); // stopping: end the dump so the store can close
                Frame.WriteHeader(header, new FrameHeader((uint)chunk.Length, MessageType.PeerSnapshotChunk, last ? FrameFlags.Last : FrameFlags.None, 0));
                net.Write(header);
                net.Write(chunk.Span);
            }, 1 << 20);
            SnapshotInfo info;
            using (var lz4 = LZ4Stream.Encode(chunks, leaveOpen: true)) info = _host.Machine.WriteSnapshot(lz4);
            chunks.Complete();
            // Wait for the receiver to close: it has the whole stream then.
            net.ReadTimeout = (int)TimeSpan.FromMinutes(5).TotalMilliseconds;
            _ = net.Read(new byte[1]);
            Interlocked.Increment(ref _host.Stats.SnapshotsSent);
            _host.Log($"sent a snapshot to {link.Id:x16} (raft index {m.Snapshot!.Index}, state applied to {info.AppliedIndex}, {info.Bytes} bytes before compression)");
            _host.ReportSnapshot(link.Id, m.Term, succeeded: true);
        }
        catch (Exception e)
        {
            // Whatever went wrong (the peer went away, this member is stopping), Raft sends the snapshot again later.
            if (e is Storage.CorruptDatabaseException damage) _host.OnDamage(damage, $"a snapshot sent to {link.Id:x16}"); // and it hands leadership over
            if (!_stop.IsCancellationRequested) _host.Log($"snapshot to {link.Id:x16} failed: {e.Message}; it will be retried");
            _host.ReportSnapshot(link.Id, m.Term, succeeded: false);
        }
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
                continue;
            }
            socket.NoDelay = true;
            _ = ServeAsync(socket);
        }
    }

    /// <summary>One inbound link: TLS when configured, the handshake proving the peer secret, then Raft messages and forwards, or one snapshot.</summary>
    private async Task ServeAsync(Socket socket)
    {
        var remote = socket.RemoteEndPoint;
        Stream stream = new NetworkStream(socket, ownsSocket: true);
        FrameReader? reader = null;
        try
        {
            using var handshake = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            handshake.CancelAfter(_host.Options.HandshakeTimeout);
            if (_host.Tls.PeerTls)
            {
                var ssl = new SslStream(stream, leaveInnerStreamOpen: false);
                stream = ssl;
                var verdict = new MemberTls.Verdict();
                try
                {
                    await ssl.AuthenticateAsServerAsync(_host.Tls.PeerServerOptions(verdict), handshake.Token).ConfigureAwait(false);
                }
                catch (AuthenticationException e)
                {
                    Interlocked.Increment(ref _host.Stats.PeerRefused);
                    Interlocked.Increment(ref _host.Stats.PeerTlsFailures);
                    _host.Log($"refused a peer link from {remote}: TLS handshake failed: {verdict.Refusal ?? e.Message} (every member needs a certificate signed by --peer-cacert)");
                    return;
                }
            }
            reader = new FrameReader(stream, MaxPeerFrame);
            var (cluster, from, to, kind) = await PeerHandshake.AcceptAsync(stream, reader, _host.PeerKey, handshake.Token).ConfigureAwait(false);
            if (kind == PeerCodec.LinkKind.Query)
            {
                if (!_host.KnowsMember(from)) throw new ProtocolException(ErrorCode.ClusterMismatch, $"member {from:x16} is not a member of cluster {_host.ClusterId:x16}; add it with `cairn member add` first");
            }
            else if (cluster != _host.ClusterId)
            {
                throw new ProtocolException(ErrorCode.ClusterMismatch, $"peer {from:x16} belongs to cluster {cluster:x16}, this member to {_host.ClusterId:x16}; check --initial-cluster and --initial-cluster-token");
            }
            else if (_host.WasRemoved(from))
            {
                throw new ProtocolException(ErrorCode.MemberRemoved, $"member {from:x16} was removed from cluster {_host.ClusterId:x16}");
            }
            else if (to != _host.Id)
            {
                throw new ProtocolException(ErrorCode.ClusterMismatch, $"peer {from:x16} dialed member {to:x16}, but this is {_host.Id:x16}; check --initial-cluster addresses");
            }
            using (var w = new FrameWriter(64))
            {
                w.BeginFrame(MessageType.PeerHello, FrameFlags.Response, 0);
                w.U64(_host.ClusterId);
                w.EndFrame();
                await stream.WriteAsync(w.Written, handshake.Token).ConfigureAwait(false);
            }
            if (kind == PeerCodec.LinkKind.Raft) await ServeRaftAsync(reader, from).ConfigureAwait(false);
            else if (kind == PeerCodec.LinkKind.Snapshot) await ReceiveSnapshotAsync(reader, from).ConfigureAwait(false);
        }
        catch (ProtocolException e)
        {
            _host.Log($"refused a peer link from {remote}: {e.Message}");
            Interlocked.Increment(ref _host.Stats.PeerRefused);
            if (e.Code == ErrorCode.PeerAuthFailed) Interlocked.Increment(ref _host.Stats.PeerAuthFailures);
            try
            {
                using var w = new FrameWriter(256);
                Responder.WriteError(w, 0, e.Code, e.Message);
                await stream.WriteAsync(w.Written).AsTask().WaitAsync(TimeSpan.FromSeconds(1)).ConfigureAwait(false);
            }
            catch (Exception se) when (se is SocketException or ObjectDisposedException or TimeoutException or IOException or NotSupportedException or InvalidOperationException)
            {
            }
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException or InvalidDataException or AuthenticationException)
        {
        }
        finally
        {
            reader?.Dispose();
            await stream.DisposeAsync().ConfigureAwait(false);
        }
    }

    private async Task ServeRaftAsync(FrameReader reader, ulong from)
    {
        while (!_stop.IsCancellationRequested)
        {
            if (await reader.ReadAsync(_stop.Token).ConfigureAwait(false) is not var (h, payload)) return;
            // A member removed after its link was opened is told by having the link closed: it redials and is refused.
            if (_host.WasRemoved(from)) throw new ProtocolException(ErrorCode.MemberRemoved, $"member {from:x16} was removed from cluster {_host.ClusterId:x16}");
            switch (h.Type)
            {
                case MessageType.PeerRaft:
                {
                    var holder = ReceivedMessage.Rent();
                    Message m;
                    try
                    {
                        m = PeerCodec.ReadMessage(payload.Span, holder);
                        if (m.From != from || m.To != _host.Id) throw new ProtocolException(ErrorCode.Malformed, $"raft message from {m.From:x16} to {m.To:x16} on the link from {from:x16}");
                    }
                    catch
                    {
                        holder.Release();
                        throw;
                    }
                    if (m.Type == RaftMessageType.Snapshot)
                    {
                        holder.Release();
                        continue; // snapshots come with their data on a link of their own
                    }
                    _host.Deliver(m, holder, null);
                    break;
                }
                case MessageType.PeerForward:
                {
                    var fid = PeerCodec.ReadForward(payload.Span, out var inner, out var request);
                    _host.OnForwarded(from, fid, inner, request);
                    break;
                }
                case MessageType.PeerForwardReply:
                {
                    var fid = PeerCodec.ReadForwardReply(payload.Span, out var frames);
                    _host.OnForwardReply(fid, frames);
                    break;
                }
                default:
                    throw new ProtocolException(ErrorCode.Malformed, $"unexpected {h.Type} on a raft link");
            }
        }
    }

    private async Task ReceiveSnapshotAsync(FrameReader reader, ulong from)
    {
        if (await reader.ReadAsync(_stop.Token).ConfigureAwait(false) is not var (h, payload) || h.Type != MessageType.PeerRaft) return;
        var m = PeerCodec.ReadMessage(payload.Span);
        if (m.Type != RaftMessageType.Snapshot || m.Snapshot is null || m.From != from) throw new ProtocolException(ErrorCode.Malformed, "a snapshot link must start with a snapshot message");
        var stem = Path.Combine(_host.IncomingDir, $"{from:x16}-{m.Snapshot.Index}-{Environment.TickCount64}");
        var compressed = stem + ".lz4";
        var db = stem + ".db";
        try
        {
            await using (var file = new FileStream(compressed, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
            {
                while (true)
                {
                    if (await reader.ReadAsync(_stop.Token).ConfigureAwait(false) is not var (ch, chunk)) throw new IOException("the snapshot stream ended early");
                    if (ch.Type != MessageType.PeerSnapshotChunk) throw new ProtocolException(ErrorCode.Malformed, $"unexpected {ch.Type} in a snapshot stream");
                    await file.WriteAsync(chunk, _stop.Token).ConfigureAwait(false);
                    if ((ch.Flags & FrameFlags.Last) != 0) break;
                }
            }
            await Task.Run(() =>
            {
                using var input = File.OpenRead(compressed);
                using var lz4 = LZ4Stream.Decode(input);
                KvStateMachine.BuildFromSnapshot(lz4, db, _host.Machine.Options);
            }).ConfigureAwait(false);
            _host.Deliver(m, null, db);
        }
        catch
        {
            TryDelete(db);
            throw;
        }
        finally
        {
            TryDelete(compressed);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (IOException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
        foreach (var link in _links.Values) link.Dispose();
        _links.Clear();
    }
}
