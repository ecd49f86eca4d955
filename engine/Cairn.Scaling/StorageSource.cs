namespace Cairn.Scaling;

/// <summary>
/// Storage in use: the sizes of the given files plus everything under the given directories (the database file,
/// the WAL directory, snapshot files). Paths that do not exist count 0, so a source can be made before the files are.
/// </summary>
public sealed class StorageSource : IMemorySource
{
    private readonly string[] _paths;

    /// <summary>A source named <paramref name="name"/> over <paramref name="paths"/> (files or directories).</summary>
    public StorageSource(string name, IEnumerable<string> paths)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(paths);
        Name = name;
        _paths = [.. paths.Select(Path.GetFullPath)];
    }

    /// <summary>A source named "storage" over <paramref name="paths"/>.</summary>
    public StorageSource(params string[] paths) : this("storage", (IEnumerable<string>)paths) { }

    /// <inheritdoc/>
    public string Name { get; }

    /// <inheritdoc/>
    public SourceKind Kind => SourceKind.Storage;

    /// <summary>The paths summed, made absolute.</summary>
    public IReadOnlyList<string> Paths => _paths;

    /// <summary>Bytes of the files and directory trees (apparent sizes), read now.</summary>
    public long Bytes
    {
        get
        {
            long total = 0;
            foreach (var path in _paths) total += SizeOf(path);
            return total;
        }
    }

    private static long SizeOf(string path)
    {
        try
        {
            var file = new FileInfo(path);
            if (file.Exists) return file.Length;
            var dir = new DirectoryInfo(path);
            if (!dir.Exists) return 0;
            long total = 0;
            var options = new EnumerationOptions { RecurseSubdirectories = true, IgnoreInaccessible = true, AttributesToSkip = FileAttributes.ReparsePoint };
            // Lengths come with the enumeration, so a file removed while we count (an old WAL segment) costs nothing.
            foreach (var f in dir.EnumerateFiles("*", options)) total += f.Length;
            return total;
        }
        catch (IOException) { return 0; }
        catch (UnauthorizedAccessException) { return 0; }
    }
}
