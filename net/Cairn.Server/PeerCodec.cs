using System.Buffers.Binary;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// Raft messages and forwarded requests on peer links (docs/protocol.md, "Peer links"). Snapshot data never travels
/// in a Raft message: it follows on a link of its own, in LZ4-compressed chunks.
/// </summary>
internal static class PeerCodec
{
    /// <summary>Purposes of a peer link, named in its hello.</summary>
    public enum LinkKind : byte
    {
        Raft = 1,
        Snapshot = 2,
        Query = 3,      // a joining member asks for the cluster id
    }

    /// <summary>The peer protocol's version: 2 added the nonce to the hello and the challenge and proof after it.</summary>
    public const ushort PeerVersion = 2;

    /// <summary>Bytes of each side's nonce and of each proof (HMAC-SHA256).</summary>
    public const int NonceBytes = 32;

    public static void WriteHello(FrameWriter w, ulong cluster, ulong from, ulong to, LinkKind kind, ReadOnlySpan<byte> nonce)
    {
        w.BeginFrame(MessageType.PeerHello, FrameFlags.None, 0);
        w.U32(Frame.Magic);
        w.U16(PeerVersion);
        w.U64(cluster);
        w.U64(from);
        w.U64(to);
        w.U8((byte)kind);
        w.Raw(nonce);
        w.EndFrame();
    }

    public static (ulong Cluster, ulong From, ulong To, LinkKind Kind) ReadHello(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        if (r.U32() != Frame.Magic) throw new ProtocolException(ErrorCode.Malformed, "not a Cairn peer");
        var version = r.U16();
        if (version != PeerVersion) throw new ProtocolException(ErrorCode.UnsupportedVersion, $"peer speaks peer protocol version {version}; this member speaks {PeerVersion}: run the same Cairn version on every member");
        var h = (r.U64(), r.U64(), r.U64(), (LinkKind)r.U8());
        if (payload.Length - 31 != NonceBytes) throw new ProtocolException(ErrorCode.Malformed, $"a peer hello carries a {NonceBytes}-byte nonce");
        if (h.Item4 is < LinkKind.Raft or > LinkKind.Query) throw new ProtocolException(ErrorCode.Malformed, $"unknown peer link kind {(byte)h.Item4}");
        return h;
    }

    public static void WriteMessage(FrameWriter w, Message m)
    {
        w.BeginFrame(MessageType.PeerRaft, FrameFlags.None, 0);
        w.U8((byte)m.Type);
        w.U64(m.From);
        w.U64(m.To);
        w.U64(m.Term);
        w.U64(m.LogTerm);
        w.U64(m.Index);
        w.U64(m.Commit);
        w.Bool(m.Reject);
        w.U64(m.Context);
        var entries = m.Entries ?? [];
        w.Count(entries.Count);
        for (var i = 0; i < entries.Count; i++)
        {
            var e = entries[i];
            w.U64(e.Index);
            w.U64(e.Term);
            w.U8((byte)e.Kind);
            w.Bytes(e.Data.Span);
        }
        w.Bool(m.Snapshot is not null);
        if (m.Snapshot is { } s)
        {
            w.U64(s.Index);
            w.U64(s.Term);
            w.Count(s.Voters.Count);
            foreach (var v in s.Voters) w.U64(v);
            w.Count(s.Learners.Count);
            foreach (var l in s.Learners) w.U64(l);
        }
        w.EndFrame();
    }

    public static Message ReadMessage(ReadOnlySpan<byte> payload) => ReadMessage(payload, null);

