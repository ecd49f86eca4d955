using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>A renewed lease.</summary>
/// <param name="Id">The lease.</param>
/// <param name="Ttl">Seconds it now has to live (its granted TTL).</param>
public sealed record LeaseKeepAliveResponse(long Id, long Ttl);

/// <summary>What a membership change did.</summary>
/// <param name="MemberId">The member added, removed or promoted.</param>
/// <param name="Members">The members after the change.</param>
public sealed record MemberChangeResponse(ulong MemberId, IReadOnlyList<MemberInfo> Members);

/// <summary>The body parsers of every answer (docs/protocol.md, "Messages"), read in place after the header.</summary>
internal static class Parsers
{
    public static readonly BodyParser<RangeResponse> Range = static (ref PayloadReader r, in WireHeader h) => Messages.ReadRangeResponse(ref r, h.Revision);
    public static readonly BodyParser<PutResponse> Put = static (ref PayloadReader r, in WireHeader h) => Messages.ReadPutResponse(ref r, h.Revision);
    public static readonly BodyParser<DeleteRangeResponse> Delete = static (ref PayloadReader r, in WireHeader h) => Messages.ReadDeleteResponse(ref r, h.Revision);
    public static readonly BodyParser<TxnResponse> Txn = static (ref PayloadReader r, in WireHeader h) => Messages.ReadTxnResponse(ref r, h.Revision);
    public static readonly BodyParser<CompactResponse> Compact = static (ref PayloadReader r, in WireHeader h) => new CompactResponse(new ResponseHeader(h.Revision), r.I64());
    public static readonly BodyParser<LeaseGrantResponse> LeaseGrant = static (ref PayloadReader r, in WireHeader h) => new LeaseGrantResponse(new ResponseHeader(h.Revision), r.I64(), r.I64());
    public static readonly BodyParser<LeaseRevokeResponse> LeaseRevoke = static (ref PayloadReader r, in WireHeader h) => new LeaseRevokeResponse(new ResponseHeader(h.Revision), r.I64());
    public static readonly BodyParser<LeaseKeepAliveResponse> LeaseKeepAlive = static (ref PayloadReader r, in WireHeader h) => new LeaseKeepAliveResponse(r.I64(), r.I64());
    public static readonly BodyParser<LeaseTimeToLiveResponse> LeaseTimeToLive = static (ref PayloadReader r, in WireHeader h) => Messages.ReadTimeToLive(ref r);
    public static readonly BodyParser<IReadOnlyList<long>> Ids = static (ref PayloadReader r, in WireHeader h) => Messages.ReadIds(ref r);
    public static readonly BodyParser<IReadOnlyList<MemberInfo>> Members = static (ref PayloadReader r, in WireHeader h) => Messages.ReadMembers(ref r);
    public static readonly BodyParser<MemberChangeResponse> MemberChange = static (ref PayloadReader r, in WireHeader h) => new MemberChangeResponse(r.U64(), Messages.ReadMembers(ref r));
    public static readonly BodyParser<StatusResponse> Status = static (ref PayloadReader r, in WireHeader h) => Messages.ReadStatus(ref r);
    public static readonly BodyParser<IReadOnlyList<Alarm>> Alarms = static (ref PayloadReader r, in WireHeader h) => Messages.ReadAlarms(ref r);
    public static readonly BodyParser<DefragmentResult> Defragment = static (ref PayloadReader r, in WireHeader h) => new DefragmentResult(r.I64(), r.I64());
    public static readonly BodyParser<HashResponse> Hash = static (ref PayloadReader r, in WireHeader h) => new HashResponse(r.U64(), r.I64(), r.I64());
    public static readonly BodyParser<bool> None = static (ref PayloadReader r, in WireHeader h) => true;
}
