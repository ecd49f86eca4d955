using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Reflection;
using Cairn.Client;
using Cairn.Storage;

namespace Cairn.Cli;

/// <summary>
/// The `cairn` command line: one <see cref="RootCommand"/> (System.CommandLine) with every verb, so parsing, help and
/// `--version` are the library's. On top of it: an unknown flag or a value that looks like one is refused with the
/// closest known name (exit 2); etcd's spellings that Cairn names differently are refused with Cairn's name; an error
/// while running is one line on stderr (exit 1), never a stack trace.
/// </summary>
internal static class CairnCli
{
    /// <summary>Exit codes: 0 done, 1 refused or failed, 2 a usage mistake, 70 a bug (an exception nobody expected).</summary>
    public const int Ok = 0, Failed = 1, Usage = 2, Bug = 70;

    /// <summary>Runs one invocation with the given streams; <paramref name="interrupt"/> plays Ctrl+C.</summary>
    public static async Task<int> RunAsync(string[] args, CliIo io, CancellationToken interrupt)
    {
        try
        {
            return await RunUncaughtAsync(args, io, interrupt).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            return Report(e, io.Err, interrupt);
        }
    }

    private static async Task<int> RunUncaughtAsync(string[] args, CliIo io, CancellationToken interrupt)
    {
        var root = Build(io, args, interrupt);
        if (args.Length == 0)
        {
            // No verb: say what there is, and write nothing.
            Help(root, io.Out);
            return Ok;
        }
        var result = root.Parse(args);
        if (result.Action is HelpAction) return await result.InvokeAsync(Invocation(io), interrupt).ConfigureAwait(false);
        Check(result);
        return await result.InvokeAsync(Invocation(io), interrupt).ConfigureAwait(false);
    }

    private static InvocationConfiguration Invocation(CliIo io) => new()
    {
        Output = io.Out,
        Error = io.Err,
        EnableDefaultExceptionHandler = false, // ours: Report
        ProcessTerminationTimeout = null,      // Ctrl+C and SIGTERM are the verbs' own business
    };

    /// <summary>Refuses what System.CommandLine let through or reported in its own words: one line, the fix in it.</summary>
    private static void Check(ParseResult result)
    {
        var command = result.CommandResult.Command;
        var verb = VerbName(result.CommandResult);
        EtcdSpellings.Check(result.Tokens, command);
        var doubleDash = -1;
        for (var i = 0; i < result.Tokens.Count; i++)
        {
            if (result.Tokens[i].Type == TokenType.DoubleDash)
            {
                doubleDash = i;
                break;
            }
        }
        // An argument that looks like a flag and came before "--" is a flag nobody knows: without this check
        // `get dir --prefix --bogus-flag` would read --bogus-flag as the range end.
        foreach (var r in ArgumentResults(result.CommandResult))
        {
            foreach (var token in r.Tokens)
            {
                if (!LooksLikeFlag(token.Value)) continue;
                var at = IndexOf(result.Tokens, token);
                if (doubleDash >= 0 && at > doubleDash) continue;
                throw new UsageException(UnknownFlag(token.Value, command, verb));
            }
        }
        foreach (var token in result.UnmatchedTokens)
        {
            if (LooksLikeFlag(token)) throw new UsageException(UnknownFlag(token, command, verb));
        }
        if (result.Errors.Count > 0)
        {
            var e = result.Errors[0];
            if (result.UnmatchedTokens.Count > 0)
            {
                var token = result.UnmatchedTokens[0];
                var sub = command.Subcommands.Count > 0 ? Suggest.Closest(token, command.Subcommands.SelectMany(c => c.Aliases.Prepend(c.Name))) : null;
                throw new UsageException(command.Subcommands.Count > 0
                    ? $"unknown {(verb.Length == 0 ? "verb" : $"command for {verb}")} '{token}'{(sub is null ? "" : $"; did you mean {sub}?")} (see `{Cairn(verb)} --help`)"
                    : $"unexpected argument '{token}' for {verb} (see `{Cairn(verb)} --help`)");
            }
            throw new UsageException($"{(verb.Length == 0 ? "" : verb + ": ")}{e.Message.TrimEnd('.')} (see `{Cairn(verb)} --help`)");
        }
    }

    private static IEnumerable<ArgumentResult> ArgumentResults(CommandResult command)
    {
        for (SymbolResult? r = command; r is CommandResult c; r = c.Parent)
        {
            foreach (var child in c.Children)
            {
                if (child is ArgumentResult a) yield return a;
            }
        }
    }

    private static int IndexOf(IReadOnlyList<Token> tokens, Token token)
    {
        for (var i = 0; i < tokens.Count; i++)
        {
            if (ReferenceEquals(tokens[i], token)) return i;
        }
        return -1;
    }

    /// <summary>"-x" or "--xyz", but not "-" (standard input) nor a negative number.</summary>
    private static bool LooksLikeFlag(string token) => token.Length > 1 && token[0] == '-' && !char.IsAsciiDigit(token[1]);

    private static string UnknownFlag(string token, Command command, string verb)
    {
        var name = token.Split('=', 2)[0];
        var known = KnownOptions(command).ToList();
        var close = Suggest.Closest(name, known);
        return $"unknown flag '{name}'{(verb.Length == 0 ? "" : $" for {verb}")}{(close is null ? "" : $"; did you mean {close}?")} (see `{Cairn(verb)} --help`; put '--' before a value that begins with '-')";
    }

