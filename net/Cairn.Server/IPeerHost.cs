using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// What the peer transport (<see cref="PeerTransport"/>, <see cref="PeerLink"/>) needs from the member it serves: who it
/// is and how peers are trusted, where received messages and forwarded requests go, and what it reports back. The
/// transport sees nothing else of the member.
/// </summary>
internal interface IPeerHost
{
    /// <summary>This member's id.</summary>
    ulong Id { get; }

    /// <summary>The cluster's id (a handshake naming another is refused).</summary>
    ulong ClusterId { get; }

    /// <summary>Timeouts, heartbeat, queue bounds.</summary>
    MemberOptions Options { get; }

    /// <summary>The peer links' TLS settings.</summary>
    MemberTls Tls { get; }

    /// <summary>The shared peer secret that authenticates handshakes.</summary>
    byte[] PeerKey { get; }

    /// <summary>Counters for /metrics.</summary>
    MemberCounters Stats { get; }

    /// <summary>Where snapshots received from the leader are built before the raft thread installs them.</summary>
    string IncomingDir { get; }

    /// <summary>The state machine: snapshots sent are read from it, snapshots received are built with its options.</summary>
    KvStateMachine Machine { get; }

    /// <summary>Whether <paramref name="id"/> is a member of the cluster (a peer that is not is refused).</summary>
    bool KnowsMember(ulong id);

    /// <summary>Whether <paramref name="id"/> was removed from the cluster (its links are refused and never redialled).</summary>
    bool WasRemoved(ulong id);

    /// <summary>Writes a line to the member's log.</summary>
    void Log(string line);

    /// <summary>Hands a Raft message to the raft thread (with its pooled holder, or the path of a received snapshot).</summary>
    void Deliver(Message m, ReceivedMessage? holder, string? snapshotPath);

    /// <summary>A message to <paramref name="peer"/> could not be sent: the core stops assuming it arrives.</summary>
    void ReportUnreachable(ulong peer);

    /// <summary>A snapshot sent to <paramref name="peer"/> for <paramref name="term"/> finished or failed.</summary>
    void ReportSnapshot(ulong peer, ulong term, bool succeeded);

    /// <summary>A request another member forwarded to this one (the leader).</summary>
    void OnForwarded(ulong from, ulong forwardId, in FrameHeader h, ReadOnlySpan<byte> payload);

    /// <summary>The leader's answer frames to a request this member forwarded.</summary>
    void OnForwardReply(ulong forwardId, ReadOnlySpan<byte> frames);

    /// <summary>A page failed its check while serving a peer (a snapshot being sent).</summary>
    void OnDamage(CorruptDatabaseException e, string foundBy);

    /// <summary>A peer says this member was removed from the cluster.</summary>
    void OnRemovedByPeer(string message);
}

/// <summary>The member as the peer transport sees it.</summary>
public sealed partial class Member : IPeerHost
{
    MemberCounters IPeerHost.Stats => Stats;
    MemberTls IPeerHost.Tls => Tls;
    byte[] IPeerHost.PeerKey => PeerKey;
    string IPeerHost.IncomingDir => IncomingDir;
    KvStateMachine IPeerHost.Machine => Machine;
    bool IPeerHost.KnowsMember(ulong id) => KnowsMember(id);
    bool IPeerHost.WasRemoved(ulong id) => WasRemoved(id);
    void IPeerHost.Log(string line) => Log(line);
    void IPeerHost.Deliver(Message m, ReceivedMessage? holder, string? snapshotPath) => Deliver(m, holder, snapshotPath);
    void IPeerHost.ReportUnreachable(ulong peer) => ReportUnreachable(peer);
    void IPeerHost.ReportSnapshot(ulong peer, ulong term, bool succeeded) => ReportSnapshot(peer, term, succeeded);
    void IPeerHost.OnForwarded(ulong from, ulong forwardId, in FrameHeader h, ReadOnlySpan<byte> payload) => _router.OnForwarded(from, forwardId, h, payload);
    void IPeerHost.OnForwardReply(ulong forwardId, ReadOnlySpan<byte> frames) => _router.OnForwardReply(forwardId, frames);
    void IPeerHost.OnDamage(CorruptDatabaseException e, string foundBy) => OnDamage(e, foundBy);
    void IPeerHost.OnRemovedByPeer(string message) => OnRemovedByPeer(message);
}
