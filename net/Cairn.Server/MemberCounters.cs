namespace Cairn.Server;

/// <summary>The member's counters for /metrics (incremented with Interlocked).</summary>
internal sealed class MemberCounters
{
    /// <summary>Bytes the raft thread has allocated since it started (its steady state is 0 B per request: a rise per request is a regression).</summary>
    public long RaftThreadAllocatedBytes;

    public long Requests, Errors, ClientConnections, Forwarded, ReadRounds, ProposalsApplied, ProposalsRefused, ReadyBatches,
        WalSyncTicks, ApplyTicks, SnapshotsSent, SnapshotsInstalled, PeerRefused, PeerDropped, LeaderChanges, ScaleEvents,
        PermissionDenied, AuthFailures, DiskFullRefusals,

        DamagedPages, ScrubPages, ScrubDamagedPages, ScrubPasses, ScrubLastPass,

        PeerAuthFailures, PeerTlsFailures, ConnectionsRefused, TooManyRequests, FramesTooLarge, IdleClosed, HandshakeTimeouts, TlsFailures;
}
