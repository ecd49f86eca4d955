namespace Cairn.Raft.Tests;

/// <summary>Driving one core by hand: carry out every Ready it has, keeping what the tests look at afterwards.</summary>
internal static class Drive
{
    /// <summary>
    /// Carries out every Ready (persisting is a no-op here) and returns the messages they held, copied: they are kept
    /// past Advance, and a node's messages refer to its log's memory (see <see cref="Ready"/>). Snapshots to install
    /// are added to <paramref name="snapshots"/> when given (the Ready object itself is reused by the node).
    /// </summary>
    public static List<Message> Drain(RaftNode n, List<(SnapshotMetadata Meta, byte[] Data)>? snapshots = null) => DrainAll(n, snapshots).Messages;

    /// <summary>As <see cref="Drain"/>, with the confirmed reads too.</summary>
    public static (List<Message> Messages, List<ReadState> Reads) DrainWithReads(RaftNode n) => DrainAll(n, null);

    private static (List<Message> Messages, List<ReadState> Reads) DrainAll(RaftNode n, List<(SnapshotMetadata Meta, byte[] Data)>? snapshots)
    {
        var messages = new List<Message>();
        var reads = new List<ReadState>();
        while (n.GetReady() is { } r)
        {
            if (r.Snapshot is { } s) snapshots?.Add(s);
            messages.AddRange(r.Messages.Select(m => m.Detach()));
            reads.AddRange(r.ReadStates);
            n.Advance(r);
        }
        return (messages, reads);
    }
}
