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
    private sealed partial class Invocation
    {
        // ---- key-values ----

        private async Task<int> PutAsync(CairnClient client)
        {
            var key = Arg(0, "a KEY");
            var ignoreValue = _flags.Has("--ignore-value");
            var ignoreLease = _flags.Has("--ignore-lease");
            if (ignoreValue && OptionalArg(1) is not null) throw new UsageException("put --ignore-value takes no VALUE (it keeps the key's current value)");
            if (ignoreLease && _flags.Get("--lease") is not null) throw new UsageException("put --ignore-lease and --lease contradict each other: give one");
            // Standard input is read as bytes, exactly (as etcdctl does): `cairn put k < file` stores the file.
            var value = ignoreValue ? [] : OptionalArg(1) is { } v ? Utf8(v) : await ReadValueAsync();
            var lease = _flags.Get("--lease") is { } l ? HexLease(l) : 0;
            var (h, put) = await client.PutAsync(new PutRequest { Key = Utf8(key), Value = value, Lease = lease, PrevKv = _flags.Has("--prev-kv"), IgnoreValue = ignoreValue, IgnoreLease = ignoreLease }, _interrupt);
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

        /// <summary>
        /// A value from standard input, read to its end but never more than the largest value a member takes plus one
        /// byte: a 100 MiB file is refused after 1.5 MiB, not read whole first.
        /// </summary>
        private async Task<byte[]> ReadValueAsync()
        {
            var limit = MaxValueBytes;
            var buffer = new byte[Math.Min(limit + 1, 64 << 10)];
            var n = 0;
            while (true)
            {
                if (n == buffer.Length)
                {
                    if (n > limit) throw new UsageException($"the value on standard input is over {limit:N0} bytes, the largest a member takes; store large data elsewhere and put a reference to it");
                    Array.Resize(ref buffer, Math.Min(limit + 1, buffer.Length * 2));
                }
                var read = await _io.In.ReadAsync(buffer.AsMemory(n), _interrupt);
                if (read == 0) break;
                n += read;
            }
            if (n > limit) throw new UsageException($"the value on standard input is over {limit:N0} bytes, the largest a member takes; store large data elsewhere and put a reference to it");
            return buffer[..n];
        }

        private RangeRequest RangeOf(bool forGet)
        {
            var key = Utf8(Arg(0, "a KEY"));
            var end = OptionalArg(1) is { } e ? Utf8(e) : [];
            if (_flags.Has("--prefix") && _flags.Has("--from-key")) throw new UsageException("give either --prefix or --from-key, not both");
            if (_flags.Has("--prefix"))
            {
                if (end.Length > 0) throw new UsageException("give either END or --prefix, not both");
                end = RangeRequest.Prefix(key);
                if (key.Length == 0) key = [0];
            }
            else if (_flags.Has("--from-key"))
            {
                // Every key ≥ KEY, as etcdctl's --from-key: the range end "\0" means "to the end".
                if (end.Length > 0) throw new UsageException("give either END or --from-key, not both");
                end = [0];
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
                var c => throw new UsageException($"--consistency '{c}' is not l (linearizable) or s (serializable)"),
            };
            var sort = Sorting();
            // Sorted by something other than the key with a limit: the first N of the sorted whole, as etcd answers.
            var wanted = request.Limit;
            if (sort is not null && wanted > 0) request = request with { Limit = 0 };
            var (h, range) = await client.RangeAsync(request, consistency, _interrupt);
            if (sort is { } by)
            {
                var kvs = range.Kvs.ToList();
                kvs.Sort(by);
                var more = range.More;
                if (wanted > 0 && kvs.Count > wanted)
                {
                    kvs.RemoveRange((int)wanted, kvs.Count - (int)wanted);
                    more = true;
                }
                range = range with { Kvs = kvs, More = more };
            }
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
                        range.Kvs.Select(kv => new[] { Show(kv.Key), Show(kv.Value), Num(kv.CreateRevision), Num(kv.ModRevision), Num(kv.Version), kv.Lease == 0 ? "" : Lease(kv.Lease) }));
                    break;
                default:
                    if (request.CountOnly) _out.WriteLine(range.Count.ToString(CultureInfo.InvariantCulture));
                    var valueOnly = _flags.Has("--print-value-only");
                    foreach (var kv in range.Kvs) WriteKv(kv, request.KeysOnly, valueOnly);
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

        /// <summary>The order of --sort-by and --order (etcdctl's: --order alone sorts by key; null when the key order asked for is the natural one).</summary>
        private Comparison<KeyValue>? Sorting()
        {
            var target = _flags.Get("--sort-by")?.ToUpperInvariant();
            var order = _flags.Get("--order")?.ToUpperInvariant();
            if (target is null && order is null) return null;
            Comparison<KeyValue> by = (target ?? "KEY") switch
            {
                "KEY" => (a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key),
                "VALUE" => (a, b) => a.Value.AsSpan().SequenceCompareTo(b.Value),
                "CREATE" => (a, b) => a.CreateRevision.CompareTo(b.CreateRevision),
                "MODIFY" => (a, b) => a.ModRevision.CompareTo(b.ModRevision),
                "VERSION" => (a, b) => a.Version.CompareTo(b.Version),
                var t => throw new UsageException($"--sort-by '{t}' is not CREATE, KEY, MODIFY, VALUE or VERSION"),
            };
            var descend = (order ?? "ASCEND") switch
            {
                "ASCEND" => false,
                "DESCEND" => true,
                var o => throw new UsageException($"--order '{o}' is not ASCEND or DESCEND"),
            };
            if (!descend && (target ?? "KEY") == "KEY") return null;   // ranges come in key order already
            // Ties keep key order, as a stable sort of a key-ordered range does.
            return descend
                ? (a, b) => by(b, a) is var c && c != 0 ? c : a.Key.AsSpan().SequenceCompareTo(b.Key)
                : (a, b) => by(a, b) is var c && c != 0 ? c : a.Key.AsSpan().SequenceCompareTo(b.Key);
        }

        // ---- transactions ----

        private async Task<int> TxnAsync(CairnClient client)
        {
            var interactive = _flags.Has("--interactive");
            var text = _flags.Get("--file") is { } file ? await File.ReadAllTextAsync(file, _interrupt) : null;
            using var reader = text is null ? null : new StringReader(text);
            var input = reader ?? _io.InText;
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
            if (_flags.Has("--interactive"))
            {
                if (_args.Count > 0) throw new UsageException("watch --interactive reads `watch KEY [END] [--prefix] [--rev N] [--prev-kv]` lines from standard input: give no KEY");
                return await InteractiveWatchAsync(client);
            }
            var range = RangeOf(forGet: false);
            var request = new WatchRequest { Key = range.Key, RangeEnd = range.RangeEnd, StartRevision = LongFlag("--rev"), PrevKv = _flags.Has("--prev-kv") };
            return await WatchOneAsync(client, request);
        }

        /// <summary>
        /// etcdctl's `watch -i`: each line of standard input is a watch command (`watch foo --prefix`), started beside
        /// the others; their events print as they come, until Ctrl+C (or, once input ends, until every watch ends).
        /// </summary>
        private async Task<int> InteractiveWatchAsync(CairnClient client)
        {
            var watches = new List<Task<int>>();
            var gate = new object();
            while (await _io.InText.ReadLineAsync(_interrupt) is { } line)
            {
                var words = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
                if (words.Length == 0) continue;
                try
                {
                    watches.Add(WatchOneAsync(client, ParseWatchLine(words), gate));
                }
                catch (UsageException e)
                {
                    _err.WriteLine($"cairn: {e.Message}");
                }
            }
            var codes = await Task.WhenAll(watches);
            return codes.Length == 0 ? 0 : codes.Max();
        }

        /// <summary>One line of `watch -i`: watch KEY [END] [--prefix] [--rev N] [--prev-kv].</summary>
        private static WatchRequest ParseWatchLine(string[] words)
        {
            if (words[0] != "watch") throw new UsageException($"'{string.Join(' ', words)}': a line is `watch KEY [END] [--prefix] [--rev N] [--prev-kv]`");
            var positional = new List<string>();
            bool prefix = false, prevKv = false;
            long rev = 0;
            for (var i = 1; i < words.Length; i++)
            {
                var w = words[i];
                if (w == "--prefix") prefix = true;
                else if (w == "--prev-kv") prevKv = true;
                else if (w == "--rev" && i + 1 < words.Length) rev = Flags.Long("--rev", words[++i]);
                else if (w.StartsWith("--rev=", StringComparison.Ordinal)) rev = Flags.Long("--rev", w[6..]);
                else if (w.StartsWith('-')) throw new UsageException($"unknown flag '{w}' in `{string.Join(' ', words)}` (watch takes --prefix, --rev N, --prev-kv)");
                else positional.Add(w);
            }
            if (positional.Count is 0 or > 2) throw new UsageException($"`{string.Join(' ', words)}`: give KEY and at most END");
            var key = Utf8(positional[0]);
            var end = positional.Count > 1 ? Utf8(positional[1]) : [];
            if (prefix)
            {
                if (end.Length > 0) throw new UsageException("give either END or --prefix, not both");
                end = RangeRequest.Prefix(key);
                if (key.Length == 0) key = [0];
            }
            return new WatchRequest { Key = key, RangeEnd = end, StartRevision = rev, PrevKv = prevKv };
        }

        private async Task<int> WatchOneAsync(CairnClient client, WatchRequest request, object? gate = null)
        {
            gate ??= new object();
            try
            {
                await foreach (var r in client.WatchAsync(request, _interrupt))
                {
                    lock (gate) Print(r);
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

        private void Print(WatchResponse r)
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
        }
    }
}
