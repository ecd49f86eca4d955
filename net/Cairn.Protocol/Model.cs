using Cairn.Kv;

namespace Cairn.Protocol;

/// <summary>What every response carries, as etcd's header does.</summary>
/// <param name="ClusterId">The cluster that answered.</param>
/// <param name="MemberId">The member that answered.</param>
/// <param name="Revision">The key space's revision at that member after the request.</param>
/// <param name="RaftTerm">The member's Raft term.</param>
public readonly record struct WireHeader(ulong ClusterId, ulong MemberId, long Revision, ulong RaftTerm);

/// <summary>A response together with the header it came with.</summary>
/// <typeparam name="T">The response body.</typeparam>
/// <param name="Header">Who answered, at which revision and term.</param>
/// <param name="Body">The response.</param>
public readonly record struct Answer<T>(WireHeader Header, T Body);

/// <summary>The answer to a hello.</summary>
/// <param name="Version">The protocol version chosen.</param>
/// <param name="ClusterId">The cluster.</param>
/// <param name="MemberId">The member.</param>
/// <param name="MaxFrameBytes">The largest frame the member accepts.</param>
public readonly record struct HelloResponse(ushort Version, ulong ClusterId, ulong MemberId, int MaxFrameBytes);

/// <summary>A member of the cluster.</summary>
/// <param name="Id">Member id.</param>
/// <param name="Name">Its name.</param>
/// <param name="PeerUrl">Where members reach it (host:port).</param>
/// <param name="ClientUrl">Where clients reach it (host:port; empty until it has started and published it).</param>
/// <param name="IsLearner">A learner receives the log and does not vote.</param>
public sealed record MemberInfo(ulong Id, string Name, string PeerUrl, string ClientUrl, bool IsLearner);

/// <summary>A member's status.</summary>
/// <param name="Version">Cairn's version.</param>
/// <param name="DbSize">Bytes of the database file.</param>
/// <param name="DbSizeInUse">Bytes of pages in use.</param>
/// <param name="Leader">The leader this member knows (0: none).</param>
/// <param name="RaftIndex">Last index in its log.</param>
/// <param name="RaftTerm">Its term.</param>
/// <param name="AppliedIndex">Last index applied to its key space.</param>
/// <param name="CommitIndex">Highest index it knows committed.</param>
/// <param name="IsLearner">Whether it is a learner.</param>
/// <param name="Errors">Conditions an operator should know of (alarms, a lagging member).</param>
public sealed record StatusResponse(string Version, long DbSize, long DbSizeInUse, ulong Leader, ulong RaftIndex, ulong RaftTerm,
    ulong AppliedIndex, ulong CommitIndex, bool IsLearner, IReadOnlyList<string> Errors);

/// <summary>The kinds of alarm.</summary>
public enum AlarmType : byte
{
    /// <summary>The storage quota is exhausted: writes are refused until space is freed and the alarm disarmed.</summary>
    NoSpace = 1,
    /// <summary>A member found a page of its database damaged: client writes are refused cluster-wide until it is replaced and the alarm disarmed.</summary>
    Corrupt = 2,
}

/// <summary>A raised alarm.</summary>
/// <param name="MemberId">The member that raised it (0: the cluster).</param>
/// <param name="Type">What it is.</param>
public sealed record Alarm(ulong MemberId, AlarmType Type);

/// <summary>A lease's remaining life.</summary>
/// <param name="Id">The lease.</param>
/// <param name="Ttl">Seconds left (-1: not found).</param>
/// <param name="GrantedTtl">Seconds granted.</param>
/// <param name="Keys">Keys attached, when asked for.</param>
public sealed record LeaseTimeToLiveResponse(long Id, long Ttl, long GrantedTtl, IReadOnlyList<byte[]> Keys);

/// <summary>A key-space hash.</summary>
/// <param name="Hash">The hash.</param>
/// <param name="Revision">The revision it covers.</param>
/// <param name="CompactRevision">The compaction revision then.</param>
public sealed record HashResponse(ulong Hash, long Revision, long CompactRevision);

/// <summary>Options of a range read that are not part of <see cref="RangeRequest"/>.</summary>
public enum Consistency : byte
{
    /// <summary>Linearizable: sees every write acknowledged before it started (confirmed with the leader).</summary>
    Linearizable = 0,
    /// <summary>Serializable: the answering member's latest applied state, without asking the leader.</summary>
    Serializable = 1,
}
