using System.Diagnostics;
using System.Globalization;
using System.Text;
using Cairn.Client;
using Cairn.Kv;

namespace Cairn.Faults.Nemesis;

/// <summary>What one run does.</summary>
public sealed record RunOptions
{
    public int Seed { get; init; } = 1;

    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(20);

    public int Members { get; init; } = 3;

    public int Clients { get; init; } = 6;

    public int Keys { get; init; } = 6;

    public int Watchers { get; init; } = 2;

    /// <summary>
    /// Inject every fault of the mix in order, this many times, instead of random ones for <see cref="Duration"/>: a
    /// short run that is sure to have tried each one (CI).
    /// </summary>
    public int? Rounds { get; init; }

    /// <summary>Fault and family names (<see cref="Nemesis.Families"/>); "all" for every one.</summary>
    public IReadOnlyList<string> Faults { get; init; } = ["all"];

    /// <summary>Each member's data on a tmpfs of this size (MiB); null: on the temp directory. disk-full needs it.</summary>
    public int? TmpfsMiB { get; init; }

    /// <summary>Where the run's directories go; a fresh directory under the temp directory by default.</summary>
    public string? Root { get; init; }

    /// <summary>Keep the data directories when the run fails.</summary>
    public bool KeepOnFailure { get; init; }

    public Action<string>? Log { get; init; }
}

/// <summary>The outcome of a run; <see cref="ToString"/> is the report (docs/faults.md, "The report").</summary>
public sealed record RunReport
{
    public required RunOptions Options { get; init; }

    public required string Root { get; init; }

    public required TimeSpan Elapsed { get; init; }

    public required History History { get; init; }

    public required CheckReport Linearizability { get; init; }

    public required IReadOnlyList<(int Watcher, int Events, int Restarts, WatchCheckResult Result)> Watches { get; init; }

    public required IReadOnlyList<string> Faults { get; init; }

    public required IReadOnlyList<string> Problems { get; init; }

    public required long FinalRevision { get; init; }

    public required int CommittedWrites { get; init; }

    public required int WritesReadBack { get; init; }

    public required long LinksRelayed { get; init; }

    public required long LinksRefused { get; init; }

    /// <summary>The last lines each slot's members wrote, when the run failed.</summary>
    public IReadOnlyList<string> MemberLogs { get; init; } = [];

    /// <summary>True when the history is linearizable, every watch is exact and nothing else went wrong.</summary>
    public bool Ok => Linearizability.Verdict == Verdict.Linearizable && Watches.All(w => w.Result.Ok) && Problems.Count == 0;

    public override string ToString()
    {
        var b = new StringBuilder();
        var o = Options;
        var ops = History.Operations;
        b.AppendLine(CultureInfo.InvariantCulture, $"Cairn nemesis run: {(Ok ? "OK" : "VIOLATION")}");
        b.AppendLine(CultureInfo.InvariantCulture, $"seed {o.Seed}, {(o.Rounds is { } rounds ? $"{rounds} round(s) of every fault" : $"{o.Duration.TotalSeconds:0} s of faults")} ({Elapsed.TotalSeconds:0} s in all), {o.Members} members, {o.Clients} clients on {o.Keys} keys, {o.Watchers} watchers, faults: {string.Join(",", o.Faults)}{(o.TmpfsMiB is { } t ? $", data on {t} MiB tmpfs" : "")}");
        b.AppendLine(CultureInfo.InvariantCulture, $"data: {Root}");
        b.AppendLine();
        b.AppendLine(CultureInfo.InvariantCulture, $"operations: {ops.Count:N0} — ok {ops.Count(x => x.Outcome == Outcome.Ok):N0}, failed {ops.Count(x => x.Outcome == Outcome.Failed):N0}, unknown {ops.Count(x => x.Outcome == Outcome.Unknown):N0}");
        foreach (var kind in Enum.GetValues<OperationKind>())
        {
            var k = ops.Where(x => x.Kind == kind).ToList();
            b.AppendLine(CultureInfo.InvariantCulture, $"  {kind,-15} {k.Count,7:N0}  ok {k.Count(x => x.Outcome == Outcome.Ok),7:N0}  failed {k.Count(x => x.Outcome == Outcome.Failed),6:N0}  unknown {k.Count(x => x.Outcome == Outcome.Unknown),6:N0}");
        }
        b.AppendLine(CultureInfo.InvariantCulture, $"committed writes: {CommittedWrites:N0} up to revision {FinalRevision:N0} ({WritesReadBack:N0} read back: unknown outcomes that took effect)");
        b.AppendLine(CultureInfo.InvariantCulture, $"peer links through the proxies: {LinksRelayed:N0} relayed, {LinksRefused:N0} refused or cut");
        b.AppendLine();
        b.AppendLine(CultureInfo.InvariantCulture, $"faults injected: {Faults.Count}");
        foreach (var f in Faults) b.Append("  ").AppendLine(f);
        b.AppendLine();
        b.Append("linearizability: ").Append(Linearizability.ToString());
        foreach (var (w, events, restarts, result) in Watches) b.AppendLine(CultureInfo.InvariantCulture, $"watcher {w}: {events:N0} events, {restarts} restarts: {result}");
        if (Problems.Count > 0)
        {
            b.AppendLine();
            b.AppendLine("problems:");
            foreach (var p in Problems) b.Append("  ").AppendLine(p);
        }
        if (MemberLogs.Count > 0)
        {
            b.AppendLine();
            b.AppendLine("member logs (last lines of each slot):");
            foreach (var l in MemberLogs) b.Append("  ").AppendLine(l);
        }
        foreach (var v in Linearizability.Violations)
        {
            b.AppendLine();
            b.AppendLine(CultureInfo.InvariantCulture, $"failing history of key {v.Key} (every operation on it):");
            foreach (var op in History.ForKey(v.Key).Operations) b.Append("  ").AppendLine(Describe(op));
        }
        return b.ToString();
    }

