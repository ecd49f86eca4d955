using System.Collections.Concurrent;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// A write-only stream that cuts what is written into chunks and hands each to a sink (the last one flagged). The sink
/// blocks (it writes to a socket): use it from a thread of its own, never from the thread pool.
/// </summary>
internal sealed class ChunkStream(Action<ReadOnlyMemory<byte>, bool> sink, int chunkBytes = 256 << 10) : Stream
{
    private readonly byte[] _chunk = new byte[chunkBytes];
    private int _filled;
    private bool _completed;

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (!buffer.IsEmpty)
        {
            var n = Math.Min(buffer.Length, _chunk.Length - _filled);
            buffer[..n].CopyTo(_chunk.AsSpan(_filled));
            _filled += n;
            buffer = buffer[n..];
            if (_filled == _chunk.Length)
            {
                sink(_chunk.AsMemory(0, _filled), false);
                _filled = 0;
            }
        }
    }

    /// <summary>Sends what is left as the last chunk.</summary>
    public void Complete()
    {
        if (_completed) return;
        _completed = true;
        sink(_chunk.AsMemory(0, _filled), true);
        _filled = 0;
    }
}
