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

/// <summary>Reads whole frames from a stream (a socket's, or TLS over it) into a pooled buffer; null at a clean end of stream.</summary>
internal sealed class FrameReader(Stream stream, int maxFrame) : IDisposable
{
    private byte[] _buffer = ArrayPool<byte>.Shared.Rent(64 << 10);
    private int _start;
    private int _end;

    /// <summary>The next frame; its payload is valid until the next call.</summary>
    public async ValueTask<(FrameHeader Header, ReadOnlyMemory<byte> Payload)?> ReadAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            if (Frame.TryReadHeader(_buffer.AsSpan(_start, _end - _start), out var h))
            {
                if (h.PayloadLength > (uint)maxFrame) throw new ProtocolException(ErrorCode.FrameTooLarge, $"peer frame of {h.PayloadLength} bytes is over the limit of {maxFrame}");
                var total = Frame.HeaderSize + (int)h.PayloadLength;
                if (_end - _start >= total)
                {
                    var payload = _buffer.AsMemory(_start + Frame.HeaderSize, (int)h.PayloadLength);
                    _start += total;
                    return (h, payload);
                }
                if (total > _buffer.Length - _start)
                {
                    var target = total > _buffer.Length ? ArrayPool<byte>.Shared.Rent(total) : _buffer;
                    _buffer.AsSpan(_start, _end - _start).CopyTo(target);
                    if (!ReferenceEquals(target, _buffer)) ArrayPool<byte>.Shared.Return(_buffer);
                    _buffer = target;
                    _end -= _start;
                    _start = 0;
                }
            }
            else if (_start > 0 && _buffer.Length - _end < Frame.HeaderSize)
            {
                _buffer.AsSpan(_start, _end - _start).CopyTo(_buffer);
                _end -= _start;
                _start = 0;
            }
            if (_start == _end)
            {
                _start = 0;
                _end = 0;
            }
            var n = await stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (_start == _end) return null;
                throw new IOException("the peer closed the link in the middle of a frame");
            }
            _end += n;
        }
    }

    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}
