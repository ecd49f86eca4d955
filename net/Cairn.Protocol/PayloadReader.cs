using System.Buffers.Binary;
using System.Text;

namespace Cairn.Protocol;

/// <summary>
/// Reads a payload's fields in place. Every read checks the bounds: a field that runs past the payload, a count that
/// could not fit in what is left, a string that is not UTF-8 — each is a <see cref="ProtocolException"/>, never an
/// out-of-range access or an allocation sized by the sender.
/// </summary>
public ref struct PayloadReader(ReadOnlySpan<byte> payload)
{
    private readonly ReadOnlySpan<byte> _data = payload;
    private int _at;

    /// <summary>Bytes not read yet.</summary>
    public readonly int Remaining => _data.Length - _at;

    private ReadOnlySpan<byte> Take(int n)
    {
        if (n < 0 || n > _data.Length - _at) throw new ProtocolException(ErrorCode.Malformed, $"field runs past the end of the payload (needs {n} bytes at offset {_at} of {_data.Length})");
        var s = _data.Slice(_at, n);
        _at += n;
        return s;
    }

    /// <summary>One byte.</summary>
    public byte U8() => Take(1)[0];

    /// <summary>A boolean (0 or 1).</summary>
    public bool Bool() => U8() switch
    {
        0 => false,
        1 => true,
        var b => throw new ProtocolException(ErrorCode.Malformed, $"boolean field holds {b}, not 0 or 1"),
    };

    /// <summary>u16.</summary>
    public ushort U16() => BinaryPrimitives.ReadUInt16LittleEndian(Take(2));

    /// <summary>u32.</summary>
    public uint U32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));

    /// <summary>i64.</summary>
    public long I64() => BinaryPrimitives.ReadInt64LittleEndian(Take(8));

    /// <summary>u64.</summary>
    public ulong U64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    /// <summary>A byte string, in place (valid as long as the payload is).</summary>
    public ReadOnlySpan<byte> Bytes()
    {
        var n = U32();
        if (n > (uint)Remaining) throw new ProtocolException(ErrorCode.Malformed, $"byte string of {n} bytes runs past the end of the payload ({Remaining} left)");
        return Take((int)n);
    }

    /// <summary>A byte string, copied.</summary>
    public byte[] BytesArray() => Bytes().ToArray();

    /// <summary>Raw bytes with a known length.</summary>
    public ReadOnlySpan<byte> Raw(int n) => Take(n);

    /// <summary>The rest of the payload.</summary>
    public ReadOnlySpan<byte> Rest() => Take(Remaining);

    /// <summary>A UTF-8 string.</summary>
    public string String()
    {
        var b = Bytes();
        try
        {
            return new UTF8Encoding(false, true).GetString(b);
        }
        catch (DecoderFallbackException)
        {
            throw new ProtocolException(ErrorCode.Malformed, "string field is not valid UTF-8");
        }
    }

    /// <summary>A list's count, refused when that many items of at least <paramref name="minItemBytes"/> bytes could not fit in what is left.</summary>
    public int Count(int minItemBytes)
    {
        var n = U32();
        if (n > (uint)(Remaining / Math.Max(1, minItemBytes))) throw new ProtocolException(ErrorCode.Malformed, $"list of {n} items cannot fit in the {Remaining} bytes left");
        return (int)n;
    }

    /// <summary>Refuses trailing bytes: a payload must be exactly its fields.</summary>
    public readonly void End()
    {
        if (Remaining != 0) throw new ProtocolException(ErrorCode.Malformed, $"{Remaining} unexpected bytes after the last field");
    }
}

/// <summary>A frame that breaks the protocol, or a request refused with a code; the message says what is wrong.</summary>
public sealed class ProtocolException(ErrorCode code, string message) : Exception(message)
{
    /// <summary>The error code sent to the peer.</summary>
    public ErrorCode Code { get; } = code;
}
