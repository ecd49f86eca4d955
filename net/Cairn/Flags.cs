using System.CommandLine;
using System.CommandLine.Parsing;
using System.Globalization;

namespace Cairn.Cli;

/// <summary>
/// The flags of one parsed command, read by name ("--prefix"): what the command line gave, else what the
/// <c>--config</c> file gave (serve), else the <c>CAIRN_*</c> environment variable (the client's global flags, as
/// etcdctl reads <c>ETCDCTL_*</c>), else nothing. System.CommandLine has already refused unknown names.
/// </summary>
internal sealed class Flags
{
    private readonly ParseResult _line;
    private readonly ParseResult? _config;
    private readonly Dictionary<string, Option> _byName = [];
    private readonly HashSet<string> _fromEnvironment;

    public Flags(ParseResult line, ParseResult? config = null, IEnumerable<string>? fromEnvironment = null)
    {
        _line = line;
        _config = config;
        _fromEnvironment = [.. fromEnvironment ?? []];
        for (SymbolResult? r = line.CommandResult; r is CommandResult c; r = c.Parent)
        {
            foreach (var o in c.Command.Options)
            {
                _byName.TryAdd(o.Name, o);
                foreach (var a in o.Aliases) _byName.TryAdd(a, o);
            }
        }
    }

    /// <summary>The environment variable a global flag falls back to: --dial-timeout → CAIRN_DIAL_TIMEOUT.</summary>
    public static string Variable(string flag) => "CAIRN_" + flag.TrimStart('-').Replace('-', '_').ToUpperInvariant();

    /// <summary>The option named <paramref name="name"/>, or null when this command has none (then it was not given).</summary>
    private Option? Find(string name) => _byName.GetValueOrDefault(name);

    private OptionResult? Result(Option o) => _line.GetResult(o) ?? _config?.GetResult(o);

    private string? Environment(Option o) => _fromEnvironment.Contains(o.Name) ? System.Environment.GetEnvironmentVariable(Variable(o.Name)) is { Length: > 0 } v ? v : null : null;

    /// <summary>The value given for <paramref name="name"/>, or null.</summary>
    public string? Get(string name)
    {
        if (Find(name) is not { } o) return null;
        if (Result(o) is { } r) return r.Tokens.Count > 0 ? r.Tokens[^1].Value : o is Option<bool> ? "true" : null;
        return Environment(o);
    }

    /// <summary>Whether <paramref name="name"/> was given (a switch: given and not "false").</summary>
    public bool Has(string name)
    {
        if (Find(name) is not { } o) return false;
        if (Result(o) is { } r) return o is Option<bool> b ? (_line.GetResult(o) is not null ? _line.GetValue(b) : _config!.GetValue(b)) : true;
        var env = Environment(o);
        if (env is null) return false;
        if (o is not Option<bool>) return true;
        return bool.TryParse(env, out var on) ? on : throw new UsageException($"{Variable(o.Name)}='{env}' is not true or false");
    }

    /// <summary>A duration such as 500ms, 30s, 5m or 24h (a bare number is seconds); 0 is allowed (it turns a timeout off where that means anything).</summary>
    public static TimeSpan Duration(string name, string text)
    {
        var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
            : text.EndsWith('s') ? (text[..^1], 1.0)
            : text.EndsWith('m') ? (text[..^1], 60.0)
            : text.EndsWith('h') ? (text[..^1], 3600.0)
            : (text, 1.0);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v < 0) throw new UsageException($"{name} '{text}' is not a duration such as 500ms, 30s, 5m or 24h");
        return TimeSpan.FromSeconds(v * scale);
    }

    public static long Long(string name, string text) =>
        long.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw new UsageException($"{name} '{text}' is not a whole number");
}
