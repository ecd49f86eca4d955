using System.Globalization;
using System.Text;
using System.Text.Json;
using Cairn.Client;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Cli;

/// <summary>The verbs on leases, members and the cluster's upkeep: lease, member, status, endpoint, compact, defrag, alarm, snapshot, move-leader, scale.</summary>
internal static partial class ClientVerbs
{
    private sealed partial class Invocation
    {
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
            var peer = _flags.Get("--peer-urls") ?? throw new UsageException("member add needs --peer-urls HOST:PORT (the new member's --listen-peer)");
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
            // A member's id derives from its name: one added but never started (or whose addition has not committed)
            // is listed under its id alone, and is still found by the name it was added with.
            var derived = Cairn.Server.MemberOptions.MemberId(text);
            if (members.Any(m => m.Id == derived)) return derived;
            if (ulong.TryParse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id)) return id;
            throw new UsageException($"'{text}' is neither a member name ({string.Join(", ", members.Select(m => m.Name))}) nor a hex member id");
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
    }
}
