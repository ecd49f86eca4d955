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
    /// <summary>Runs a verb with the given streams (tests capture them); <paramref name="interrupt"/> plays Ctrl+C.</summary>
    internal static Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, TextReader stdin, CancellationToken interrupt) =>
        CairnCli.RunAsync(args, CliIo.Of(stdout, stderr, stdin.ReadToEnd()), interrupt);

    private enum Output { Simple, Json, Table }

    /// <summary>One invocation: its flags, its streams, and the verb's implementation.</summary>
    private sealed partial class Invocation
    {
        private readonly Flags _flags;
        private readonly List<string> _args;            // sub-command names after the verb, then the positional arguments
        private readonly string _verb;
        private readonly CliIo _io;
        private readonly TextWriter _out;
        private readonly TextWriter _err;
        private readonly CancellationToken _interrupt;
        private readonly Output _output;
        private readonly string[] _endpoints;
        private readonly TimeSpan _dialTimeout;
        private readonly TimeSpan _commandTimeout;
        private readonly bool _hex;
        private readonly CairnTlsOptions? _tls;
        private ValueProtector? _protector;             // from --value-key-file, for the verb's lifetime

        public Invocation(Flags flags, string verb, List<string> args, CliIo io, CancellationToken interrupt)
        {
            _flags = flags;
            _verb = verb;
            _args = args;
            _io = io;
            _out = io.Out;
            _err = io.Err;
            _interrupt = interrupt;
            _output = (flags.Get("--write-out") ?? "simple") switch
            {
                "simple" => Output.Simple,
                "json" => Output.Json,
                "table" => Output.Table,
                var w => throw new UsageException($"-w '{w}' is not simple, json or table"),
            };
            _endpoints = (flags.Get("--endpoints") ?? "127.0.0.1:9379").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (_endpoints.Length == 0) throw new UsageException("--endpoints is empty");
            foreach (var e in _endpoints)
            {
                try
                {
                    Cairn.Client.Endpoint.Parse(e);
                }
                catch (ArgumentException x)
                {
                    throw new UsageException($"--endpoints: {CairnCli.WithoutParameter(x)}");
                }
            }
            _dialTimeout = Duration("--dial-timeout", flags.Get("--dial-timeout") ?? "2s");
            _commandTimeout = Duration("--command-timeout", flags.Get("--command-timeout") ?? "10s");
            _hex = flags.Has("--hex");
            if (flags.Has("--cacert") || flags.Has("--cert") || flags.Has("--key"))
            {
                _tls = new CairnTlsOptions { CaFile = flags.Get("--cacert"), CertFile = flags.Get("--cert"), KeyFile = flags.Get("--key") };
                _tls.Validate();
            }
        }

        private static TimeSpan Duration(string flag, string text)
        {
            var d = Flags.Duration(flag, text);
            return d > TimeSpan.Zero ? d : throw new UsageException($"{flag} '{text}' must be more than zero");
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

        private string Arg(int i, string what) => i < _args.Count ? _args[i] : throw new UsageException($"{_verb} needs {what}");

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
                _ => throw new UsageException($"{_verb} {sub ?? ""}: unknown sub-command (see `cairn {_verb} --help`)"),
            };
        }

        // ---- output ----

        private void WriteKv(KeyValue kv, bool keysOnly, bool valueOnly = false)
        {
            if (!valueOnly) WriteBytes(kv.Key);
            if (!keysOnly) WriteBytes(kv.Value);
        }

        /// <summary>A key or value on a line of its own: its bytes exactly, or with --hex as hex.</summary>
        private void WriteBytes(byte[] bytes)
        {
            if (_hex) _out.WriteLine(Show(bytes));
            else _io.WriteLine(bytes);
        }

        /// <summary>Bytes as text, or with --hex as etcdctl prints them: \x61\x62.</summary>
        private string Show(byte[] bytes)
        {
            if (!_hex) return Text(bytes);
            var sb = new StringBuilder(bytes.Length * 4);
            foreach (var b in bytes) sb.Append(CultureInfo.InvariantCulture, $"\\x{b:x2}");
            return sb.ToString();
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
        long.TryParse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id) ? id : throw new UsageException($"lease id '{text}' is not hexadecimal (as `cairn lease grant` prints it)");

    /// <summary>Bytes in SI units, as etcdctl shows database sizes.</summary>
    internal static string Bytes(long n)
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
