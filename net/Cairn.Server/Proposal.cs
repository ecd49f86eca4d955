using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// A command on its way into the log, with whoever waits for it to apply. Client writes take one from a pool
/// (<see cref="Rent"/>) and the raft thread returns it once answered, so the write path makes no object per request.
/// </summary>
internal sealed class Proposal : IPooled
{
    private const int KeptBytes = 16 << 10;   // a pooled proposal keeps a buffer up to this size; larger ones go back to the shared pool
    private byte[] _buffer;
    private int _length;
    private bool _rentedBuffer;                // from ArrayPool<byte>.Shared (larger than KeptBytes)

    public Proposal(byte[] data, Waiter? waiter)
    {
        _buffer = data;
        _length = data.Length;
        Waiter = waiter;
    }

    /// <summary>The entry's bytes (the raft core copies them into its log when proposed).</summary>
    public ReadOnlyMemory<byte> Data => _buffer.AsMemory(0, _length);

    /// <summary>Where the entry's bytes are written, for a rented proposal: <see cref="Data"/>'s length of it.</summary>
    public Span<byte> Buffer => _buffer.AsSpan(0, _length);

    public Waiter? Waiter { get; private set; }
    public ulong Seq { get; set; }
    public long Deadline { get; set; }
    public bool AddsData { get; set; }

    private static readonly BoundedPool<Proposal> Pool = new(65_536);
    private bool _pooled;
    bool IPooled.InPool { get; set; }

    /// <summary>
    /// A proposal of a client request, answered by a pooled <see cref="RequestWaiter"/>, with room for an entry of
    /// <paramref name="length"/> bytes that the caller writes into <see cref="Buffer"/>: neither the proposal nor its
    /// bytes are allocated once the pool is warm.
    /// </summary>
    public static Proposal Rent(int length, Responder responder, Protocol.MessageType type, ulong id, bool addsData)
    {
        var p = Pool.TryRent() ?? new Proposal([], null) { _pooled = true };
        if (p._buffer.Length < length)
        {
            p._rentedBuffer = length > KeptBytes;
            p._buffer = p._rentedBuffer ? System.Buffers.ArrayPool<byte>.Shared.Rent(length) : new byte[Math.Max(length, 512)];
        }
        p._length = length;
        p.Waiter = RequestWaiter.Rent(responder, type, id);
        p.AddsData = addsData;
        p.Deadline = 0;
        return p;
    }

    /// <summary>Hands a rented proposal (and its waiter) back once it is answered and nothing refers to it any more.</summary>
    public void Return()
    {
        if (!_pooled) return;
        (Waiter as RequestWaiter)?.Return();
        Waiter = null;
        _length = 0;
        if (_rentedBuffer)
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = [];
            _rentedBuffer = false;
        }
        Pool.Return(this);
    }
}
