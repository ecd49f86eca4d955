using System.Net;
using System.Threading.Channels;
using Cairn.Protocol;
using Google.Protobuf;
using Api = Cairn.Server.Etcd.Api;

namespace Cairn.Server.Etcd;

/// <summary>
/// Owner: one Maintenance.Snapshot call; the member's snapshot thread writes chunk frames, the call's task sends them.
/// Each chunk of the member's LZ4-compressed snapshot becomes one etcd SnapshotResponse; a few wait at most, so the
/// snapshot thread is paced by the client as it is on a raw session. The stream ends as etcd's does, in a whole number
/// of 512-byte blocks followed by the SHA-256 of everything before it, which etcdctl checks: after Cairn's snapshot
/// come zeros and its length (8 bytes, little-endian), so <see cref="MemberRestore.OpenDump"/> finds where it ends.
/// </summary>
internal sealed class EtcdSnapshotStream : ClientResponder, IDisposable
{
    private readonly FrameWriter _out = new(1 << 16);
    private readonly Lock _lock = new();
    private readonly Channel<Api.SnapshotResponse> _chunks = Channel.CreateBounded<Api.SnapshotResponse>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
    private readonly IPAddress? _remote;
    private readonly CancellationToken _closed;
    private readonly ulong _memberId;
    private readonly System.Security.Cryptography.IncrementalHash _sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
    private long _length;

    public EtcdSnapshotStream(SessionAuth? auth, IPAddress? remote, ulong memberId, CancellationToken closed)
    {
        Auth = auth;
        _remote = remote;
        _memberId = memberId;
        _closed = closed;
    }

    public ChannelReader<Api.SnapshotResponse> Chunks => _chunks.Reader;

    public override IPAddress? RemoteAddress => _remote;

    public override CancellationToken Closed => _closed;

    public override bool IsOpen => !_closed.IsCancellationRequested;

    public override Task DrainAsync(CancellationToken cancellationToken) => Task.CompletedTask; // End waits for room instead

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
                if (h.Type == MessageType.Error)
                {
                    var r = new PayloadReader(payload);
                    var (code, message) = Messages.ReadError(ref r);
                    _chunks.Writer.TryComplete(EtcdErrors.From(code, message));
                }
                else
                {
                    var last = (h.Flags & FrameFlags.Last) != 0;
                    Send(payload, remaining: 1);
                    if (last)
                    {
                        Send(MemberRestore.EtcdSnapshotPadding(_length), remaining: 1);
                        Send(_sha.GetHashAndReset(), remaining: 0, hash: false);
                        _chunks.Writer.TryComplete();
                    }
                }
                span = span[(Frame.HeaderSize + (int)h.PayloadLength)..];
            }
            _out.Reset();
        }
        finally
        {
            _lock.Exit();
        }
    }

    private void Send(ReadOnlySpan<byte> bytes, ulong remaining, bool hash = true)
    {
        if (hash)
        {
            _sha.AppendData(bytes);
            _length += bytes.Length;
        }
        var chunk = new Api.SnapshotResponse { Header = new Api.ResponseHeader { MemberId = _memberId }, Blob = ByteString.CopyFrom(bytes), RemainingBytes = remaining };
        // On the member's snapshot thread: waiting here for room paces the dump to the client.
        try
        {
            _chunks.Writer.WriteAsync(chunk, _closed).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
        {
            throw new OperationCanceledException("the client went away", e);
        }
    }

    public void Dispose()
    {
        _sha.Dispose();
        _chunks.Writer.TryComplete();
        _out.Dispose();
    }
}
