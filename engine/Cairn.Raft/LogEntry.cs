using System.Buffers.Binary;

namespace Cairn.Raft;

/// <summary>What an entry carries.</summary>
public enum EntryKind
{
    /// <summary>A command for the state machine (empty: a leader's no-op).</summary>
    Normal,
    /// <summary>A membership change (<see cref="ConfigChange"/>); takes effect as soon as it is in a member's log.</summary>
    Config,
}

/// <summary>
/// One log entry: its position, the term it was proposed in, and its bytes. A value, not an object: the log holds
/// entries in a list of structs and their bytes in its own slabs (<see cref="EntryArena"/>), so appending one
/// allocates nothing. Bytes handed out by a <see cref="RaftNode"/> — in a <see cref="Ready"/> or its messages —
/// belong to the node's log: they stay valid until the <see cref="RaftNode.Advance"/> that follows the log's
/// compaction past them; whoever keeps an entry longer copies it (<see cref="Detach"/>, <see cref="Message.Detach"/>).
/// Two entries are equal when their positions, terms, kinds and bytes are.
/// </summary>
/// <param name="Index">Position in the log, from 1.</param>
/// <param name="Term">Term of the leader that proposed it.</param>
/// <param name="Data">The command, or an encoded <see cref="ConfigChange"/>.</param>
/// <param name="Kind">What <paramref name="Data"/> is.</param>
public readonly record struct LogEntry(ulong Index, ulong Term, ReadOnlyMemory<byte> Data, EntryKind Kind = EntryKind.Normal)
{
    /// <summary>An entry over <paramref name="data"/> (which it does not copy).</summary>
    public LogEntry(ulong index, ulong term, byte[] data, EntryKind kind = EntryKind.Normal)
        : this(index, term, (ReadOnlyMemory<byte>)data, kind)
    {
    }

    /// <summary>The same entry with bytes of its own, independent of the log it came from.</summary>
    public LogEntry Detach() => this with { Data = Data.ToArray() };

    /// <inheritdoc/>
    public bool Equals(LogEntry other) => Index == other.Index && Term == other.Term && Kind == other.Kind && Data.Span.SequenceEqual(other.Data.Span);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Index, Term, Kind, Data.Length);
}

/// <summary>What a membership change does.</summary>
public enum ConfigChangeType : byte
{
    /// <summary>Add a voting member.</summary>
    AddVoter = 1,
    /// <summary>Remove a member (voter or learner).</summary>
    Remove = 2,
    /// <summary>Add a learner: it receives the log but does not vote.</summary>
    AddLearner = 3,
    /// <summary>Make a learner a voter.</summary>
    PromoteLearner = 4,
}

/// <summary>One membership change, one member at a time (Raft thesis §4.1).</summary>
/// <param name="Type">What it does.</param>
/// <param name="Member">Whom it concerns.</param>
public readonly record struct ConfigChange(ConfigChangeType Type, ulong Member)
{
    /// <summary>The change's bytes, as carried by a config entry, followed by an opaque <paramref name="context"/> the core ignores (the server's member record).</summary>
    public byte[] Encode(ReadOnlySpan<byte> context = default)
    {
        var b = new byte[9 + context.Length];
        b[0] = (byte)Type;
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(1), Member);
        context.CopyTo(b.AsSpan(9));
        return b;
    }

    /// <summary>The opaque context that follows a change in a config entry's bytes (empty when there is none).</summary>
    public static ReadOnlySpan<byte> Context(ReadOnlySpan<byte> b) => b.Length > 9 ? b[9..] : [];

    /// <summary>Reads a change; <see cref="InvalidDataException"/> when the bytes are not one.</summary>
    public static ConfigChange Decode(ReadOnlySpan<byte> b)
    {
        if (b.Length < 9 || b[0] is < 1 or > 4) throw new InvalidDataException("not a membership change");
        return new ConfigChange((ConfigChangeType)b[0], BinaryPrimitives.ReadUInt64LittleEndian(b[1..]));
    }
}

/// <summary>What a member must remember across restarts: its term, its vote in that term, and the commit index.</summary>
/// <param name="Term">Current term.</param>
/// <param name="Vote">Member voted for in <paramref name="Term"/> (0: none).</param>
/// <param name="Commit">Highest index known committed.</param>
public readonly record struct HardState(ulong Term, ulong Vote, ulong Commit);
