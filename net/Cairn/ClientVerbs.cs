using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using System.Text.Json;
using Cairn.Client;
using Cairn.Kv;
using Cairn.Protocol;

[assembly: InternalsVisibleTo("Cairn.Client.Tests")]

namespace Cairn.Cli;

/// <summary>
/// The `cairn` verbs that talk to a running cluster (docs/client.md): etcdctl's verbs and output formats over
/// <see cref="CairnClient"/>. Member ids print in hex as etcdctl prints them (%x), lease ids as %016x.
/// </summary>
internal static class ClientVerbs
{
    public const string Usage = """
        cairn [--endpoints HOST:PORT,...] [-w simple|json|table] [--dial-timeout 2s] [--command-timeout 10s] VERB ...
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
            --endpoints defaults to 127.0.0.1:9379; other members are discovered from the member list.
        """;

    private static readonly HashSet<string> Verbs = ["put", "get", "del", "txn", "watch", "lease", "member", "status", "endpoint", "compact", "defrag", "alarm", "snapshot", "move-leader", "scale"];
    private static readonly string[] GlobalFlags = ["--endpoints", "-w", "--write-out", "--dial-timeout", "--command-timeout"];

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
    private sealed class Command
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
        }

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
        });

        private string Arg(int i, string what) => i < _args.Count ? _args[i] : throw new ArgumentException($"{_verb} needs {what}");

        private string? OptionalArg(int i) => i < _args.Count ? _args[i] : null;

        private long LongFlag(string name, long fallback = 0) => _flags.Get(name) is { } v ? Flags.Long(name, v) : fallback;

        public async Task<int> RunAsync()
        {
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
                _ => throw new ArgumentException($"{_verb} {sub ?? ""}: unknown sub-command"),
            };
        }

        // ---- key-values ----

        private async Task<int> PutAsync(CairnClient client)
        {
            var key = Arg(0, "a KEY");
            var value = OptionalArg(1) ?? _in.ReadToEnd().TrimEnd('\n', '\r');
            var lease = _flags.Get("--lease") is { } l ? HexLease(l) : 0;
            var (h, put) = await client.PutAsync(new PutRequest { Key = Utf8(key), Value = Utf8(value), Lease = lease, PrevKv = _flags.Has("--prev-kv") }, _interrupt);
            if (_output == Output.Json)
            {
                WriteJson(w =>
                {
                    w.WriteStartObject();
                    Header(w, h);
                    if (put.PrevKv is { } prev) Kv(w, "prev_kv", prev);
                    w.WriteEndObject();
                });
                return 0;
            }
            _out.WriteLine("OK");
            if (put.PrevKv is { } p) WriteKv(p, keysOnly: false);
            return 0;
        }

        private RangeRequest RangeOf(bool forGet)
        {
            var key = Utf8(Arg(0, "a KEY"));
            var end = OptionalArg(1) is { } e ? Utf8(e) : [];
            if (_flags.Has("--prefix"))
            {
                if (end.Length > 0) throw new ArgumentException("give either END or --prefix, not both");
                end = RangeRequest.Prefix(key);
                if (key.Length == 0) key = [0];
            }
            if (!forGet) return new RangeRequest { Key = key, RangeEnd = end };
            return new RangeRequest
            {
                Key = key,
                RangeEnd = end,
                Revision = LongFlag("--rev"),
                Limit = LongFlag("--limit"),
                KeysOnly = _flags.Has("--keys-only"),
                CountOnly = _flags.Has("--count-only"),
            };
        }

        private async Task<int> GetAsync(CairnClient client)
        {
            var request = RangeOf(forGet: true);
            var consistency = (_flags.Get("--consistency") ?? "l") switch
            {
                "l" => Consistency.Linearizable,
                "s" => Consistency.Serializable,
                var c => throw new ArgumentException($"--consistency '{c}' is not l (linearizable) or s (serializable)"),
            };
            var (h, range) = await client.RangeAsync(request, consistency, _interrupt);
            switch (_output)
            {
                case Output.Json:
                    WriteJson(w =>
                    {
                        w.WriteStartObject();
                        Header(w, h);
                        if (range.Kvs.Count > 0)
                        {
                            w.WriteStartArray("kvs");
                            foreach (var kv in range.Kvs) Kv(w, null, kv);
                            w.WriteEndArray();
                        }
                        if (range.More) w.WriteBoolean("more", true);
                        w.WriteNumber("count", range.Count);
                        w.WriteEndObject();
                    });
                    break;
                case Output.Table:
                    Table(["KEY", "VALUE", "CREATE", "MOD", "VERSION", "LEASE"],
                        range.Kvs.Select(kv => new[] { Text(kv.Key), Text(kv.Value), Num(kv.CreateRevision), Num(kv.ModRevision), Num(kv.Version), kv.Lease == 0 ? "" : Lease(kv.Lease) }));
                    break;
                default:
                    if (request.CountOnly) _out.WriteLine(range.Count.ToString(CultureInfo.InvariantCulture));
                    foreach (var kv in range.Kvs) WriteKv(kv, request.KeysOnly);
                    break;
            }
            return 0;
        }

        private async Task<int> DeleteAsync(CairnClient client)
        {
            var range = RangeOf(forGet: false);
            var (h, del) = await client.DeleteAsync(new DeleteRangeRequest { Key = range.Key, RangeEnd = range.RangeEnd, PrevKv = _flags.Has("--prev-kv") }, _interrupt);
            if (_output == Output.Json)
            {
                WriteJson(w =>
                {
                    w.WriteStartObject();
                    Header(w, h);
                    w.WriteNumber("deleted", del.Deleted);
                    if (del.PrevKvs.Count > 0)
                    {
                        w.WriteStartArray("prev_kvs");
                        foreach (var kv in del.PrevKvs) Kv(w, null, kv);
                        w.WriteEndArray();
                    }
                    w.WriteEndObject();
                });
                return 0;
            }
            _out.WriteLine(del.Deleted.ToString(CultureInfo.InvariantCulture));
            foreach (var kv in del.PrevKvs) WriteKv(kv, keysOnly: false);
            return 0;
        }

        private async Task<int> CompactAsync(CairnClient client)
        {
            var rev = Flags.Long("REV", Arg(0, "a revision"));
            var (h, _) = await client.CompactAsync(rev, _interrupt);
            // The member answers once the compaction is applied, so --physical (wait for it) is what always happens.
            if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); Header(w, h); w.WriteEndObject(); });
            else _out.WriteLine($"compacted revision {rev}");
            return 0;
        }

        // ---- transactions ----

        private async Task<int> TxnAsync(CairnClient client)
        {
            var interactive = _flags.Has("--interactive");
            var text = _flags.Get("--file") is { } file ? await File.ReadAllTextAsync(file, _interrupt) : null;
            using var reader = text is null ? null : new StringReader(text);
            var input = reader ?? _in;
            var (h, txn) = await client.TxnAsync(TxnScript.Parse(input, interactive ? _err : null), _interrupt);
            if (_output == Output.Json)
            {
                WriteJson(w =>
                {
                    w.WriteStartObject();
                    Header(w, h);
                    w.WriteBoolean("succeeded", txn.Succeeded);
                    w.WriteStartArray("responses");
                    foreach (var r in txn.Responses)
                    {
                        w.WriteStartObject();
                        if (r.Put is { } p)
                        {
                            w.WriteStartObject("response_put");
                            if (p.PrevKv is { } prev) Kv(w, "prev_kv", prev);
                            w.WriteEndObject();
                        }
                        else if (r.Delete is { } d)
                        {
                            w.WriteStartObject("response_delete_range");
                            w.WriteNumber("deleted", d.Deleted);
                            w.WriteEndObject();
                        }
                        else if (r.Range is { } g)
                        {
                            w.WriteStartObject("response_range");
                            w.WriteStartArray("kvs");
                            foreach (var kv in g.Kvs) Kv(w, null, kv);
                            w.WriteEndArray();
                            w.WriteNumber("count", g.Count);
                            w.WriteEndObject();
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
                return 0;
            }
            _out.WriteLine(txn.Succeeded ? "SUCCESS" : "FAILURE");
            foreach (var r in txn.Responses)
            {
                _out.WriteLine();
                if (r.Put is not null) _out.WriteLine("OK");
                else if (r.Delete is { } d) _out.WriteLine(d.Deleted.ToString(CultureInfo.InvariantCulture));
                else if (r.Range is { } g) foreach (var kv in g.Kvs) WriteKv(kv, keysOnly: false);
            }
            return 0;
        }

        // ---- watch ----

        private async Task<int> WatchAsync(CairnClient client)
        {
            var range = RangeOf(forGet: false);
            var request = new WatchRequest { Key = range.Key, RangeEnd = range.RangeEnd, StartRevision = LongFlag("--rev"), PrevKv = _flags.Has("--prev-kv") };
            try
            {
                await foreach (var r in client.WatchAsync(request, _interrupt))
                {
                    if (_output == Output.Json)
                    {
                        WriteJson(w =>
                        {
                            w.WriteStartObject();
                            w.WriteStartObject("header");
                            w.WriteNumber("revision", r.Header.Revision);
                            w.WriteEndObject();
                            w.WriteStartArray("events");
                            foreach (var e in r.Events)
                            {
                                w.WriteStartObject();
                                if (e.Type == WatchEventType.Delete) w.WriteString("type", "DELETE");
                                Kv(w, "kv", e.Kv);
                                if (e.PrevKv is { } prev) Kv(w, "prev_kv", prev);
                                w.WriteEndObject();
                            }
                            w.WriteEndArray();
                            if (r.Canceled) w.WriteBoolean("canceled", true);
                            if (r.CompactRevision != 0) w.WriteNumber("compact_revision", r.CompactRevision);
                            w.WriteEndObject();
                        });
                    }
                    else
                    {
                        foreach (var e in r.Events)
                        {
                            _out.WriteLine(e.Type == WatchEventType.Put ? "PUT" : "DELETE");
                            if (e.PrevKv is { } prev) WriteKv(prev, keysOnly: false);
                            WriteKv(e.Kv, keysOnly: false);
                        }
                    }
                    _out.Flush();
                    if (r.Canceled)
                    {
                        _err.WriteLine($"cairn: watch canceled: revision {request.StartRevision} was compacted (compacted up to {r.CompactRevision}); watch from --rev {r.CompactRevision} or later");
                        return 1;
                    }
                }
            }
            catch (OperationCanceledException) when (_interrupt.IsCancellationRequested)
            {
            }
            return 0;
        }

        // ---- leases ----

        private async Task<int> LeaseGrantAsync(CairnClient client)
        {
            var ttl = Flags.Long("TTL", Arg(1, "a TTL in seconds"));
            var (h, g) = await client.LeaseGrantAsync(ttl, cancellationToken: _interrupt);
            if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); Header(w, h); w.WriteNumber("ID", g.Id); w.WriteNumber("TTL", g.Ttl); w.WriteEndObject(); });
            else _out.WriteLine($"lease {Lease(g.Id)} granted with TTL({g.Ttl}s)");
            return 0;
        }

        private async Task<int> LeaseRevokeAsync(CairnClient client)
        {
            var id = HexLease(Arg(1, "a lease ID"));
            var (h, _) = await client.LeaseRevokeAsync(id, _interrupt);
            if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); Header(w, h); w.WriteEndObject(); });
            else _out.WriteLine($"lease {Lease(id)} revoked");
            return 0;
        }

        private async Task<int> LeaseKeepAliveAsync(CairnClient client)
        {
            var id = HexLease(Arg(1, "a lease ID"));
            try
            {
                while (true)
                {
                    var (h, k) = await client.LeaseKeepAliveAsync(id, _interrupt);
                    if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); Header(w, h); w.WriteNumber("ID", k.Id); w.WriteNumber("TTL", k.Ttl); w.WriteEndObject(); });
                    else _out.WriteLine($"lease {Lease(id)} keepalived with TTL({k.Ttl})");
                    _out.Flush();
                    if (_flags.Has("--once")) return 0;
                    await Task.Delay(TimeSpan.FromSeconds(Math.Max(k.Ttl / 3.0, 0.5)), _interrupt);
                }
            }
            catch (OperationCanceledException) when (_interrupt.IsCancellationRequested)
            {
                return 0;
            }
            catch (CairnLeaseNotFoundException)
            {
                _out.WriteLine($"lease {Lease(id)} expired or revoked.");
                return 1;
            }
        }

        private async Task<int> LeaseTtlAsync(CairnClient client)
        {
            var id = HexLease(Arg(1, "a lease ID"));
            Answer<LeaseTimeToLiveResponse> answer;
            try
            {
                answer = await client.LeaseTimeToLiveAsync(id, _flags.Has("--keys"), _interrupt);
            }
            catch (CairnLeaseNotFoundException)
            {
                _out.WriteLine($"lease {Lease(id)} already expired");
                return 0;
            }
            var (h, t) = answer;
            if (_output == Output.Json)
            {
                WriteJson(w =>
                {
                    w.WriteStartObject();
                    Header(w, h);
                    w.WriteNumber("id", t.Id);
                    w.WriteNumber("ttl", t.Ttl);
                    w.WriteNumber("granted-ttl", t.GrantedTtl);
                    if (t.Keys.Count > 0)
                    {
                        w.WriteStartArray("keys");
                        foreach (var k in t.Keys) w.WriteBase64StringValue(k);
                        w.WriteEndArray();
                    }
                    w.WriteEndObject();
                });
                return 0;
            }
            var line = $"lease {Lease(id)} granted with TTL({t.GrantedTtl}s), remaining({t.Ttl}s)";
            if (_flags.Has("--keys")) line += $", attached keys([{string.Join(' ', t.Keys.Select(Text))}])";
            _out.WriteLine(line);
            return 0;
        }

        private async Task<int> LeaseListAsync(CairnClient client)
        {
            var (h, ids) = await client.LeaseListAsync(_interrupt);
            if (_output == Output.Json)
            {
                WriteJson(w =>
                {
                    w.WriteStartObject();
                    Header(w, h);
                    w.WriteStartArray("leases");
                    foreach (var id in ids) { w.WriteStartObject(); w.WriteNumber("id", id); w.WriteEndObject(); }
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
                return 0;
            }
            _out.WriteLine($"found {ids.Count} leases");
            foreach (var id in ids) _out.WriteLine(Lease(id));
            return 0;
        }

        // ---- members ----

        private async Task<int> MemberListAsync(CairnClient client)
        {
            var (h, members) = await client.MemberListAsync(_interrupt);
            WriteMembers(h, members);
            return 0;
        }

        private void WriteMembers(WireHeader h, IReadOnlyList<MemberInfo> members)
        {
            switch (_output)
            {
                case Output.Json:
                    WriteJson(w =>
                    {
                        w.WriteStartObject();
                        Header(w, h);
                        w.WriteStartArray("members");
                        foreach (var m in members)
                        {
                            w.WriteStartObject();
                            w.WriteNumber("ID", m.Id);
                            w.WriteString("name", m.Name);
                            w.WriteStartArray("peerURLs");
                            w.WriteStringValue(m.PeerUrl);
                            w.WriteEndArray();
                            w.WriteStartArray("clientURLs");
                            if (m.ClientUrl.Length > 0) w.WriteStringValue(m.ClientUrl);
                            w.WriteEndArray();
                            if (m.IsLearner) w.WriteBoolean("isLearner", true);
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                        w.WriteEndObject();
                    });
                    break;
                case Output.Table:
                    Table(["ID", "STATUS", "NAME", "PEER ADDRS", "CLIENT ADDRS", "IS LEARNER"], members.Select(MemberRow));
                    break;
                default:
                    foreach (var m in members) _out.WriteLine(string.Join(", ", MemberRow(m)));
                    break;
            }
        }

        private static string[] MemberRow(MemberInfo m) =>
            [MemberId(m.Id), m.ClientUrl.Length > 0 ? "started" : "unstarted", m.Name, m.PeerUrl, m.ClientUrl, m.IsLearner ? "true" : "false"];

        private async Task<int> MemberAddAsync(CairnClient client)
        {
            var name = Arg(1, "a member NAME");
            var peer = _flags.Get("--peer-urls") ?? throw new ArgumentException("member add needs --peer-urls HOST:PORT (the new member's --listen-peer)");
            var (h, added) = await client.MemberAddAsync(name, peer, _flags.Has("--learner"), _interrupt);
            if (_output == Output.Json)
            {
                WriteMembers(h, added.Members);
                return 0;
            }
            _out.WriteLine($"Member {MemberId(added.MemberId)} added to cluster {MemberId(h.ClusterId)}");
            var cluster = string.Join(",", added.Members.Select(m => $"{m.Name}={m.PeerUrl}"));
            _out.WriteLine();
            _out.WriteLine("Start it with:");
            _out.WriteLine($"  cairn serve --name {name} --listen-peer {peer} --initial-cluster {cluster} --initial-cluster-state existing");
            return 0;
        }

        private async Task<int> MemberChangeAsync(CairnClient client, bool remove)
        {
            var id = await MemberIdOfAsync(client, Arg(1, "a member ID or NAME"));
            var (h, _) = remove ? await client.MemberRemoveAsync(id, _interrupt) : await client.MemberPromoteAsync(id, _interrupt);
            if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); Header(w, h); w.WriteEndObject(); });
            else _out.WriteLine($"Member {MemberId(id)} {(remove ? "removed from" : "promoted in")} cluster {MemberId(h.ClusterId)}");
            return 0;
        }

        /// <summary>A member named by its name, or by its id in hex.</summary>
        private async Task<ulong> MemberIdOfAsync(CairnClient client, string text)
        {
            var (_, members) = await client.MemberListAsync(_interrupt);
            if (members.FirstOrDefault(m => m.Name == text) is { } byName) return byName.Id;
            if (ulong.TryParse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id)) return id;
            throw new ArgumentException($"'{text}' is neither a member name ({string.Join(", ", members.Select(m => m.Name))}) nor a hex member id");
        }

        /// <summary>`cairn scale [--units N]`: sets the unit count when asked, then shows the autoscaler's view.</summary>
        private async Task<int> ScaleAsync(CairnClient client)
        {
            if (_flags.Get("--units") is { } text)
            {
                var (_, units) = await client.ScaleSetAsync((int)Flags.Long("--units", text), _interrupt);
                if (_output != Output.Json) _out.WriteLine($"Units set to {units}");
            }
            var (_, json) = await client.ScaleStatusAsync(cancellationToken: _interrupt);
            if (_output == Output.Json)
            {
                _out.WriteLine(json);
                return 0;
            }
            using var doc = System.Text.Json.JsonDocument.Parse(json);
            var root = doc.RootElement;
            static string Size(System.Text.Json.JsonElement e) => e.ValueKind == System.Text.Json.JsonValueKind.Number ? Cairn.Scaling.ByteSize.Format(e.GetInt64()) : "-";
            if (!root.GetProperty("enabled").GetBoolean())
            {
                _out.WriteLine($"autoscaling off (fixed quota {Size(root.GetProperty("storageQuotaBytes"))})");
                return 0;
            }
            _out.WriteLine($"units {root.GetProperty("units")} (max {(root.GetProperty("maxUnits").ValueKind == System.Text.Json.JsonValueKind.Null ? "none" : root.GetProperty("maxUnits").ToString())}), unit RAM {Size(root.GetProperty("unitRamBytes"))}");
            _out.WriteLine($"RAM in use {Size(root.GetProperty("ramInUseBytes"))} of {Size(root.GetProperty("ramProvisionedBytes"))}; storage in use {Size(root.GetProperty("storageInUseBytes"))} of {Size(root.GetProperty("storageQuotaBytes"))}");
            if (root.GetProperty("sources").ValueKind == System.Text.Json.JsonValueKind.Array)
            {
                foreach (var src in root.GetProperty("sources").EnumerateArray()) _out.WriteLine($"  {src.GetProperty("name").GetString(),-18} {Size(src.GetProperty("bytes")),10}  ({src.GetProperty("kind").GetString()})");
            }
            if (root.GetProperty("lastDecision").ValueKind == System.Text.Json.JsonValueKind.String) _out.WriteLine($"last decision: {root.GetProperty("lastDecision").GetString()}");
            if (root.GetProperty("events").ValueKind == System.Text.Json.JsonValueKind.Array)
            {
                foreach (var e in root.GetProperty("events").EnumerateArray()) _out.WriteLine($"  {e.GetString()}");
            }
            return 0;
        }

        private async Task<int> MoveLeaderAsync(CairnClient client)
        {
            var target = await MemberIdOfAsync(client, Arg(0, "the target member's ID or NAME"));
            var (_, status) = await client.StatusAsync(cancellationToken: _interrupt);
            var h = await client.MoveLeaderAsync(target, _interrupt);
            if (_output == Output.Json) WriteJson(w => { w.WriteStartObject(); Header(w, h); w.WriteEndObject(); });
            else _out.WriteLine($"Leadership transferred from {MemberId(status.Leader)} to {MemberId(target)}");
            return 0;
        }

        // ---- maintenance ----

        private sealed record EndpointStatus(string Endpoint, WireHeader Header, StatusResponse? Status, string? Name, string? Error);

        private async Task<int> StatusAsync(CairnClient client, bool everyMember)
        {
            List<(string Endpoint, string? Name)> targets;
            if (everyMember)
            {
                var (_, members) = await client.MemberListAsync(_interrupt);
                targets = [.. members.Select(m => (m.ClientUrl.Length > 0 ? m.ClientUrl : $"({m.Name}: no client address yet)", (string?)m.Name))];
            }
            else
            {
                targets = [.. _endpoints.Select(e => (e, (string?)null))];
            }
            var rows = await Task.WhenAll(targets.Select(async t =>
            {
                if (!Cairn.Client.Endpoint.IsDialable(t.Endpoint)) return new EndpointStatus(t.Endpoint, default, null, t.Name, "not started");
                try
                {
                    var (h, s) = await client.StatusAsync(t.Endpoint, _interrupt);
                    return new EndpointStatus(t.Endpoint, h, s, t.Name, null);
                }
                catch (CairnException e)
                {
                    return new EndpointStatus(t.Endpoint, default, null, t.Name, e.Message);
                }
            }));
            switch (_output)
            {
                case Output.Json:
                    WriteJson(w =>
                    {
                        w.WriteStartArray();
                        foreach (var r in rows)
                        {
                            w.WriteStartObject();
                            w.WriteString("Endpoint", r.Endpoint);
                            if (r.Status is { } s)
                            {
                                w.WriteStartObject("Status");
                                Header(w, r.Header);
                                w.WriteString("version", s.Version);
                                w.WriteNumber("dbSize", s.DbSize);
                                w.WriteNumber("dbSizeInUse", s.DbSizeInUse);
                                w.WriteNumber("leader", s.Leader);
                                w.WriteNumber("raftIndex", s.RaftIndex);
                                w.WriteNumber("raftTerm", s.RaftTerm);
                                w.WriteNumber("raftAppliedIndex", s.AppliedIndex);
                                w.WriteNumber("commitIndex", s.CommitIndex);
                                if (s.IsLearner) w.WriteBoolean("isLearner", true);
                                w.WriteStartArray("errors");
                                foreach (var e in s.Errors) w.WriteStringValue(e);
                                w.WriteEndArray();
                                w.WriteEndObject();
                            }
                            else
                            {
                                w.WriteString("Error", r.Error);
                            }
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                    });
                    break;
                case Output.Table:
                    Table(["ENDPOINT", "ID", "NAME", "IS LEADER", "RAFT TERM", "REVISION", "RAFT INDEX", "APPLIED INDEX", "DB SIZE", "ERRORS"], rows.Select(StatusRow));
                    break;
                default:
                    foreach (var r in rows) _out.WriteLine(string.Join(", ", StatusRow(r)));
                    break;
            }
            var down = rows.Where(r => r.Status is null).ToList();
            foreach (var r in down) _err.WriteLine($"cairn: {r.Endpoint}: {r.Error}");
            return down.Count == 0 ? 0 : 1;
        }

        private static string[] StatusRow(EndpointStatus r) => r.Status is { } s
            ? [r.Endpoint, MemberId(r.Header.MemberId), r.Name ?? "", s.Leader == r.Header.MemberId ? "true" : "false", Num(s.RaftTerm), Num(r.Header.Revision), Num(s.RaftIndex),
                Num(s.AppliedIndex), Bytes(s.DbSize), string.Join("; ", s.Errors)]
            : [r.Endpoint, "", r.Name ?? "", "", "", "", "", "", "", $"unreachable: {r.Error}"];

        /// <summary>The endpoints given, or with --cluster every member's client address.</summary>
        private async Task<IReadOnlyList<string>> TargetsAsync(CairnClient client)
        {
            if (!_flags.Has("--cluster")) return _endpoints;
            var (_, members) = await client.MemberListAsync(_interrupt);
            return [.. members.Select(m => m.ClientUrl).Where(Cairn.Client.Endpoint.IsDialable)];
        }

        private async Task<int> HealthAsync(CairnClient client)
        {
            var failed = 0;
            foreach (var endpoint in await TargetsAsync(client))
            {
                // A linearizable read through that member alone proves it reaches a leader that reaches a quorum.
                await using var one = Client([endpoint], discover: false);
                var started = System.Diagnostics.Stopwatch.StartNew();
                try
                {
                    await one.GetAsync("health", Consistency.Linearizable, _interrupt);
                    _out.WriteLine($"{endpoint} is healthy: successfully committed proposal: took = {started.Elapsed.TotalMilliseconds.ToString("0.###", CultureInfo.InvariantCulture)}ms");
                }
                catch (CairnException e)
                {
                    failed++;
                    _out.WriteLine($"{endpoint} is unhealthy: failed to commit proposal: {e.Message}");
                }
            }
            return failed == 0 ? 0 : 1;
        }

        private async Task<int> DefragAsync(CairnClient client)
        {
            var failed = 0;
            foreach (var endpoint in await TargetsAsync(client))
            {
                try
                {
                    var (_, d) = await client.DefragmentAsync(endpoint, _interrupt);
                    _out.WriteLine($"Finished defragmenting member[{endpoint}]: {Bytes(d.BytesBefore)} -> {Bytes(d.BytesAfter)}");
                }
                catch (CairnException e)
                {
                    failed++;
                    _out.WriteLine($"Failed to defragment member[{endpoint}] ({e.Message})");
                }
            }
            return failed == 0 ? 0 : 1;
        }

        private async Task<int> AlarmsAsync(CairnClient client, bool disarm)
        {
            var (h, alarms) = await client.AlarmListAsync(_interrupt);
            if (disarm) h = (await client.AlarmDisarmAsync(_interrupt)).Header;
            if (_output == Output.Json)
            {
                WriteJson(w =>
                {
                    w.WriteStartObject();
                    Header(w, h);
                    w.WriteStartArray("alarms");
                    foreach (var a in alarms) { w.WriteStartObject(); w.WriteNumber("memberID", a.MemberId); w.WriteString("alarm", AlarmName(a.Type)); w.WriteEndObject(); }
                    w.WriteEndArray();
                    w.WriteEndObject();
                });
                return 0;
            }
            foreach (var a in alarms) _out.WriteLine($"memberID:{a.MemberId} alarm:{AlarmName(a.Type)}");
            return 0;
        }

        private static string AlarmName(AlarmType t) => t == AlarmType.NoSpace ? "NOSPACE" : t.ToString().ToUpperInvariant();

        private async Task<int> SnapshotAsync(CairnClient client)
        {
            var file = Arg(1, "a FILE to save to");
            var part = file + ".part";
            long bytes;
            string endpoint;
            try
            {
                await using (var f = new FileStream(part, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16, FileOptions.Asynchronous))
                {
                    endpoint = _endpoints[0];
                    bytes = await client.SnapshotAsync(f, endpoint, _flags.Has("--compressed"), _interrupt);
                    await f.FlushAsync(_interrupt);
                    f.Flush(flushToDisk: true);
                }
                File.Move(part, file, overwrite: true);
            }
            catch
            {
                File.Delete(part);
                throw;
            }
            _out.WriteLine($"Snapshot saved at {file} ({Bytes(bytes)} from {endpoint}{(_flags.Has("--compressed") ? ", LZ4-compressed as sent" : "")})");
            return 0;
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
