using Cairn.Protocol;

namespace Cairn.Fuzz;

/// <summary>
/// The client protocol (net/Cairn.Protocol): the input is the byte stream of a connection. Frames are cut from it as the
/// member's session and the client's connection cut them (<see cref="Frame.TryReadHeader"/>, a frame limit, a partial
/// frame kept for later), and each payload goes to the decoder its type and direction select: every request decoder
/// the member uses, every response decoder the client uses. A malformed frame is answered and the connection carries
/// on, so a <see cref="ProtocolException"/> is caught per frame and the next frame is read.
/// Clean: <see cref="ProtocolException"/> only.
/// </summary>
public sealed class ProtocolTarget : FuzzTarget
{
    /// <summary>Frame limit of the fuzzed connection (a member's default is 4 MiB; smaller here so the oversize path is reachable).</summary>
    public const int MaxFrame = 1 << 20;

    private readonly Lazy<IReadOnlyList<byte[]>> _seeds = new(ProtocolSeeds.All); // lazy: under AFL, instrumented code runs only after the fork server starts

    /// <inheritdoc/>
    public override string Name => "protocol";

    /// <inheritdoc/>
    public override IReadOnlyList<byte[]> Seeds => _seeds.Value;

    /// <inheritdoc/>
    public override string CleanExceptions => nameof(ProtocolException);

    /// <inheritdoc/>
    public override bool IsClean(Exception e) => e is ProtocolException;

    [ThreadStatic]
    private static bool _strict;

    /// <inheritdoc/>
    public override void RunSeed(byte[] input) => Strict(() => Run(input));

    /// <summary>Runs <paramref name="action"/> with every frame refusal on this thread turned into a property violation.</summary>
    internal static void Strict(Action action)
    {
        _strict = true;
        try
        {
            action();
        }
        finally
        {
            _strict = false;
        }
    }

    /// <summary>A frame refused with an error answer (the stream carries on); a seed must have none.</summary>
    internal static void Refused(ProtocolException e)
    {
        if (_strict) throw new FuzzPropertyException($"a valid frame was refused: {e.Message}");
    }

    /// <inheritdoc/>
    public override void Run(byte[] input)
    {
        ReadOnlySpan<byte> data = input;
        var at = 0;
        while (Frame.TryReadHeader(data[at..], out var h))
        {
            if (h.PayloadLength > MaxFrame) throw new ProtocolException(ErrorCode.FrameTooLarge, $"frame of {h.PayloadLength} bytes"); // the session closes here
            var total = Frame.HeaderSize + (int)h.PayloadLength;
            if (data.Length - at < total) return; // a partial frame waits for more bytes
            var payload = data.Slice(at + Frame.HeaderSize, (int)h.PayloadLength);
            at += total;
            try
            {
                if ((h.Flags & FrameFlags.Response) != 0) DecodeResponse(h, payload);
                else DecodeRequest(h, payload);
            }
            catch (ProtocolException e)
            {
                Refused(e);
            }
        }
    }

    /// <summary>What the member reads from each request (Member.Requests.cs, Member.Scaling.cs, ClientSession.cs).</summary>
    public static void DecodeRequest(in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        switch (h.Type)
        {
            case MessageType.Hello:
                _ = Messages.ReadHello(ref r);
                return;
            case MessageType.Range:
                _ = Messages.ReadRangeView(ref r).ToRequest();
                break;
            case MessageType.Put:
                _ = Messages.ReadPut(ref r);
                break;
            case MessageType.DeleteRange:
                _ = Messages.ReadDelete(ref r);
                break;
            case MessageType.Txn:
                _ = Messages.ReadTxn(ref r);
                break;
            case MessageType.Compact or MessageType.LeaseRevoke or MessageType.LeaseKeepAlive or MessageType.Hash:
                _ = r.I64();
                break;
            case MessageType.LeaseGrant:
                _ = r.I64();
                _ = r.I64();
                break;
            case MessageType.LeaseTimeToLive:
                _ = r.I64();
                _ = r.Bool();
                break;
            case MessageType.WatchCreate:
                _ = Messages.ReadWatchCreate(ref r);
                break;
            case MessageType.WatchCancel or MessageType.MemberRemove or MessageType.MemberPromote or MessageType.MoveLeader:
                _ = r.U64();
                break;
            case MessageType.MemberAdd:
                _ = Messages.ReadMemberAdd(ref r);
                break;
            case MessageType.MemberPublish:
                _ = r.String();
                _ = r.String();
                _ = r.String();
                _ = r.U64();
                break;
            case MessageType.ScalingReport:
                _ = r.String();
                _ = r.I64();
                _ = r.I64();
                _ = r.I64();
                break;
            case MessageType.AlarmRaise:
                _ = r.U64();
                _ = r.U8();
                _ = r.String();
                break;
            case MessageType.ScaleSet:
                _ = r.U32();
                break;
            case MessageType.Authenticate:
                _ = r.String();
                _ = r.String();
                break;
            case MessageType.AuthToken or MessageType.UserGet or MessageType.RoleGet:
                _ = r.String();
                break;
            case MessageType.AuthChange:
                _ = AuthMessages.ReadChange(ref r);
                return; // ReadChange checks the end itself
            case MessageType.AuthStatus or MessageType.UserList or MessageType.RoleList:
                break;
            case MessageType.LeaseList or MessageType.MemberList or MessageType.Status or MessageType.AlarmList or MessageType.AlarmDisarm
                or MessageType.Defragment or MessageType.Snapshot or MessageType.ScaleStatus:
                break;
            default:
                throw new ProtocolException(ErrorCode.Malformed, $"unknown request type {(ushort)h.Type}");
        }
        r.End();
    }

