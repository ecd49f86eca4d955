using System.Globalization;

namespace Cairn.Scaling;

/// <summary>
/// The resident bytes of this process's mappings of one file: the sum of <c>Rss:</c> over the blocks of
/// /proc/self/smaps whose path is the file (the storage engine maps the database read-only, so its resident pages are
/// real memory the page cache does not see). 0 when not on Linux, when the file is not mapped, or when smaps cannot be
/// read. Reading walks the whole smaps text, a few hundred lines per mapping: fine once a minute, not per request.
/// </summary>
public sealed class MappedFileResidentSource : IMemorySource
{
    private readonly string _smaps;
    private readonly string[] _paths;  // the path as given, made absolute, and its final link target if it is a link

    /// <summary>A source over the mappings of <paramref name="path"/>.</summary>
    /// <param name="path">The mapped file.</param>
    /// <param name="name">The figure's name; "mapped:" and the file name by default.</param>
    public MappedFileResidentSource(string path, string? name = null) : this(path, name, "/proc/self/smaps") { }

    internal MappedFileResidentSource(string path, string? name, string smapsPath)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(path);
        var full = Path.GetFullPath(path);
        Name = name ?? "mapped:" + Path.GetFileName(full);
        _smaps = smapsPath;
        string? target = null;
        try { target = File.ResolveLinkTarget(full, returnFinalTarget: true)?.FullName; }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        _paths = target is null || target == full ? [full] : [full, target];
    }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public SourceKind Kind => SourceKind.Native;

    /// <summary>Resident bytes of the file's mappings, read now.</summary>
    public long Bytes
    {
        get
        {
            if (!OperatingSystem.IsLinux()) return 0;
            try
            {
                using var reader = new StreamReader(_smaps);
                return Sum(reader, _paths);
            }
            catch (IOException) { return 0; }
            catch (UnauthorizedAccessException) { return 0; }
        }
    }

    /// <summary>
    /// Sums <c>Rss:</c> of the blocks whose header names one of <paramref name="paths"/>. A block is a header line
    /// ("start-end perms offset dev inode [path]") followed by "Field: value [kB]" lines.
    /// </summary>
    internal static long Sum(TextReader smaps, IReadOnlyList<string> paths)
    {
        long total = 0;
        var inFile = false;
        while (smaps.ReadLine() is { } line)
        {
            if (line.Length == 0) continue;
            var space = line.IndexOf(' ', StringComparison.Ordinal);
            var first = space < 0 ? line : line[..space];
            if (!first.EndsWith(':'))
            {
                inFile = Matches(MappingPath(line), paths);
                continue;
            }
            if (inFile && first == "Rss:") total += Kilobytes(line.AsSpan(space + 1)) * 1024;
        }
        return total;
    }

    // The path is what follows the fifth field; it may contain spaces, and is absent for anonymous mappings.
    private static ReadOnlySpan<char> MappingPath(string header)
    {
        var rest = header.AsSpan();
        for (var field = 0; field < 5; field++)
        {
            rest = rest.TrimStart(' ');
            var end = rest.IndexOf(' ');
            if (end < 0) return [];
            rest = rest[end..];
        }
        return rest.Trim();
    }

    private static bool Matches(ReadOnlySpan<char> mapped, IReadOnlyList<string> paths)
    {
        if (mapped.IsEmpty) return false;
        foreach (var p in paths)
        {
            if (mapped.SequenceEqual(p)) return true;
        }
        return false;
    }

    private static long Kilobytes(ReadOnlySpan<char> value)
    {
        value = value.Trim();
        var end = value.IndexOf(' ');
        if (end >= 0) value = value[..end];
        return long.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out var kb) ? kb : 0;
    }
}
