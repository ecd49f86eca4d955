using System.Buffers.Binary;
using System.Text;

namespace Cairn.Kv;

/// <summary>
/// Little-endian fields as commands (<see cref="KvCommand"/>) and auth records (<see cref="AuthState"/>) are encoded:
/// u8, i32, i64, and byte strings and UTF-8 strings behind an i32 length. Read back by <see cref="FieldReader"/>.
/// </summary>
internal sealed class FieldWriter
{
    private byte[] _buf = new byte[256];
    private int _len;

    private Span<byte> Take(int n)
    {
        if (_len + n > _buf.Length) Array.Resize(ref _buf, Math.Max(_buf.Length * 2, _len + n));
        var s = _buf.AsSpan(_len, n);
        _len += n;
        return s;
    }

    public void Byte(byte b) => Take(1)[0] = b;
    public void Int(int v) => BinaryPrimitives.WriteInt32LittleEndian(Take(4), v);
    public void Long(long v) => BinaryPrimitives.WriteInt64LittleEndian(Take(8), v);
    public void Bytes(byte[] b) { Int(b.Length); b.CopyTo(Take(b.Length)); }
    public void String(string s) => Bytes(Encoding.UTF8.GetBytes(s));
    public byte[] ToArray() => _buf.AsSpan(0, _len).ToArray();
}

/// <summary>Reads what <see cref="FieldWriter"/> wrote, bounds-checked: bytes that are not a whole field are <see cref="InvalidDataException"/>.</summary>
internal ref struct FieldReader(ReadOnlySpan<byte> data, string what)
{
    private readonly ReadOnlySpan<byte> _data = data;
    private int _at;

    public readonly bool AtEnd => _at == _data.Length;

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || _data.Length - _at < n) throw new InvalidDataException($"{what} is truncated");
        var s = _data.Slice(_at, n);
        _at += n;
        return s;
    }

    public byte Byte() => Take(1)[0];
    public int Int() => BinaryPrimitives.ReadInt32LittleEndian(Take(4));
    public long Long() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));
    public byte[] Bytes() => Take(Int()).ToArray();
    public string String() => Encoding.UTF8.GetString(Take(Int()));

    /// <summary>An element count, bounded by the bytes left so a forged count cannot allocate without limit.</summary>
    public int Count()
    {
        var n = Int();
        if (n < 0 || n > _data.Length - _at) throw new InvalidDataException($"element count exceeds the {what}");
        return n;
    }
}
