using System.Buffers.Binary;

namespace Cairn.Protocol;

/// <summary>
/// The frame every message travels in (docs/protocol.md): a 16-byte header — payload length (u32), type (u16),
/// flags (u16), request id (u64), all little-endian — then the payload.
/// </summary>
public static class Frame
{
    /// <summary>Bytes of the header before every payload.</summary>
    public const int HeaderSize = 16;

    /// <summary>The protocol version this build speaks.</summary>
    public const ushort Version = 1;

    /// <summary>The first four bytes of a client's hello payload: "CAIR".</summary>
    public const uint Magic = 0x52494143;

    /// <summary>The largest frame a member accepts unless configured otherwise (4 MiB: a 1.5 MiB value with room to spare).</summary>
    public const int DefaultMaxFrameBytes = 4 << 20;

    /// <summary>Reads a header from the start of <paramref name="buffer"/>; false when fewer than <see cref="HeaderSize"/> bytes are there.</summary>
    public static bool TryReadHeader(ReadOnlySpan<byte> buffer, out FrameHeader header)
    {
        if (buffer.Length < HeaderSize)
        {
            header = default;
            return false;
        }
        header = new FrameHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(buffer),
            (MessageType)BinaryPrimitives.ReadUInt16LittleEndian(buffer[4..]),
            (FrameFlags)BinaryPrimitives.ReadUInt16LittleEndian(buffer[6..]),
            BinaryPrimitives.ReadUInt64LittleEndian(buffer[8..]));
        return true;
    }

    /// <summary>Writes a header into the first <see cref="HeaderSize"/> bytes of <paramref name="buffer"/>.</summary>
    public static void WriteHeader(Span<byte> buffer, in FrameHeader header)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(buffer, header.PayloadLength);
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[4..], (ushort)header.Type);
        BinaryPrimitives.WriteUInt16LittleEndian(buffer[6..], (ushort)header.Flags);
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[8..], header.RequestId);
    }
}

/// <summary>One frame's header.</summary>
/// <param name="PayloadLength">Bytes of payload after the header.</param>
/// <param name="Type">What the payload is.</param>
/// <param name="Flags">Response, last chunk.</param>
/// <param name="RequestId">Chosen by the client, echoed by every response frame to that request.</param>
public readonly record struct FrameHeader(uint PayloadLength, MessageType Type, FrameFlags Flags, ulong RequestId);

/// <summary>Frame flags.</summary>
[Flags]
public enum FrameFlags : ushort
{
    /// <summary>A request.</summary>
    None = 0,
    /// <summary>A response (or a pushed event) to the request with the frame's id.</summary>
    Response = 1,
    /// <summary>The last frame of a stream of responses (snapshot chunks, a canceled watch).</summary>
    Last = 2,
}

/// <summary>What a frame carries. A response has the type of its request and <see cref="FrameFlags.Response"/>.</summary>
public enum MessageType : ushort
{
    /// <summary>First frame on a connection: magic, lowest and highest version the client speaks. Answered with the chosen version, cluster, member and frame limit.</summary>
    Hello = 1,
    /// <summary>Answer to any request that failed: an <see cref="ErrorCode"/> and a message.</summary>
    Error = 2,
    /// <summary>Keys in a range.</summary>
    Range = 10,
    /// <summary>Put a key.</summary>
    Put = 11,
    /// <summary>Delete a key or range.</summary>
    DeleteRange = 12,
    /// <summary>Compare, then operations.</summary>
    Txn = 13,
    /// <summary>Drop history below a revision.</summary>
    Compact = 14,
    /// <summary>Start a watch; answered once, then <see cref="WatchEvents"/> frames with the same id.</summary>
    WatchCreate = 20,
    /// <summary>Stop a watch (by the id of its create request).</summary>
    WatchCancel = 21,
    /// <summary>Pushed: events of a watch, a progress notification, or its cancellation (flag Last).</summary>
    WatchEvents = 22,
    /// <summary>Grant a lease.</summary>
    LeaseGrant = 30,
    /// <summary>Revoke a lease and delete its keys.</summary>
    LeaseRevoke = 31,
    /// <summary>Renew a lease.</summary>
    LeaseKeepAlive = 32,
    /// <summary>A lease's remaining time.</summary>
    LeaseTimeToLive = 33,
    /// <summary>Every lease.</summary>
    LeaseList = 34,
    /// <summary>The members.</summary>
    MemberList = 40,
    /// <summary>Add a member (voter or learner).</summary>
    MemberAdd = 41,
    /// <summary>Remove a member.</summary>
    MemberRemove = 42,
    /// <summary>Make a learner a voter.</summary>
    MemberPromote = 43,
    /// <summary>Members only: a member announces its name and addresses through the log (sent by a member, not by clients).</summary>
    MemberPublish = 44,
    /// <summary>Members only: a follower reports its memory and storage figures to the leader's autoscaler.</summary>
    ScalingReport = 45,
    /// <summary>Members only: a member that found its database damaged asks the leader to raise its CORRUPT alarm through the log.</summary>
    AlarmRaise = 46,
    /// <summary>This member's status.</summary>
    Status = 50,
    /// <summary>Raised alarms.</summary>
    AlarmList = 51,
    /// <summary>Disarm the alarms.</summary>
    AlarmDisarm = 52,
    /// <summary>Rewrite this member's file compactly.</summary>
    Defragment = 53,
    /// <summary>Hash of the key space.</summary>
    Hash = 54,
    /// <summary>Stream this member's state; answered by chunks, the last flagged Last.</summary>
    Snapshot = 55,
    /// <summary>Hand leadership to another member.</summary>
    MoveLeader = 56,
    /// <summary>The autoscaler's view from the member asked: units, RAM in use by source, storage against quota, decisions (a JSON document).</summary>
    ScaleStatus = 57,
    /// <summary>Set the unit count by hand (u32); refused with the figures when the data or memory in use would not fit.</summary>
    ScaleSet = 58,
    /// <summary>Name and password → a signed token (and this connection acts as that user from now on).</summary>
    Authenticate = 60,
    /// <summary>A token from <see cref="Authenticate"/> (to any member): this connection acts as its user until it expires.</summary>
    AuthToken = 61,
    /// <summary>Whether auth is enabled, and the auth revision.</summary>
    AuthStatus = 62,
    /// <summary>A change of users, roles or auth itself (root only once auth is on); goes through the log.</summary>
    AuthChange = 63,
    /// <summary>User names.</summary>
    UserList = 64,
    /// <summary>One user's roles.</summary>
    UserGet = 65,
    /// <summary>Role names.</summary>
    RoleList = 66,
    /// <summary>One role's permissions.</summary>
    RoleGet = 67,

