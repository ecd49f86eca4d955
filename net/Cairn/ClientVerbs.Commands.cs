using System.CommandLine;
using System.CommandLine.Parsing;
using Cairn.Client;

namespace Cairn.Cli;

/// <summary>The client verbs as System.CommandLine commands: etcdctl's names, flags and arguments.</summary>
internal static partial class ClientVerbs
{
    /// <summary>The largest value a member takes (its default limit, etcd's 1.5 MiB): what `put` reads from standard input at most.</summary>
    internal const int MaxValueBytes = 1536 * 1024;

    /// <summary>The flags every client verb takes, before or after the verb; each falls back to its CAIRN_ variable.</summary>
    private static readonly (string Name, string Help, string? Value, string[] Aliases)[] Globals =
    [
        ("--endpoints", "Members to talk to (default 127.0.0.1:9379); the others are found from the member list.", "HOST:PORT,...", []),
        ("--write-out", "Output format: simple, json or table.", "FORMAT", ["-w"]),
        ("--dial-timeout", "How long to wait for a connection (default 2s).", "DURATION", []),
        ("--command-timeout", "How long to wait for an answer (default 10s).", "DURATION", []),
        ("--user", "Authenticate as NAME (the password after ':', from --password, or asked for).", "NAME[:PASSWORD]", []),
        ("--password", "The password of --user.", "PASSWORD", []),
        ("--cacert", "Speak TLS to members whose certificates this CA signed.", "FILE", []),
        ("--cert", "Present this client certificate (with --key).", "FILE", []),
        ("--key", "The private key of --cert.", "FILE", []),
        ("--value-key-file", "Seal values before put and open them on get, txn, watch (the first key seals; FILE holds 64 hex digits).", "[ID=]FILE,...", []),
        ("--hex", "Print keys and values as hex (\\x61\\x62), as etcdctl's --hex.", null, []),
    ];

    /// <summary>Flags of single verbs: name → (help, value name or null for a switch, aliases).</summary>
    private static readonly Dictionary<string, (string Help, string? Value, string[] Aliases)> VerbFlags = new()
    {
        ["--prefix"] = ("Every key that begins with KEY.", null, []),
        ["--from-key"] = ("Every key greater than or equal to KEY.", null, []),
        ["--rev"] = ("At this revision (0: the latest).", "N", []),
        ["--limit"] = ("At most N keys (0: no limit).", "N", []),
        ["--keys-only"] = ("Keys without values.", null, []),
        ["--count-only"] = ("Only how many keys.", null, []),
        ["--consistency"] = ("l (linearizable, the default) or s (serializable: this member's latest).", "l|s", []),
        ["--sort-by"] = ("Sort by CREATE, KEY, MODIFY, VALUE or VERSION.", "TARGET", []),
        ["--order"] = ("ASCEND (default) or DESCEND.", "ORDER", []),
        ["--print-value-only"] = ("Only the values (simple output).", null, []),
        ["--prev-kv"] = ("Also print the key-value as it was before.", null, []),
        ["--lease"] = ("Attach the key to this lease (hex id).", "ID", []),
        ["--ignore-value"] = ("Keep the key's current value (update its lease only).", null, []),
        ["--ignore-lease"] = ("Keep the key's current lease (update its value only).", null, []),
        ["--file"] = ("Read the transaction from FILE instead of standard input.", "FILE", []),
        ["--interactive"] = ("Prompt for each part (txn) / read `watch ...` lines from standard input (watch).", null, ["-i"]),
        ["--once"] = ("Keep the lease alive once, then exit.", null, []),
        ["--keys"] = ("Also list the keys attached.", null, []),
        ["--peer-urls"] = ("The new member's peer address (its --listen-peer).", "HOST:PORT", []),
        ["--learner"] = ("Add it as a learner (it votes once promoted).", null, []),
        ["--cluster"] = ("Every member of the cluster, not only --endpoints.", null, []),
        ["--physical"] = ("Wait until the compaction is applied (always so here).", null, []),
        ["--compressed"] = ("Save the stream LZ4-compressed, as sent.", null, []),
        ["--units"] = ("Set the number of units by hand.", "N", []),
        ["--no-password"] = ("A user without a password (certificate authentication only).", null, []),
    };

