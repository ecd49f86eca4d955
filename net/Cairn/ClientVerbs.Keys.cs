using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Client;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Cli;

/// <summary>The verbs on the key space: put, get, del, txn and watch.</summary>
internal static partial class ClientVerbs
{
    private sealed partial class Command
    {
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
    }
}