    /// <summary>What the client reads from each answer (Cairn.Client's PendingOp and parsers).</summary>
    public static void DecodeResponse(in FrameHeader h, ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload);
        switch (h.Type)
        {
            case MessageType.Hello:
                _ = Messages.ReadHelloResponse(ref r);
                return;
            case MessageType.Error:
                _ = Messages.ReadError(ref r);
                return;
            case MessageType.Snapshot:
                _ = r.Rest(); // raw LZ4 chunks
                return;
        }
        var header = Messages.ReadHeader(ref r);
        switch (h.Type)
        {
            case MessageType.Range:
                _ = Messages.ReadRangeResponse(ref r, header.Revision);
                break;
            case MessageType.Put:
                _ = Messages.ReadPutResponse(ref r, header.Revision);
                break;
            case MessageType.DeleteRange:
                _ = Messages.ReadDeleteResponse(ref r, header.Revision);
                break;
            case MessageType.Txn:
                _ = Messages.ReadTxnResponse(ref r, header.Revision);
                break;
            case MessageType.Compact or MessageType.LeaseRevoke:
                _ = r.I64();
                break;
            case MessageType.WatchEvents:
                _ = Messages.ReadWatchEvents(ref r, header.Revision);
                break;
            case MessageType.LeaseGrant or MessageType.LeaseKeepAlive or MessageType.Defragment:
                _ = r.I64();
                _ = r.I64();
                break;
            case MessageType.LeaseTimeToLive:
                _ = Messages.ReadTimeToLive(ref r);
                break;
            case MessageType.LeaseList:
                _ = Messages.ReadIds(ref r);
                break;
            case MessageType.MemberList:
                _ = Messages.ReadMembers(ref r);
                break;
            case MessageType.MemberAdd or MessageType.MemberRemove or MessageType.MemberPromote:
                _ = r.U64();
                _ = Messages.ReadMembers(ref r);
                break;
            case MessageType.Status:
                _ = Messages.ReadStatus(ref r);
                break;
            case MessageType.AlarmList or MessageType.AlarmDisarm:
                _ = Messages.ReadAlarms(ref r);
                break;
            case MessageType.Hash:
                _ = r.U64();
                _ = r.I64();
                _ = r.I64();
                break;
            case MessageType.ScaleStatus:
                _ = r.String();
                break;
            case MessageType.ScaleSet:
                _ = r.U32();
                break;
            case MessageType.Authenticate or MessageType.AuthToken:
                _ = r.String();
                break;
            case MessageType.AuthStatus:
                _ = r.Bool();
                _ = r.I64();
                break;
            case MessageType.UserList or MessageType.UserGet or MessageType.RoleList:
                _ = AuthMessages.ReadNames(ref r);
                break;
            case MessageType.RoleGet:
                _ = AuthMessages.ReadPermissions(ref r);
                break;
            case MessageType.AuthChange:
                break;
            case MessageType.WatchCreate or MessageType.WatchCancel or MessageType.MoveLeader or MessageType.ScalingReport or MessageType.AlarmRaise:
                break;
            default:
                throw new ProtocolException(ErrorCode.Malformed, $"answer of unknown type {(ushort)h.Type}");
        }
        r.End();
    }
}