    internal static string Describe(Operation op)
    {
        var complete = op.Complete == Operation.Never ? "inf" : op.Complete.ToString(CultureInfo.InvariantCulture);
        return string.Create(CultureInfo.InvariantCulture, $"p{op.Process,-3} {op.Outcome,-7} [{op.Invoke}, {complete}] {op}");
    }
}

/// <summary>
/// A whole run: start the cluster, run the workload while the nemesis injects faults, heal, see the cluster serve
/// again, read back the revisions of unknown writes, compare every member's hash, and check the history and watches.
/// </summary>
public static class Runner
{
    public static async Task<RunReport> RunAsync(RunOptions options)
    {
        var log = options.Log ?? (_ => { });
        var faults = Nemesis.Expand(options.Faults);
        if (options.TmpfsMiB is null && faults.Contains("disk-full")) throw new ArgumentException("disk-full needs --tmpfs-mb (each member's data on a tmpfs it can fill)");
        var root = options.Root ?? Path.Combine(Path.GetTempPath(), "cairn-nemesis", $"seed{options.Seed}-{Guid.NewGuid():N}"[..24]);
        var clock = Stopwatch.StartNew();
        var cluster = new Cluster(options.Members, root, options.TmpfsMiB, log);
        var ok = false;
        try
        {
            await cluster.StartAsync().ConfigureAwait(false);
            log($"cluster up: {cluster}");
            var workload = new Workload(cluster, options.Clients, options.Keys, options.Watchers, options.Seed);
            workload.Start();
            var nemesis = new Nemesis(cluster, faults, options.Seed, log);
            if (options.Rounds is { } rounds) await nemesis.RunRoundsAsync(rounds).ConfigureAwait(false);
            else await nemesis.RunAsync(options.Duration).ConfigureAwait(false);
            nemesis.CheckCrashes();
            await nemesis.HealAsync().ConfigureAwait(false);
            var problems = nemesis.Problems;

            // The cluster must serve again once healed.
            if (await cluster.LeaderAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false) is null) problems.Add($"no leader 30 s after every fault was healed: {cluster}");
            workload.MarkRecovery();
            var recovery = Stopwatch.StartNew();
            while (workload.OkSinceMark < 20 && recovery.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(100).ConfigureAwait(false);
            if (workload.OkSinceMark < 20) problems.Add($"only {workload.OkSinceMark} operations succeeded in the 20 s after healing");
            await workload.StopClientsAsync().ConfigureAwait(false);
            log($"clients stopped after {recovery.Elapsed.TotalSeconds:0.0} s of recovery");

            // Every committed write: those acknowledged, and unknown ones read back at the revisions nobody was told of.
            await using var control = cluster.ControlClient();
            long final = 0;
            var committed = workload.AcknowledgedWrites.ToDictionary(c => c.Revision);
            var readBack = 0;
            var watches = new List<(int, int, int, WatchCheckResult)>();
            try
            {
                final = await RetryAsync(async () => (await control.RangeAsync(new RangeRequest { Key = Bytes(Workload.Prefix), RangeEnd = RangeRequest.Prefix(Bytes(Workload.Prefix)), CountOnly = true }).ConfigureAwait(false)).Header.Revision).ConfigureAwait(false);
                for (var r = 1L; r <= final; r++)
                {
                    if (committed.ContainsKey(r)) continue;
                    foreach (var c in await ChangesAtAsync(control, r).ConfigureAwait(false))
                    {
                        committed[r] = c;
                        readBack++;
                    }
                }
                await CompareHashesAsync(cluster, final, problems).ConfigureAwait(false);

                // Watchers owe every committed write on the prefix.
                var settle = Stopwatch.StartNew();
                while (workload.Watchers.Any(w => w.SyncedThrough < final) && settle.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(100).ConfigureAwait(false);
                await workload.StopWatchersAsync().ConfigureAwait(false);
                foreach (var w in workload.Watchers)
                {
                    if (w.SyncedThrough < final) problems.Add($"watcher {w.Index} got only to revision {w.SyncedThrough} of {final} within 20 s after the run (last error: {w.LastError ?? "none"})");
                    var events = w.Events;
                    watches.Add((w.Index, events.Count, w.Restarts, WatchChecker.Check(committed.Values, WatchRange.Prefix(Workload.Prefix), 1, events, Math.Min(final, w.SyncedThrough))));
                }
            }
            catch (CairnException e)
            {
                problems.Add($"could not read the final state back ({e.Message}); hashes and watches not checked; cluster: {cluster}");
                await workload.StopWatchersAsync().ConfigureAwait(false);
            }

            var history = workload.Recorder.ToHistory();
            log($"checking {history.Count:N0} operations");
            var check = new LinearizabilityChecker().Check(history);
            var report = new RunReport
            {
                Options = options with { Faults = faults },
                Root = root,
                Elapsed = clock.Elapsed,
                History = history,
                Linearizability = check,
                Watches = watches,
                Faults = [.. nemesis.Injected.Select(f => f.ToString())],
                Problems = problems,
                FinalRevision = final,
                CommittedWrites = committed.Count,
                WritesReadBack = readBack,
                LinksRelayed = cluster.LinksRelayed,
                LinksRefused = cluster.LinksRefused,
            };
            ok = report.Ok;
            if (!ok)
            {
                report = report with
                {
                    MemberLogs = [.. cluster.Nodes.SelectMany(n => new[] { $"-- {Path.GetFileName(n.LogPath)}" }.Concat(File.Exists(n.LogPath) ? File.ReadLines(n.LogPath).TakeLast(25) : []))],
                };
            }
            return report;
        }
        finally
        {
            await cluster.ShutdownAsync(keep: !ok && options.KeepOnFailure).ConfigureAwait(false);
        }
    }

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    private static async Task<T> RetryAsync<T>(Func<Task<T>> call)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (CairnException) when (deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(200).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The change the workload's prefix saw at <paramref name="revision"/> (none if another key changed there).</summary>
    private static async Task<List<Change>> ChangesAtAsync(CairnClient c, long revision)
    {
        var prefix = Bytes(Workload.Prefix);
        var end = RangeRequest.Prefix(prefix);
        var now = await RetryAsync(() => c.RangeAsync(new RangeRequest { Key = prefix, RangeEnd = end, Revision = revision })).ConfigureAwait(false);
        var before = revision > 1 ? (await RetryAsync(() => c.RangeAsync(new RangeRequest { Key = prefix, RangeEnd = end, Revision = revision - 1 })).ConfigureAwait(false)).Body.Kvs : [];
        var changes = new List<Change>();
        foreach (var kv in now.Body.Kvs)
            if (kv.ModRevision == revision) changes.Add(Change.Put(revision, Encoding.UTF8.GetString(kv.Key), Encoding.UTF8.GetString(kv.Value)));
        var present = now.Body.Kvs.Select(kv => Encoding.UTF8.GetString(kv.Key)).ToHashSet();
        foreach (var kv in before)
        {
            var key = Encoding.UTF8.GetString(kv.Key);
            if (!present.Contains(key)) changes.Add(Change.Delete(revision, key));
        }
        return changes;
    }

    /// <summary>Every member holds the same key space at <paramref name="revision"/> (same log, same bytes).</summary>
    private static async Task CompareHashesAsync(Cluster cluster, long revision, List<string> problems)
    {
        var deadline = Stopwatch.StartNew();
        string last = "";
        while (deadline.Elapsed < TimeSpan.FromSeconds(20))
        {
            var hashes = new List<string>();
            foreach (var n in cluster.Members)
            {
                await using var c = cluster.ControlClient([n]);
                try
                {
                    var status = await c.StatusAsync(n.ClientUrl).ConfigureAwait(false);
                    if (status.Header.Revision < revision)
                    {
                        var s = status.Body;
                        hashes.Add($"{n.Name}:behind at revision {status.Header.Revision} (raft index {s.RaftIndex}, commit {s.CommitIndex}, applied {s.AppliedIndex}, term {s.RaftTerm}, leader {s.Leader:x16})");
                        break;
                    }
                    hashes.Add($"{n.Name}:{(await c.HashAsync(revision, n.ClientUrl).ConfigureAwait(false)).Body.Hash:x16}");
                }
                catch (CairnException e)
                {
                    hashes.Add($"{n.Name}:{e.Message}");
                    break;
                }
            }
            last = string.Join(", ", hashes);
            if (hashes.Count == cluster.Members.Count() && hashes.Select(h => h[(h.IndexOf(':', StringComparison.Ordinal) + 1)..]).Distinct().Count() == 1) return;
            await Task.Delay(200).ConfigureAwait(false);
        }
        problems.Add($"members disagree on the key space at revision {revision} (or did not reach it in 20 s): {last}");
    }
}