    /// <summary>Every option name and alias valid at <paramref name="command"/>, with the recursive ones of its parents.</summary>
    internal static IEnumerable<string> KnownOptions(Command command)
    {
        foreach (var o in command.Options)
        {
            if (o.Hidden) continue;
            yield return o.Name;
            foreach (var a in o.Aliases) yield return a;
        }
        foreach (var parent in command.Parents.OfType<Command>())
        {
            foreach (var o in parent.Options)
            {
                if (!o.Recursive) continue;
                yield return o.Name;
                foreach (var a in o.Aliases) yield return a;
            }
        }
    }

    /// <summary>"get", "member add": the words that named the command.</summary>
    private static string VerbName(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult c && c.Command is not RootCommand; r = c.Parent) names.Insert(0, c.Command.Name);
        return string.Join(' ', names);
    }

    private static string Cairn(string verb) => verb.Length == 0 ? "cairn" : $"cairn {verb}";

    private static void Help(RootCommand root, TextWriter output)
    {
        var result = root.Parse(["--help"]);
        result.Invoke(new InvocationConfiguration { Output = output, Error = output });
    }

    /// <summary>The whole command tree.</summary>
    private static RootCommand Build(CliIo io, string[] args, CancellationToken interrupt)
    {
        var root = new RootCommand("""
            Cairn: a replicated, encrypted, ordered key-value store (the job etcd does). `cairn serve` runs a member;
            the other verbs talk to a running cluster as etcdctl's do (--endpoints, default 127.0.0.1:9379, or
            CAIRN_ENDPOINTS; every global flag has a CAIRN_ variable: CAIRN_USER, CAIRN_PASSWORD, CAIRN_CACERT, ...).
            """);
        foreach (var o in root.Options.OfType<VersionOption>().ToList()) root.Options.Remove(o);
        var version = new Option<bool>("--version") { Description = "Print the version and commit, then exit." };
        root.Options.Add(version);
        root.SetAction(p =>
        {
            if (p.GetValue(version))
            {
                io.Out.WriteLine(VersionText());
                return Ok;
            }
            Help(root, io.Out);
            return Ok;
        });
        root.Subcommands.Add(Serve.ServeCommand(io));
        root.Subcommands.Add(Serve.DevClusterCommand(io));
        ClientVerbs.AddTo(root, io, args, interrupt);
        foreach (var c in Embedded.Commands(io)) root.Subcommands.Add(c);
        root.Subcommands.Add(Certs.Command(io));
        var versionCommand = new Command("version", "Print the version and commit.");
        versionCommand.SetAction(_ =>
        {
            io.Out.WriteLine(VersionText());
            return Ok;
        });
        root.Subcommands.Add(versionCommand);
        var help = new Command("help", "Show help for a verb: cairn help [VERB...].");
        var helpVerb = new Argument<string[]>("VERB") { Arity = ArgumentArity.ZeroOrMore };
        help.Arguments.Add(helpVerb);
        help.SetAction(p =>
        {
            var verbs = p.GetValue(helpVerb) ?? [];
            var target = root.Parse([.. verbs, "--help"]);
            if (target.Errors.Count > 0) throw new UsageException($"no verb '{string.Join(' ', verbs)}' (see `cairn --help`)");
            target.Invoke(new InvocationConfiguration { Output = io.Out, Error = io.Err });
            return Ok;
        });
        root.Subcommands.Add(help);
        return root;
    }

    /// <summary>"cairn 1.0.0 (commit 14207b3…), .NET 10.0.x": the informational version carries the commit after '+'.</summary>
    internal static string VersionText()
    {
        var info = typeof(CairnCli).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        var plus = info.IndexOf('+', StringComparison.Ordinal);
        var (version, commit) = plus < 0 ? (info, "unknown") : (info[..plus], info[(plus + 1)..]);
        return $"cairn {version} (commit {commit}), .NET {Environment.Version}";
    }

    /// <summary>One line on stderr for an exception, and the exit code it means.</summary>
    internal static int Report(Exception e, TextWriter err, CancellationToken interrupt)
    {
        switch (e)
        {
            case OperationCanceledException when interrupt.IsCancellationRequested:
                return Ok;
            case UsageException:
                err.WriteLine($"cairn: {e.Message}");
                return Usage;
            case CairnUnavailableException u:
                var where = string.Join(", ", u.Failures.Select(f => $"{f.Endpoint} ({f.Reason})"));
                err.WriteLine($"cairn: no member reachable at {where}; start one with `cairn serve` or pass --endpoints");
                return Failed;
            case CairnUnknownOutcomeException:
                err.WriteLine($"cairn: outcome unknown: {e.Message}");
                return Failed;
            case CairnException c:
                err.WriteLine(c.Code is { } code ? $"cairn: {code}: {e.Message}" : $"cairn: {e.Message}");
                return Failed;
            case ArgumentException a:
                // A value the command line gave is out of range: a usage mistake. The parameter name is the API's, not the user's.
                err.WriteLine($"cairn: {WithoutParameter(a)}");
                return Usage;
            case FormatException:
                err.WriteLine($"cairn: {e.Message}");
                return Usage;
            case Server.MemberStartException or StorageException or IOException or UnauthorizedAccessException or InvalidOperationException:
                err.WriteLine($"cairn: {OneLine(e.Message)}");
                return Failed;
            default:
                // A bug: still one line (set CAIRN_DEBUG=1 for the stack).
                err.WriteLine($"cairn: unexpected error ({e.GetType().Name}): {OneLine(e.Message)}; please report it with the command that caused it");
                if (Environment.GetEnvironmentVariable("CAIRN_DEBUG") == "1") err.WriteLine(e);
                return Bug;
        }
    }

    /// <summary>The message of an <see cref="ArgumentException"/> without " (Parameter 'x')".</summary>
    internal static string WithoutParameter(ArgumentException e) =>
        e.ParamName is { } name ? e.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : e.Message;

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");
}
