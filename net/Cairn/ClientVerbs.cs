using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Cairn.Client;
using Cairn.Kv;
using Cairn.Protocol;

[assembly: InternalsVisibleTo("Cairn.Client.Tests")]
[assembly: InternalsVisibleTo("Cairn.Server.Tests")]

namespace Cairn.Cli;

/// <summary>
/// The `cairn` verbs that talk to a running cluster (docs/client.md): etcdctl's verbs and output formats over
/// <see cref="CairnClient"/>. Member ids print in hex as etcdctl prints them (%x), lease ids as %016x.
/// </summary>
internal static partial class ClientVerbs
{
    public const string Usage = """
        cairn [--endpoints HOST:PORT,...] [-w simple|json|table] [--dial-timeout 2s] [--command-timeout 10s] [--user NAME[:PASSWORD]]
              [--cacert FILE] [--cert FILE --key FILE] VERB ...
          put KEY [VALUE] [--lease ID] [--prev-kv]        (VALUE from stdin when left out)
          get KEY [END] [--prefix] [--rev N] [--limit N] [--keys-only] [--count-only] [--consistency l|s]
          del KEY [END] [--prefix] [--prev-kv]
          txn [--file F] [--interactive]                   compares, blank line, success ops, blank line, failure ops
          watch KEY [END] [--prefix] [--rev N] [--prev-kv] until Ctrl+C
          lease grant TTL | revoke ID | keep-alive ID [--once] | ttl ID [--keys] | list
          member list | add NAME --peer-urls HOST:PORT [--learner] | remove ID|NAME | promote ID|NAME
          status                                           every member: endpoint, id, leader, term, revision, indexes, size
          endpoint health [--cluster] | endpoint status
          compact REV [--physical]     defrag [--cluster]     alarm list | disarm
          snapshot save FILE [--compressed]                 move-leader ID|NAME
          scale [--units N]            the autoscaler's view: units, RAM by source, storage against quota; set units by hand
          user add NAME[:PASSWORD] [--no-password] | delete NAME | list | get NAME | passwd NAME[:PASSWORD]
               | grant-role NAME ROLE | revoke-role NAME ROLE
          role add NAME | delete NAME | list | get NAME | grant-permission ROLE read|write|readwrite KEY [END] [--prefix|--from-key]
               | revoke-permission ROLE KEY [END] [--prefix|--from-key]
          auth enable | disable | status                   enable needs a root user (`cairn user add root`)
            --user NAME[:PASSWORD] authenticates (the password is asked for when left out).
            --endpoints defaults to 127.0.0.1:9379; other members are discovered from the member list.
            --value-key-file [ID=]FILE[,ID=FILE...]  seal values before put and open them on get, txn, watch, del --prev-kv
                                                     (the first key seals, the others only open; FILE holds 64 hex digits)
            --cacert speaks TLS to members whose certificates that CA signed; --cert/--key present a client certificate
            (members started with --client-cert-auth require one; its common name is the user).
        """;

    private static readonly HashSet<string> Verbs = ["put", "get", "del", "txn", "watch", "lease", "member", "status", "endpoint", "compact", "defrag", "alarm", "snapshot", "move-leader", "scale", "user", "role", "auth"];
    private static readonly string[] GlobalFlags = ["--endpoints", "-w", "--write-out", "--dial-timeout", "--command-timeout", "--user", "--value-key-file", "--cacert", "--cert", "--key"];

    /// <summary>Whether <paramref name="verb"/> (the first argument) is one of these verbs, or a global flag before one.</summary>
    public static bool Handles(string verb) =>
        Verbs.Contains(verb) || GlobalFlags.Any(f => verb == f || verb.StartsWith(f + "=", StringComparison.Ordinal));

