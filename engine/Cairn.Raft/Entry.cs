namespace Cairn.Raft;

/// <summary>One log entry: its position, the term it was proposed in, and the application's bytes.</summary>
/// <param name="Index">Position in the log, from 1.</param>
/// <param name="Term">Term of the leader that proposed it.</param>
/// <param name="Data">The command (empty for a leader's no-op).</param>
public sealed record Entry(ulong Index, ulong Term, byte[] Data);

/// <summary>What a member must remember across restarts: its term, its vote in that term, and the commit index.</summary>
/// <param name="Term">Current term.</param>
/// <param name="Vote">Member voted for in <paramref name="Term"/> (0: none).</param>
/// <param name="Commit">Highest index known committed.</param>
public readonly record struct HardState(ulong Term, ulong Vote, ulong Commit);