    /// <summary>The verbs under the root: each gets its flags, the global flags and an action that runs it.</summary>
    public static void AddTo(RootCommand root, CliIo io, string[] rawArgs, CancellationToken interrupt)
    {
        var options = new Dictionary<string, Option>();
        Option Opt(string name)
        {
            if (options.TryGetValue(name, out var o)) return o;
            var (help, value, aliases) = VerbFlags[name];
            o = value is null ? new Option<bool>(name, aliases) { Description = help } : new Option<string?>(name, aliases) { Description = help, HelpName = value };
            return options[name] = o;
        }
        var globals = Globals.Select(g => g.Value is null
            ? (Option)new Option<bool>(g.Name, g.Aliases) { Description = g.Help }
            : new Option<string?>(g.Name, g.Aliases) { Description = g.Help, HelpName = g.Value }).ToList();
        foreach (var g in globals) root.Options.Add(g);
        var globalNames = Globals.Select(g => g.Name).ToList();

        Command Verb(string name, string help, string[] flags, string[] args, string[]? aliases = null, Command[]? subs = null)
        {
            var c = new Command(name, help);
            foreach (var a in aliases ?? []) c.Aliases.Add(a);
            foreach (var f in flags) c.Options.Add(Opt(f));
            foreach (var g in globals) c.Options.Add(g);
            foreach (var a in args) c.Arguments.Add(Positional(a));
            foreach (var s in subs ?? []) c.Subcommands.Add(s);
            if (subs is null)
            {
                c.SetAction(async (p, _) =>
                {
                    var (verb, positional) = Positionals(p);
                    var command = new Invocation(new Flags(p, fromEnvironment: globalNames), verb, positional, io, interrupt);
                    return await command.RunAsync().ConfigureAwait(false);
                });
            }
            return c;
        }

        Command[] Subs(params Command[] c) => c;

        root.Subcommands.Add(Verb("put", "Put a key (the value from standard input, as bytes, when VALUE is left out).", ["--lease", "--prev-kv", "--ignore-value", "--ignore-lease"], ["KEY", "[VALUE]"]));
        root.Subcommands.Add(Verb("get", "Get a key or a range of keys [KEY, END).", ["--prefix", "--from-key", "--rev", "--limit", "--keys-only", "--count-only", "--consistency", "--sort-by", "--order", "--print-value-only"], ["KEY", "[END]"]));
        root.Subcommands.Add(Verb("del", "Delete a key or a range of keys.", ["--prefix", "--from-key", "--prev-kv"], ["KEY", "[END]"], ["delete"]));
        root.Subcommands.Add(Verb("txn", "A transaction from standard input: compares, a blank line, success ops, a blank line, failure ops.", ["--file", "--interactive"], []));
        root.Subcommands.Add(Verb("watch", "Print the changes to a key or range until Ctrl+C.", ["--prefix", "--rev", "--prev-kv", "--interactive"], ["[KEY]", "[END]"]));
        root.Subcommands.Add(Verb("lease", "Leases.", [], [], subs: Subs(
            Verb("grant", "Grant a lease of TTL seconds.", [], ["TTL"]),
            Verb("revoke", "Revoke a lease and delete its keys.", [], ["ID"]),
            Verb("keep-alive", "Keep a lease alive until Ctrl+C.", ["--once"], ["ID"]),
            Verb("timetolive", "A lease's remaining time.", ["--keys"], ["ID"], ["ttl"]),
            Verb("list", "Every lease.", [], []))));
        root.Subcommands.Add(Verb("member", "Cluster members.", [], [], subs: Subs(
            Verb("list", "Every member.", [], []),
            Verb("add", "Add a member (start it afterwards as printed).", ["--peer-urls", "--learner"], ["NAME"]),
            Verb("remove", "Remove a member, by name or hex id (also one that never started).", [], ["ID|NAME"]),
            Verb("promote", "Promote a learner to voter.", [], ["ID|NAME"]))));
        root.Subcommands.Add(Verb("status", "Every member: endpoint, id, leader, term, revision, indexes, size.", [], []));
        root.Subcommands.Add(Verb("endpoint", "The --endpoints' health and status.", [], [], subs: Subs(
            Verb("health", "Whether each endpoint reaches a quorum.", ["--cluster"], []),
            Verb("status", "Each endpoint's status.", ["--cluster"], []))));
        root.Subcommands.Add(Verb("compact", "Discard the history before revision REV.", ["--physical"], ["REV"], ["compaction"]));
        root.Subcommands.Add(Verb("defrag", "Give a member's free pages back to the file system.", ["--cluster"], []));
        root.Subcommands.Add(Verb("alarm", "Alarms (NOSPACE, CORRUPT).", [], [], subs: Subs(
            Verb("list", "Raised alarms.", [], []),
            Verb("disarm", "Clear the alarms.", [], []))));
        var snapshot = Verb("snapshot", "Snapshots of the key space.", [], [], subs: Subs(
            Verb("save", "Stream a member's snapshot into FILE.", ["--compressed"], ["FILE"])));
        foreach (var c in Snapshots.Commands(io)) snapshot.Subcommands.Add(c);
        root.Subcommands.Add(snapshot);
        root.Subcommands.Add(Verb("move-leader", "Hand leadership to another member.", [], ["ID|NAME"]));
        var scale = Verb("scale", "The autoscaler's view: units, RAM by source, storage against quota.", ["--units"], []);
        root.Subcommands.Add(scale);
        root.Subcommands.Add(Verb("user", "Users.", [], [], subs: Subs(
            Verb("add", "Add a user (NAME:PASSWORD, or asked for).", ["--no-password"], ["NAME[:PASSWORD]"]),
            Verb("delete", "Delete a user.", [], ["NAME"]),
            Verb("list", "Every user.", [], []),
            Verb("get", "A user's roles.", [], ["NAME"]),
            Verb("passwd", "Change a user's password.", [], ["NAME[:PASSWORD]"]),
            Verb("grant-role", "Grant a role to a user.", [], ["NAME", "ROLE"]),
            Verb("revoke-role", "Revoke a role from a user.", [], ["NAME", "ROLE"]))));
        root.Subcommands.Add(Verb("role", "Roles.", [], [], subs: Subs(
            Verb("add", "Add a role.", [], ["NAME"]),
            Verb("delete", "Delete a role.", [], ["NAME"]),
            Verb("list", "Every role.", [], []),
            Verb("get", "A role's permissions.", [], ["NAME"]),
            Verb("grant-permission", "Grant read, write or readwrite on KEY, [KEY, END), a prefix or every key from KEY.", ["--prefix", "--from-key"], ["ROLE", "TYPE", "KEY", "[END]"]),
            Verb("revoke-permission", "Revoke a role's permission on a key or range.", ["--prefix", "--from-key"], ["ROLE", "KEY", "[END]"]))));
        root.Subcommands.Add(Verb("auth", "Authentication.", [], [], subs: Subs(
            Verb("enable", "Turn authentication on (needs a root user: `cairn user add root`).", [], []),
            Verb("disable", "Turn authentication off.", [], []),
            Verb("status", "Whether authentication is on.", [], []))));
    }

    /// <summary>An argument named as in help: "[END]" is optional.</summary>
    private static Argument<string> Positional(string name)
    {
        var optional = name.StartsWith('[');
        return new Argument<string>(optional ? name[1..^1] : name) { Arity = optional ? ArgumentArity.ZeroOrOne : ArgumentArity.ExactlyOne };
    }

    /// <summary>The verb ("lease") and what follows it: the sub-command names ("grant"), then the arguments ("30").</summary>
    private static (string Verb, List<string> Args) Positionals(ParseResult p)
    {
        var chain = new List<CommandResult>();
        for (SymbolResult? r = p.CommandResult; r is CommandResult c && c.Command is not RootCommand; r = c.Parent) chain.Insert(0, c);
        var args = chain.Skip(1).Select(c => c.Command.Name).ToList();
        foreach (var a in p.CommandResult.Command.Arguments)
        {
            if (p.GetResult(a) is { } r) args.AddRange(r.Tokens.Select(t => t.Value));
        }
        return (chain[0].Command.Name, args);
    }
}
