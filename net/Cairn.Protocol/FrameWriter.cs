using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Cairn.Protocol;

/// <summary>
/// Builds frames into one pooled buffer: several frames back to back, sent with one write. Fields are written in
/// place; <see cref="BeginFrame"/> reserves the header and <see cref="EndFrame"/> fills in the payload length.
/// Not thread-safe. Dispose returns the buffer to the pool.
/// </summary>
public sealed class FrameWriter : IDisposable
{
    private byte[] _buffer;
    private int _length;
    private int _frameStart = -1;

    /// <summary>A writer whose buffer starts at <paramref name="capacity"/> bytes and grows as needed.</summary>
    public FrameWriter(int capacity = 4096) => _buffer = ArrayPool<byte>.Shared.Rent(capacity);

    /// <summary>The size of the buffer now (it grows as frames need).</summary>
    public int Capacity => _buffer.Length;

    /// <summary>Bytes written so far (whole frames once <see cref="EndFrame"/> was called).</summary>
    public int Length => _length;

    /// <summary>What was written.</summary>
    public ReadOnlyMemory<byte> Written => _buffer.AsMemory(0, _length);

    /// <summary>What was written, as a span.</summary>
    public ReadOnlySpan<byte> WrittenSpan => _buffer.AsSpan(0, _length);

    /// <summary>Forgets everything written (keeps the buffer).</summary>
    public void Reset()
    {
        _length = 0;
        _frameStart = -1;
    }

    /// <summary>Starts a frame; fields follow; <see cref="EndFrame"/> closes it.</summary>
    public void BeginFrame(MessageType type, FrameFlags flags, ulong requestId)
    {
        if (_frameStart >= 0) throw new InvalidOperationException("A frame is already open: call EndFrame first.");
        _frameStart = _length;
        Frame.WriteHeader(Take(Frame.HeaderSize), new FrameHeader(0, type, flags, requestId));
    }

    /// <summary>Closes the open frame by writing its payload length.</summary>
    public void EndFrame()
    {
        if (_frameStart < 0) throw new InvalidOperationException("No frame is open.");
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_frameStart), (uint)(_length - _frameStart - Frame.HeaderSize));
        _frameStart = -1;
    }

    /// <summary>Drops the open frame (an error came up while writing it).</summary>
    public void AbandonFrame()
    {
        if (_frameStart < 0) return;
        _length = _frameStart;
        _frameStart = -1;
    }

    /// <summary>Bytes of the open frame's payload so far.</summary>
    public int OpenPayloadLength => _frameStart < 0 ? 0 : _length - _frameStart - Frame.HeaderSize;

    /// <summary>Reserves <paramref name="count"/> bytes and returns them to fill.</summary>
    public Span<byte> Take(int count)
    {
        if (_length + count > _buffer.Length) Grow(count);
        var span = _buffer.AsSpan(_length, count);
        _length += count;
        return span;
    }

    private void Grow(int count)
    {
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Max(_buffer.Length * 2, _length + count));
        _buffer.AsSpan(0, _length).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    /// <summary>One byte.</summary>
    public void U8(byte v) => Take(1)[0] = v;

    /// <summary>A boolean as one byte.</summary>
    public void Bool(bool v) => U8(v ? (byte)1 : (byte)0);

    /// <summary>u16, little-endian.</summary>
    public void U16(ushort v) => BinaryPrimitives.WriteUInt16LittleEndian(Take(2), v);

    /// <summary>u32, little-endian.</summary>
    public void U32(uint v) => BinaryPrimitives.WriteUInt32LittleEndian(Take(4), v);

    /// <summary>i64, little-endian.</summary>
    public void I64(long v) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), v);

    /// <summary>u64, little-endian.</summary>
    public void U64(ulong v) => BinaryPrimitives.WriteUInt64LittleEndian(Take(8), v);

    /// <summary>A byte string: u32 length, then the bytes.</summary>
    public void Bytes(ReadOnlySpan<byte> v)
    {
        U32((uint)v.Length);
        v.CopyTo(Take(v.Length));
    }

    /// <summary>Raw bytes with no length (the caller's format knows it).</summary>
    public void Raw(ReadOnlySpan<byte> v) => v.CopyTo(Take(v.Length));

    /// <summary>A UTF-8 string: u32 byte length, then the bytes.</summary>
    public void String(string v)
    {
        var n = Encoding.UTF8.GetByteCount(v);
        U32((uint)n);
        Encoding.UTF8.GetBytes(v, Take(n));
    }

    /// <summary>A list's count (u32).</summary>
    public void Count(int n) => U32((uint)n);

    /// <summary>Returns the buffer to the pool.</summary>
    public void Dispose()
    {
        var b = _buffer;
        _buffer = [];
        _length = 0;
        if (b.Length > 0) ArrayPool<byte>.Shared.Return(b);
    }
}
