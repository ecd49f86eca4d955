using System.Buffers;
using System.Runtime.InteropServices;

namespace Cairn.Raft;

/// <summary>
/// The bytes of a node's log entries, copied into slabs that are reused as the log is compacted, so that appending an
/// entry — a proposal, or one received from the leader — allocates nothing once the log has reached its working size.
/// <para>
/// Entries are appended in index order (a follower's conflicting suffix is cut off and written again after it, in the
/// same slabs), and compaction drops a prefix: a slab is freed when every index it ever held is at or below the
/// compaction point. A freed slab is not reused at once: bytes handed out in a <see cref="Ready"/> or its messages
/// stay valid until the next <see cref="RaftNode.Advance"/>, so freed slabs wait for it (<see cref="EndRound"/>).
/// </para>
/// <para>
/// An entry larger than a quarter slab gets a buffer of its own from <see cref="ArrayPool{T}.Shared"/>, given back
/// when it is freed. Spare slabs are kept up to <see cref="MaxSpareBytes"/>; past that, freed slabs go to the GC.
/// </para>
/// </summary>
internal sealed class EntryArena
{
    internal const int SlabSize = 256 << 10;
    private const int LargeEntry = SlabSize / 4;
    private const long MaxSpareBytes = 64L << 20;

    private struct Slab
    {
        public byte[] Buffer;
        public int Used;
        public ulong Last;   // the highest index it ever held
        public bool Large;   // one entry's buffer, from the shared pool
    }

    private readonly List<Slab> _slabs = [];          // in use, oldest first
    private bool _tailOpen;                           // the last slab takes more small entries
    private readonly List<Slab> _freed = [];          // freed by compaction; reusable after the next round ends
    private readonly Stack<byte[]> _spare = new();

    /// <summary>Bytes the arena holds: slabs in use, freed ones waiting for the round to end, and spares.</summary>
    public long BytesHeld { get; private set; }

    /// <summary>Copies <paramref name="data"/>, the bytes of entry <paramref name="index"/>, into the arena.</summary>
    public ReadOnlyMemory<byte> Copy(ReadOnlySpan<byte> data, ulong index)
    {
        if (data.IsEmpty) return ReadOnlyMemory<byte>.Empty;
        if (data.Length > LargeEntry)
        {
            var own = ArrayPool<byte>.Shared.Rent(data.Length);
            data.CopyTo(own);
            _slabs.Add(new Slab { Buffer = own, Used = data.Length, Last = index, Large = true });
            BytesHeld += own.Length;
            _tailOpen = false; // keep slabs in index order: the next small entry starts a slab after this one
            return own.AsMemory(0, data.Length);
        }
        if (!_tailOpen || _slabs[^1].Used + data.Length > SlabSize)
        {
            byte[] buffer;
            if (_spare.Count > 0)
            {
                buffer = _spare.Pop();
            }
            else
            {
                buffer = GC.AllocateUninitializedArray<byte>(SlabSize);
                BytesHeld += SlabSize;
            }
            _slabs.Add(new Slab { Buffer = buffer });
            _tailOpen = true;
        }
        ref var tail = ref CollectionsMarshal.AsSpan(_slabs)[^1];
        var at = tail.Used;
        data.CopyTo(tail.Buffer.AsSpan(at));
        tail.Used += data.Length;
        tail.Last = Math.Max(tail.Last, index);
        return tail.Buffer.AsMemory(at, data.Length);
    }

    /// <summary>The log was compacted through <paramref name="index"/>: slabs holding nothing after it are freed.</summary>
    public void Release(ulong index)
    {
        var n = 0;
        while (n < _slabs.Count && _slabs[n].Last <= index) n++;
        Free(n);
    }

    /// <summary>The log was emptied (a snapshot replaced it): every slab is freed.</summary>
    public void ReleaseAll() => Free(_slabs.Count);

    private void Free(int n)
    {
        if (n == 0) return;
        for (var i = 0; i < n; i++) _freed.Add(_slabs[i]);
        _slabs.RemoveRange(0, n);
        if (_slabs.Count == 0) _tailOpen = false;
    }

    /// <summary>The caller is done with everything handed out so far: freed slabs may be reused.</summary>
    public void EndRound()
    {
        if (_freed.Count == 0) return;
        foreach (var slab in _freed)
        {
            if (slab.Large)
            {
                BytesHeld -= slab.Buffer.Length;
                ArrayPool<byte>.Shared.Return(slab.Buffer);
            }
            else if ((long)(_spare.Count + 1) * SlabSize <= MaxSpareBytes)
            {
                _spare.Push(slab.Buffer);
            }
            else
            {
                BytesHeld -= SlabSize;
            }
        }
        _freed.Clear();
    }
}
