using System.Buffers;
using System.Collections;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// What a Raft message read off a peer link holds on to until the raft thread has stepped it: a pooled copy of the
/// frame's payload, which its entries' bytes are slices of, and a pooled list of those entries. The core copies what it
/// keeps into its own log, so both go back to their pools once the message is stepped: a follower's receive path
/// makes one object per message (the message itself) instead of an array per entry and a list per message.
/// </summary>
internal sealed class ReceivedMessage : IReadOnlyList<LogEntry>, IPooled
{
    private static readonly BoundedPool<ReceivedMessage> Pool = new(64);

    private byte[] _payload = [];
    private LogEntry[] _entries = new LogEntry[64];
    private int _count;

    /// <summary>A holder from the pool (or a new one).</summary>
    public static ReceivedMessage Rent() => Pool.TryRent() ?? new ReceivedMessage();

    bool IPooled.InPool { get; set; }

    /// <summary>Copies <paramref name="payload"/> into a pooled buffer; entries are then slices of the returned memory.</summary>
    public ReadOnlyMemory<byte> Hold(ReadOnlySpan<byte> payload)
    {
        _payload = ArrayPool<byte>.Shared.Rent(payload.Length);
        payload.CopyTo(_payload);
        return _payload.AsMemory(0, payload.Length);
    }

    /// <summary>Sizes the entry list for <paramref name="count"/> entries and empties it.</summary>
    public void Expect(int count)
    {
        if (_entries.Length < count) _entries = new LogEntry[Math.Max(count, _entries.Length * 2)];
        _count = 0;
    }

    public void Add(LogEntry e) => _entries[_count++] = e;

    public int Count => _count;

    public LogEntry this[int index] => (uint)index < (uint)_count ? _entries[index] : throw new ArgumentOutOfRangeException(nameof(index));

    /// <summary>Gives the payload back and returns the holder to the pool (after the raft thread stepped the message).</summary>
    public void Release()
    {
        if (_payload.Length > 0) ArrayPool<byte>.Shared.Return(_payload);
        _payload = [];
        Array.Clear(_entries, 0, _count);   // no reference to the payload stays behind
        _count = 0;
        Pool.Return(this);
    }

    public IEnumerator<LogEntry> GetEnumerator()
    {
        for (var i = 0; i < _count; i++) yield return _entries[i];
    }

    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}