    /// <summary>Peer links: the first frame, naming cluster, sender, receiver and the link's purpose.</summary>
    PeerHello = 100,
    /// <summary>Peer links: one Raft message.</summary>
    PeerRaft = 101,
    /// <summary>Peer links: a client request a follower hands to the leader.</summary>
    PeerForward = 102,
    /// <summary>Peer links: the leader's response to a forwarded request.</summary>
    PeerForwardReply = 103,
    /// <summary>Peer links: a chunk of a snapshot stream.</summary>
    PeerSnapshotChunk = 104,
    /// <summary>Peer links: the receiver's answer to a hello — its nonce and its proof of the cluster secret.</summary>
    PeerChallenge = 105,
    /// <summary>Peer links: the dialer's proof of the cluster secret over both nonces.</summary>
    PeerProof = 106,
}

/// <summary>Why a request failed.</summary>
public enum ErrorCode : ushort
{
    /// <summary>The frame could not be read (truncated field, bad length, unknown type): fix the client.</summary>
    Malformed = 1,
    /// <summary>The frame is larger than the member accepts.</summary>
    FrameTooLarge = 2,
    /// <summary>No version in common.</summary>
    UnsupportedVersion = 3,
    /// <summary>An argument is out of range (key too long, value too large, bad combination).</summary>
    InvalidArgument = 4,
    /// <summary>The revision asked for was compacted.</summary>
    Compacted = 5,
    /// <summary>The revision asked for is in the future.</summary>
    FutureRevision = 6,
    /// <summary>The lease does not exist.</summary>
    LeaseNotFound = 7,
    /// <summary>A lease with that id exists.</summary>
    LeaseExists = 8,
    /// <summary>The storage quota is exhausted (NOSPACE alarm): compact, defragment and disarm, or add units.</summary>
    NoSpace = 9,
    /// <summary>No leader is known right now: retry shortly (elections take about one election timeout).</summary>
    NoLeader = 10,
    /// <summary>The member is too busy: its proposal queue is full. Retry with backoff.</summary>
    Busy = 11,
    /// <summary>The request took too long; a write's outcome is unknown (it may have been applied).</summary>
    Timeout = 12,
    /// <summary>The member is shutting down or was removed: use another endpoint.</summary>
    Stopping = 13,
    /// <summary>A member change does not fit the cluster (unknown member, a change already in progress).</summary>
    MemberChange = 14,
    /// <summary>The watch does not exist.</summary>
    WatchNotFound = 15,
    /// <summary>Too many requests in flight on this connection.</summary>
    TooManyRequests = 16,
    /// <summary>A failure inside the member; the message says what.</summary>
    Internal = 17,
    /// <summary>The request's duplicate key or similar conflict inside a txn.</summary>
    Conflict = 18,
    /// <summary>A peer from another cluster, or a member this cluster does not know.</summary>
    ClusterMismatch = 19,
    /// <summary>Peer links: the dialing member was removed from the cluster (it stops when told).</summary>
    MemberRemoved = 20,

    // 21–23: connection limits and peer trust; 24: a damaged database; 30–33: auth.

    /// <summary>The member has as many client connections as it accepts (--max-connections); nothing on this connection was served. Try another member or later.</summary>
    TooManyConnections = 21,
    /// <summary>The connection sent nothing for the idle timeout with nothing in flight, or did not finish its hello in time; the member closes it and served nothing sent after this frame.</summary>
    IdleTimeout = 22,
    /// <summary>Peer links: the dialer could not prove it holds the cluster's peer secret (--peer-secret-file), or its certificate is not trusted.</summary>
    PeerAuthFailed = 23,
    /// <summary>
    /// A page of the answering member's database failed its authentication tag or checksum (the message names the page),
    /// or a write was refused because a CORRUPT alarm is raised. The request was not applied: read from another member;
    /// replace the damaged member's data, then disarm the alarm.
    /// </summary>
    Corrupt = 24,

    /// <summary>Wrong user name or password (repeated failures from one address are answered more and more slowly).</summary>
    AuthFailed = 30,
    /// <summary>The authenticated user may not do this on these keys; the message names the operation and key.</summary>
    PermissionDenied = 31,
    /// <summary>Auth is enabled and this connection has no valid token (none given, expired, another cluster's, or its user changed): authenticate again.</summary>
    InvalidAuthToken = 32,
    /// <summary>An auth change that cannot be made (no such user or role, no root user yet, ...).</summary>
    AuthError = 33,
}
