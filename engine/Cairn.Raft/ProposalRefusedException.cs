namespace Cairn.Raft;

/// <summary>A proposal was refused: the leader holds too many uncommitted bytes. Retry once the cluster catches up.</summary>
public sealed class ProposalRefusedException(string message) : Exception(message);