    /// <summary>Runs a verb on the console; Ctrl+C ends watches and keep-alives.</summary>
    public static int Run(string[] args)
    {
        using var interrupt = new CancellationTokenSource();
        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            e.Cancel = true;
            interrupt.Cancel();
        }
        Console.CancelKeyPress += OnCancel;
        try
        {
            return Run(args, Console.Out, Console.Error, Console.In, interrupt.Token);
        }
        finally
        {
            Console.CancelKeyPress -= OnCancel;
        }
    }

    /// <summary>Runs a verb with the given streams (tests capture them); <paramref name="interrupt"/> plays Ctrl+C.</summary>
    internal static int Run(string[] args, TextWriter stdout, TextWriter stderr, TextReader stdin, CancellationToken interrupt) =>
        RunAsync(args, stdout, stderr, stdin, interrupt).GetAwaiter().GetResult();

    /// <summary>Runs a verb; the exit code: 0 done, 1 refused or unreachable, 2 a usage mistake.</summary>
    internal static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, TextReader stdin, CancellationToken interrupt)
    {
        Command cmd;
        try
        {
            cmd = Command.Parse(args, stdout, stderr, stdin, interrupt);
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            await stderr.WriteLineAsync($"cairn: {e.Message}");
            await stderr.WriteLineAsync("see `cairn help` for the verbs and their flags");
            return 2;
        }
        try
        {
            return await cmd.RunAsync();
        }
        catch (CairnUnavailableException e)
        {
            var where = string.Join(", ", e.Failures.Select(f => $"{f.Endpoint} ({f.Reason})"));
            stderr.WriteLine($"cairn: no member reachable at {where}; start one with `cairn serve` or pass --endpoints");
            return 1;
        }
        catch (CairnUnknownOutcomeException e)
        {
            stderr.WriteLine($"cairn: outcome unknown: {e.Message}");
            return 1;
        }
        catch (CairnException e)
        {
            stderr.WriteLine(e.Code is { } code ? $"cairn: {code}: {e.Message}" : $"cairn: {e.Message}");
            return 1;
        }
        catch (OperationCanceledException) when (interrupt.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e) when (e is ArgumentException or FormatException)
        {
            stderr.WriteLine($"cairn: {e.Message}");
            return 2;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            stderr.WriteLine($"cairn: {e.Message}");
            return 1;
        }
    }

    private enum Output { Simple, Json, Table }

    /// <summary>One invocation: its flags, its streams, and the verb's implementation.</summary>
    private sealed partial class Command
    {
        private readonly Flags _flags;
        private readonly List<string> _args;            // positional arguments after the verb
        private readonly string _verb;
        private readonly TextWriter _out;
        private readonly TextWriter _err;
        private readonly TextReader _in;
        private readonly CancellationToken _interrupt;
        private readonly Output _output;
        private readonly string[] _endpoints;
        private readonly TimeSpan _dialTimeout;
        private readonly TimeSpan _commandTimeout;
        private ValueProtector? _protector;             // from --value-key-file, for the verb's lifetime

        private Command(Flags flags, List<string> positional, TextWriter stdout, TextWriter stderr, TextReader stdin, CancellationToken interrupt)
        {
            _flags = flags;
            if (positional.Count == 0) throw new ArgumentException("no verb given");
            _verb = positional[0];
            if (!Verbs.Contains(_verb)) throw new ArgumentException($"unknown verb '{_verb}'");
            _args = positional[1..];
            _out = stdout;
            _err = stderr;
            _in = stdin;
            _interrupt = interrupt;
            _output = (flags.Get("-w") ?? flags.Get("--write-out") ?? "simple") switch
            {
                "simple" => Output.Simple,
                "json" => Output.Json,
                "table" => Output.Table,
                var w => throw new ArgumentException($"-w '{w}' is not simple, json or table"),
            };
            _endpoints = (flags.Get("--endpoints") ?? "127.0.0.1:9379").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var e in _endpoints) Cairn.Client.Endpoint.Parse(e);
            if (_endpoints.Length == 0) throw new ArgumentException("--endpoints is empty");
            _dialTimeout = Duration("--dial-timeout", flags.Get("--dial-timeout") ?? "2s");
            _commandTimeout = Duration("--command-timeout", flags.Get("--command-timeout") ?? "10s");
            if (flags.Has("--cacert") || flags.Has("--cert") || flags.Has("--key"))
            {
                _tls = new CairnTlsOptions { CaFile = flags.Get("--cacert"), CertFile = flags.Get("--cert"), KeyFile = flags.Get("--key") };
                _tls.Validate();
            }
        }

        private readonly CairnTlsOptions? _tls;

        public static Command Parse(string[] args, TextWriter stdout, TextWriter stderr, TextReader stdin, CancellationToken interrupt)
        {
            // "--" ends the flags: what follows is positional even if it starts with "--" (a value such as "--x").
            var dash = Array.IndexOf(args, "--");
            var flags = Flags.Parse(dash < 0 ? args : args[..dash], 0);
            var positional = new List<string>(flags.Positional);
            if (dash >= 0) positional.AddRange(args[(dash + 1)..]);
            return new Command(flags, positional, stdout, stderr, stdin, interrupt);
        }

        private static TimeSpan Duration(string flag, string text)
        {
            var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 0.001)
                : text.EndsWith('s') ? (text[..^1], 1.0)
                : text.EndsWith('m') ? (text[..^1], 60.0)
                : (text, 1.0);
            if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || v <= 0)
            {
                throw new ArgumentException($"{flag} '{text}' is not a duration such as 500ms, 2s or 1m");
            }
            return TimeSpan.FromSeconds(v * scale);
        }

        private CairnClient Client(IReadOnlyList<string>? endpoints = null, bool discover = true) => new(new CairnClientOptions
        {
            Endpoints = endpoints ?? _endpoints,
            ConnectTimeout = _dialTimeout,
            RequestTimeout = _commandTimeout,
            DiscoverEndpoints = discover,
            Credentials = _credentials ??= Credentials(),
            ValueProtector = _protector,
            Tls = _tls,
        });

        private CairnCredentials? _credentials;

        private string Arg(int i, string what) => i < _args.Count ? _args[i] : throw new ArgumentException($"{_verb} needs {what}");

        private string? OptionalArg(int i) => i < _args.Count ? _args[i] : null;

        private long LongFlag(string name, long fallback = 0) => _flags.Get(name) is { } v ? Flags.Long(name, v) : fallback;

        public async Task<int> RunAsync()
        {
            // Read here rather than when parsing, so a missing key file is reported as an I/O error (exit 1) naming the fix.
            using var protector = _flags.Get("--value-key-file") is { } keyFiles ? ValueProtector.FromKeyFiles(keyFiles) : null;
            _protector = protector;
            await using var client = Client();
            var sub = OptionalArg(0);
            return (_verb, sub) switch
            {
                ("put", _) => await PutAsync(client),
                ("get", _) => await GetAsync(client),
                ("del", _) => await DeleteAsync(client),
                ("txn", _) => await TxnAsync(client),
                ("watch", _) => await WatchAsync(client),
                ("lease", "grant") => await LeaseGrantAsync(client),
                ("lease", "revoke") => await LeaseRevokeAsync(client),
                ("lease", "keep-alive") => await LeaseKeepAliveAsync(client),
                ("lease", "ttl" or "timetolive") => await LeaseTtlAsync(client),
                ("lease", "list") => await LeaseListAsync(client),
                ("member", "list") => await MemberListAsync(client),
                ("member", "add") => await MemberAddAsync(client),
                ("member", "remove") => await MemberChangeAsync(client, remove: true),
                ("member", "promote") => await MemberChangeAsync(client, remove: false),
                ("status", _) => await StatusAsync(client, everyMember: true),
                ("endpoint", "status") => await StatusAsync(client, everyMember: false),
                ("endpoint", "health") => await HealthAsync(client),
                ("compact", _) => await CompactAsync(client),
                ("defrag", _) => await DefragAsync(client),
                ("alarm", "list") => await AlarmsAsync(client, disarm: false),
                ("alarm", "disarm") => await AlarmsAsync(client, disarm: true),
                ("snapshot", "save") => await SnapshotAsync(client),
                ("move-leader", _) => await MoveLeaderAsync(client),
                ("scale", _) => await ScaleAsync(client),
                ("user", _) => await UserAsync(client),
                ("role", _) => await RoleAsync(client),
                ("auth", _) => await AuthAsync(client),
                _ => throw new ArgumentException($"{_verb} {sub ?? ""}: unknown sub-command"),
            };
        }

        // ---- output ----

        private void WriteKv(KeyValue kv, bool keysOnly)
        {
            _out.WriteLine(Text(kv.Key));
            if (!keysOnly) _out.WriteLine(Text(kv.Value));
        }

        private void WriteJson(Action<Utf8JsonWriter> write)
        {
            using var buffer = new MemoryStream();
            using (var w = new Utf8JsonWriter(buffer)) write(w);
            _out.WriteLine(Encoding.UTF8.GetString(buffer.GetBuffer(), 0, (int)buffer.Length));
        }

        /// <summary>etcd's response header in JSON.</summary>
        private static void Header(Utf8JsonWriter w, WireHeader h)
        {
            w.WriteStartObject("header");
            w.WriteNumber("cluster_id", h.ClusterId);
            w.WriteNumber("member_id", h.MemberId);
            w.WriteNumber("revision", h.Revision);
            w.WriteNumber("raft_term", h.RaftTerm);
            w.WriteEndObject();
        }

        /// <summary>A key-value as etcd writes it in JSON: key and value in base64.</summary>
        private static void Kv(Utf8JsonWriter w, string? name, KeyValue kv)
        {
            if (name is null) w.WriteStartObject();
            else w.WriteStartObject(name);
            w.WriteBase64String("key", kv.Key);
            w.WriteNumber("create_revision", kv.CreateRevision);
            w.WriteNumber("mod_revision", kv.ModRevision);
            w.WriteNumber("version", kv.Version);
            w.WriteBase64String("value", kv.Value);
            if (kv.Lease != 0) w.WriteNumber("lease", kv.Lease);
            w.WriteEndObject();
        }

        private void Table(string[] headers, IEnumerable<string[]> rows)
        {
            var all = rows.ToList();
            var widths = headers.Select((h, i) => Math.Max(h.Length, all.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
            var rule = "+" + string.Join("+", widths.Select(w => new string('-', w + 2))) + "+";
            string Line(string[] cells) => "| " + string.Join(" | ", cells.Select((c, i) => c.PadRight(widths[i]))) + " |";
            _out.WriteLine(rule);
            _out.WriteLine(Line(headers));
            _out.WriteLine(rule);
            foreach (var r in all) _out.WriteLine(Line(r));
            _out.WriteLine(rule);
        }
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static string Text(byte[] b) => Encoding.UTF8.GetString(b);

    private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Num(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>A member id as etcdctl prints it.</summary>
    internal static string MemberId(ulong id) => id.ToString("x", CultureInfo.InvariantCulture);

    /// <summary>A lease id as etcdctl prints it.</summary>
    internal static string Lease(long id) => id.ToString("x16", CultureInfo.InvariantCulture);

    private static long HexLease(string text) =>
        long.TryParse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id) ? id : throw new ArgumentException($"lease id '{text}' is not hexadecimal (as `cairn lease grant` prints it)");

    /// <summary>Bytes in SI units, as etcdctl shows database sizes.</summary>
    private static string Bytes(long n)
    {
        string[] units = ["B", "kB", "MB", "GB", "TB"];
        var v = (double)n;
        var u = 0;
        while (v >= 1000 && u < units.Length - 1)
        {
            v /= 1000;
            u++;
        }
        return u == 0 ? $"{n} B" : $"{v.ToString(v < 10 ? "0.#" : "0", CultureInfo.InvariantCulture)} {units[u]}";
    }
}