    /// <summary>
    /// Reads a Raft message. With <paramref name="holder"/>, the payload is copied into its pooled buffer and the
    /// entries are slices of it, listed in the holder (release it once the message is stepped); without, each entry's
    /// bytes are an array of their own.
    /// </summary>
    public static Message ReadMessage(ReadOnlySpan<byte> payload, ReceivedMessage? holder)
    {
        ReadOnlyMemory<byte> held = default;
        if (holder is not null)
        {
            held = holder.Hold(payload);
            payload = held.Span;
        }
        var r = new PayloadReader(payload);
        var type = r.U8();
        if (type > (byte)RaftMessageType.HeartbeatResponse) throw new ProtocolException(ErrorCode.Malformed, $"unknown raft message type {type}");
        var from = r.U64();
        var to = r.U64();
        var term = r.U64();
        var logTerm = r.U64();
        var index = r.U64();
        var commit = r.U64();
        var reject = r.Bool();
        var context = r.U64();
        var count = r.Count(21);
        var entries = holder is null ? new LogEntry[count] : null;
        holder?.Expect(count);
        for (var i = 0; i < count; i++)
        {
            var ei = r.U64();
            var et = r.U64();
            var kind = r.U8();
            if (kind > (byte)EntryKind.Config) throw new ProtocolException(ErrorCode.Malformed, $"unknown entry kind {kind}");
            if (entries is not null)
            {
                entries[i] = new LogEntry(ei, et, r.BytesArray(), (EntryKind)kind);
            }
            else
            {
                // The bytes are where they lie in the held copy of the payload: a slice, no array of their own.
                var length = r.Bytes().Length;
                var end = payload.Length - r.Remaining;
                holder!.Add(new LogEntry(ei, et, held.Slice(end - length, length), (EntryKind)kind));
            }
        }
        SnapshotMetadata? snap = null;
        if (r.Bool())
        {
            var si = r.U64();
            var st = r.U64();
            var voters = new ulong[r.Count(8)];
            for (var i = 0; i < voters.Length; i++) voters[i] = r.U64();
            var learners = new ulong[r.Count(8)];
            for (var i = 0; i < learners.Length; i++) learners[i] = r.U64();
            snap = new SnapshotMetadata(si, st, voters, learners);
        }
        r.End();
        var mt = (RaftMessageType)type;
        IReadOnlyList<LogEntry>? list = count == 0 ? null : entries is not null ? entries : holder;
        return new Message(mt, from, to, term, logTerm, index, list, commit, reject, context, snap,
            mt == RaftMessageType.Snapshot ? [] : null);
    }

    /// <summary>A forwarded client request: <c>u64 forward_id</c> (returned), then one complete client frame (header and payload).</summary>
    public static ulong ReadForward(ReadOnlySpan<byte> payload, out FrameHeader inner, out ReadOnlySpan<byte> request)
    {
        if (payload.Length < 8 + Frame.HeaderSize) throw new ProtocolException(ErrorCode.Malformed, "short forward frame");
        var fid = BinaryPrimitives.ReadUInt64LittleEndian(payload);
        Frame.TryReadHeader(payload[8..], out inner);
        if (inner.PayloadLength != payload.Length - 8 - Frame.HeaderSize) throw new ProtocolException(ErrorCode.Malformed, "forward frame length mismatch");
        request = payload[(8 + Frame.HeaderSize)..];
        return fid;
    }

    /// <summary>The answer to a forwarded request: <c>u64 forward_id</c> (returned), then the leader's complete answer frames (cut them with <see cref="TryReadFrame"/>).</summary>
    public static ulong ReadForwardReply(ReadOnlySpan<byte> payload, out ReadOnlySpan<byte> frames)
    {
        if (payload.Length < 8) throw new ProtocolException(ErrorCode.Malformed, "short forward reply");
        frames = payload[8..];
        return BinaryPrimitives.ReadUInt64LittleEndian(payload);
    }

    /// <summary>
    /// Cuts the next whole frame off <paramref name="frames"/>; false when no whole frame is left. A payload length is
    /// unsigned: compared as such, a length past 2 GiB is simply not there (never a negative slice).
    /// </summary>
    public static bool TryReadFrame(ref ReadOnlySpan<byte> frames, out FrameHeader header, out ReadOnlySpan<byte> payload)
    {
        if (!Frame.TryReadHeader(frames, out header) || header.PayloadLength > (uint)(frames.Length - Frame.HeaderSize))
        {
            payload = default;
            return false;
        }
        payload = frames.Slice(Frame.HeaderSize, (int)header.PayloadLength);
        frames = frames[(Frame.HeaderSize + (int)header.PayloadLength)..];
        return true;
    }
}
