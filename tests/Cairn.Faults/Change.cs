namespace Cairn.Faults;

/// <summary>What a committed write did to a key.</summary>
public enum ChangeType
{
    /// <summary>The key was set (a put, or a compare-and-swap that swapped).</summary>
    Put,

    /// <summary>The key was deleted.</summary>
    Delete,
}

/// <summary>
/// A change to one key at one revision: a committed write in a history, or an event a watcher received. Several keys
/// may change at one revision (a transaction); one key changes at most once per revision.
/// </summary>
/// <param name="Revision">The store revision the change made.</param>
/// <param name="Key">The key changed.</param>
/// <param name="Type">Put or delete.</param>
/// <param name="Value">The value put; null for a delete.</param>
public readonly record struct Change(long Revision, string Key, ChangeType Type, string? Value)
{
    /// <summary>A put of <paramref name="value"/> at <paramref name="revision"/>.</summary>
    public static Change Put(long revision, string key, string value) => new(revision, key, ChangeType.Put, value);

    /// <summary>A delete at <paramref name="revision"/>.</summary>
    public static Change Delete(long revision, string key) => new(revision, key, ChangeType.Delete, null);

    /// <summary>For example <c>rev 7 put x = "1"</c>.</summary>
    public override string ToString() =>
        Type == ChangeType.Put ? $"rev {Revision} put {Key} = {OperationFormat.Value(Value)}" : $"rev {Revision} delete {Key}";
}
