using System.CommandLine;

namespace Cairn.Cli;

/// <summary>
/// `cairn serve --config FILE`: the same settings as the flags, one per line as "name value" (also "name: value",
/// "name=value", "--name value"; '#' starts a comment; a switch alone or with true/false). Every name must be a
/// flag of `serve`: an unknown one is refused with its line and the closest known name, never ignored.
/// </summary>
internal static class ConfigFile
{
    /// <summary>Reads <paramref name="path"/> and parses it as flags of <paramref name="serve"/>; flags on the command line win over it.</summary>
    public static ParseResult Parse(string path, Command serve, Command root)
    {
        string[] lines;
        try
        {
            lines = File.ReadAllLines(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--config {path}: {e.Message}");
        }
        var known = CairnCli.KnownOptions(serve).Where(n => n.StartsWith("--", StringComparison.Ordinal) && n != "--config" && n != "--help").ToHashSet();
        var switches = serve.Options.OfType<Option<bool>>().SelectMany(o => o.Aliases.Prepend(o.Name)).ToHashSet();
        var tokens = new List<string> { serve.Name };
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].Trim();
            if (line.Length == 0 || line[0] == '#') continue;
            var cut = line.IndexOfAny([' ', '\t', ':', '=']);
            var name = "--" + (cut < 0 ? line : line[..cut]).Trim().TrimStart('-');
            var value = cut < 0 ? null : line[(cut + 1)..].Trim().Trim('"');
            if (name == "--config") throw new UsageException($"{path} line {i + 1}: a config file cannot name another (config)");
            if (!known.Contains(name))
            {
                var close = Suggest.Closest(name, known);
                throw new UsageException($"{path} line {i + 1}: unknown setting '{name[2..]}'{(close is null ? "" : $"; did you mean {close[2..]}?")} (the settings are the flags of `cairn serve --help`)");
            }
            if (switches.Contains(name))
            {
                if (value is null or "" or "true") tokens.Add(name);
                else if (value != "false") throw new UsageException($"{path} line {i + 1}: {name[2..]} is a switch: give it alone, or 'true' or 'false'");
                continue;
            }
            if (string.IsNullOrEmpty(value)) throw new UsageException($"{path} line {i + 1}: {name[2..]} needs a value");
            tokens.Add(name);
            tokens.Add(value);
        }
        var result = root.Parse(tokens);
        if (result.Errors.Count > 0) throw new UsageException($"{path}: {result.Errors[0].Message.TrimEnd('.')}");
        return result;
    }
}
