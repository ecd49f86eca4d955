namespace Cairn.Faults;

/// <summary>
/// The keys a watch covers, with etcd's rules: no <see cref="RangeEnd"/> is the one key; a range end of "\0" is every
/// key from <see cref="Key"/> on; otherwise keys in [Key, RangeEnd). Keys compare by ordinal (UTF-16 code units, the
/// same order as Cairn's bytes for keys without surrogate pairs, which a test's small key set does not use).
/// </summary>
/// <param name="Key">The first key (or the only one).</param>
/// <param name="RangeEnd">The end of the range, exclusive; null for the one key.</param>
public sealed record WatchRange(string Key, string? RangeEnd = null)
{
    /// <summary>Every key.</summary>
    public static WatchRange All { get; } = new("", "\0");

    /// <summary>Every key starting with <paramref name="prefix"/>.</summary>
    public static WatchRange Prefix(string prefix)
    {
        ArgumentNullException.ThrowIfNull(prefix);
        var end = prefix.TrimEnd(char.MaxValue);
        return end.Length == 0 ? new WatchRange(prefix, "\0") : new WatchRange(prefix, end[..^1] + (char)(end[^1] + 1));
    }

    /// <summary>Whether the watch covers <paramref name="key"/>.</summary>
    public bool Contains(string key)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (RangeEnd is null) return key == Key;
        if (string.CompareOrdinal(key, Key) < 0) return false;
        return RangeEnd == "\0" || string.CompareOrdinal(key, RangeEnd) < 0;
    }

    /// <summary>For example <c>["a", "b")</c> or <c>"x"</c>.</summary>
    public override string ToString() => RangeEnd switch
    {
        null => OperationFormat.Quote(Key),
        "\0" => $"[{OperationFormat.Quote(Key)}, end)",
        _ => $"[{OperationFormat.Quote(Key)}, {OperationFormat.Quote(RangeEnd)})",
    };
}
