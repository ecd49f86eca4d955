using System.Diagnostics;
using System.Globalization;

namespace Cairn.Faults.Nemesis;

/// <summary>One fault the nemesis injected: when, what, to whom, and what it saw.</summary>
internal sealed record FaultRecord(double At, double Until, string Fault, string Target, string Notes)
{
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{At,7:0.0}s-{Until,6:0.0}s  {Fault,-15} {Target,-14} {Notes}");
}

/// <summary>
/// Injects one fault at a time, from a seeded schedule, and heals it before the next: kill -9 (a random member, the
/// leader, two members), SIGSTOP past the election timeout (a member, the leader), partitions through the proxies
/// (a member cut off, the leader cut off from its peers but not from clients, a bridge), member replacement and
/// leadership transfer, a full disk and a damaged log or database. Whatever should not happen — a member that exits
/// by itself, starts on damaged data, or does not come back — is a <see cref="Problems"/> entry that fails the run.
/// </summary>
internal sealed class Nemesis(Cluster cluster, IReadOnlyList<string> faults, int seed, Action<string> log)
{
    /// <summary>Every fault, by family.</summary>
    public static readonly IReadOnlyDictionary<string, string[]> Families = new Dictionary<string, string[]>
    {
        ["kill"] = ["kill", "kill-leader", "kill-two"],
        ["pause"] = ["pause", "pause-leader"],
        ["partition"] = ["isolate", "isolate-leader", "bridge"],
        ["membership"] = ["member", "transfer"],
        ["disk"] = ["disk-full", "corrupt-wal", "corrupt-db"],
    };

    private readonly Random _random = new(seed);
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly HashSet<Node> _down = [];   // killed on purpose and not restarted yet

    public List<FaultRecord> Injected { get; } = [];

    public List<string> Problems { get; } = [];

    /// <summary>Expands family names (and "all") into fault names; refuses unknown ones.</summary>
    public static List<string> Expand(IEnumerable<string> names)
    {
        var all = Families.Values.SelectMany(f => f).ToList();
        var result = new List<string>();
        foreach (var n in names)
        {
            if (n == "all") result.AddRange(all);
            else if (Families.TryGetValue(n, out var family)) result.AddRange(family);
            else if (all.Contains(n)) result.Add(n);
            else throw new ArgumentException($"unknown fault '{n}'; use {string.Join(", ", Families.Keys)}, all, or one of {string.Join(", ", all)}");
        }
        return [.. result.Distinct()];
    }

    private double Now => _clock.Elapsed.TotalSeconds;

    private TimeSpan Hold(double minSeconds, double maxSeconds) => TimeSpan.FromSeconds(minSeconds + _random.NextDouble() * (maxSeconds - minSeconds));

    private double ElectionTimeout => cluster.Settings.ElectionTimeoutMs / 1000.0;

    public async Task RunAsync(TimeSpan duration)
    {
        while (_clock.Elapsed < duration)
        {
            await Task.Delay(Hold(0.5, 1.5)).ConfigureAwait(false);
            if (_clock.Elapsed >= duration) break;
            CheckCrashes();
            await InjectAsync(faults[_random.Next(faults.Count)]).ConfigureAwait(false);
        }
    }

    /// <summary>Injects every fault of the mix in order, <paramref name="rounds"/> times.</summary>
    public async Task RunRoundsAsync(int rounds)
    {
        for (var r = 0; r < rounds; r++)
        {
            foreach (var fault in faults)
            {
                await Task.Delay(Hold(0.5, 1.5)).ConfigureAwait(false);
                CheckCrashes();
                await InjectAsync(fault).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Injects one fault, holds it and heals it.</summary>
    public async Task InjectAsync(string fault)
    {
        var at = Now;
        string target;
        var notes = "";
        try
        {
            (target, notes) = fault switch
            {
                "kill" => await KillAsync([Pick()]).ConfigureAwait(false),
                "kill-leader" => await LeaderAsync() is { } l ? await KillAsync([l]).ConfigureAwait(false) : ("-", "no leader to kill"),
                "kill-two" => await KillAsync([.. Shuffle(Live()).Take(2)]).ConfigureAwait(false),
                "pause" => await PauseAsync(Pick()).ConfigureAwait(false),
                "pause-leader" => await LeaderAsync() is { } l ? await PauseAsync(l).ConfigureAwait(false) : ("-", "no leader to pause"),
                "isolate" => await IsolateAsync(Pick()).ConfigureAwait(false),
                "isolate-leader" => await LeaderAsync() is { } l ? await IsolateAsync(l).ConfigureAwait(false) : ("-", "no leader to isolate"),
                "bridge" => await BridgeAsync().ConfigureAwait(false),
                "member" => await ReplaceAsync(Pick()).ConfigureAwait(false),
                "transfer" => await TransferAsync().ConfigureAwait(false),
                "disk-full" => await DiskFullAsync().ConfigureAwait(false),
                "corrupt-wal" => await CorruptAsync(Pick(), wal: true).ConfigureAwait(false),
                "corrupt-db" => await CorruptAsync(Pick(), wal: false).ConfigureAwait(false),
                _ => throw new ArgumentException($"unknown fault {fault}"),
            };
        }
        catch (InvalidOperationException e)
        {
            // The cluster refused an operator's request (a member change without a leader, say): not a violation.
            target = "-";
            notes = "not done: " + e.Message;
            await HealAsync().ConfigureAwait(false);
        }
        catch (IOException e)
        {
            // The harness itself could not do what it meant to: the run cannot be trusted to have tested it.
            target = "-";
            notes = "harness failed: " + e.Message;
            Problems.Add($"{fault}: the harness failed: {e}");
            await HealAsync().ConfigureAwait(false);
        }
        var record = new FaultRecord(at, Now, fault, target, notes);
        Injected.Add(record);
        log(record.ToString());
    }

    private List<Node> Live() => [.. cluster.Members.Where(n => n.Running)];

    private Node Pick()
    {
        var live = Live();
        return live[_random.Next(live.Count)];
    }

    private List<Node> Shuffle(List<Node> nodes)
    {
        var copy = nodes.ToArray();
        _random.Shuffle(copy);
        return [.. copy];
    }

    private Task<Node?> LeaderAsync() => cluster.LeaderAsync(TimeSpan.FromSeconds(5));

    private static string Names(IEnumerable<Node> nodes) => string.Join("+", nodes.Select(n => n.Name));

    private async Task<(string, string)> KillAsync(List<Node> targets)
    {
        foreach (var n in targets)
        {
            _down.Add(n);
            await n.KillAsync().ConfigureAwait(false);
        }
        await Task.Delay(Hold(1, 3)).ConfigureAwait(false);
        foreach (var n in targets) Restart(n);
        return (Names(targets), "kill -9, restarted");
    }

    private void Restart(Node n)
    {
        n.Restart(cluster.Settings);
        _down.Remove(n);
    }

    private async Task<(string, string)> PauseAsync(Node n)
    {
        var hold = Hold(ElectionTimeout * 2, ElectionTimeout * 5);
        n.Pause();
        await Task.Delay(hold).ConfigureAwait(false);
        n.Resume();
        return (n.Name, string.Create(CultureInfo.InvariantCulture, $"SIGSTOP for {hold.TotalSeconds:0.0} s (election timeout {ElectionTimeout:0.0} s)"));
    }

    private async Task<(string, string)> IsolateAsync(Node n)
    {
        var others = cluster.Members.Where(o => o != n).Select(o => o.Slot);
        cluster.Network.Cut([n.Slot], others);
        await Task.Delay(Hold(1.5, 3)).ConfigureAwait(false);
        cluster.Network.Heal();
        return (n.Name, "cut off from its peers (clients still reach it), healed");
    }

    private async Task<(string, string)> BridgeAsync()
    {
        var members = Shuffle([.. cluster.Members]);
        var half = (members.Count - 1) / 2;
        var a = members.Take(half).ToList();
        var bridge = members[half];
        var b = members.Skip(half + 1).ToList();
        cluster.Network.Cut(a.Select(n => n.Slot), b.Select(n => n.Slot));
        await Task.Delay(Hold(1.5, 3)).ConfigureAwait(false);
        cluster.Network.Heal();
        return (bridge.Name, $"bridge between {Names(a)} and {Names(b)}, healed");
    }

    private async Task<(string, string)> ReplaceAsync(Node n)
    {
        var old = n.Name;
        await cluster.ReplaceAsync(n, CancellationToken.None).ConfigureAwait(false);
        return (old, $"removed, data wiped, added back as {n.Name}");
    }

    private async Task<(string, string)> TransferAsync()
    {
        if (await LeaderAsync() is not { } leader) return ("-", "no leader to move");
        var others = Live().Where(n => n != leader).ToList();
        var to = others[_random.Next(others.Count)];
        await using var c = cluster.ControlClient();
        try
        {
            await c.MoveLeaderAsync(to.Id).ConfigureAwait(false);
            return (to.Name, $"leadership moved from {leader.Name}");
        }
        catch (Cairn.Client.CairnException e)
        {
            return (to.Name, $"move from {leader.Name} refused: {e.Message}");
        }
    }

    private async Task<(string, string)> DiskFullAsync()
    {
        if (!cluster.OnTmpfs) throw new InvalidOperationException("disk-full needs the data on tmpfs (--tmpfs-mb)");
        List<Node> targets = _random.Next(3) switch
        {
            0 => [.. Live()],
            1 => await LeaderAsync() is { } l ? [l] : [Pick()],
            _ => [Pick()],
        };
        var ballasts = targets.Select(Cluster.Fill).ToList();
        await Task.Delay(Hold(1.5, 3)).ConfigureAwait(false);
        foreach (var b in ballasts) File.Delete(b);
        // A write that was already failing when the space came back still stops its member: look a moment later.
        await Task.Delay(TimeSpan.FromSeconds(1.5)).ConfigureAwait(false);
        // A member may stop on a write it cannot make (refusing to go on is allowed; losing data is not). It must
        // start again once there is space.
        var stopped = targets.Where(n => !n.Running).ToList();
        foreach (var n in stopped)
        {
            var last = n.Output().LastOrDefault(l => l.Contains("cairn", StringComparison.Ordinal)) ?? "";
            log($"{n.Name} stopped on the full disk (exit {n.ExitCode}): {last}");
            Restart(n);
        }
        return (Names(targets), stopped.Count == 0 ? "disk filled, freed" : $"disk filled, freed; {Names(stopped)} stopped on it and was restarted");
    }

    private async Task<(string, string)> CorruptAsync(Node n, bool wal)
    {
        _down.Add(n);
        await n.KillAsync().ConfigureAwait(false);
        var member = Path.Combine(n.DataDir, "member");
        // Damage in the middle of the log: halfway through the records of a segment, with records after it that
        // are whole (a torn tail is repaired by design, damage before good records must refuse the start). In the
        // database: a byte in every data page.
        string file;
        List<long> offsets;
        if (wal)
        {
            // A member just restarted may have only a fresh, short segment: then try the others, one at a time (the
            // files of a running member are locked, and reading them would stop it from starting again).
            var (segment, end) = LongestSegment(member);
            foreach (var other in Shuffle(Live()).Where(o => o != n))
            {
                if (end >= 4096) break;
                Restart(n);
                n = other;
                _down.Add(n);
                await n.KillAsync().ConfigureAwait(false);
                member = Path.Combine(n.DataDir, "member");
                (segment, end) = LongestSegment(member);
            }
            if (end < 4096)
            {
                Restart(n);
                throw new InvalidOperationException($"no member's log holds 4 KiB of records in one segment: too few to damage the middle of");
            }
            file = segment;
            // A byte inside a record that has whole records after it (not in the last record: damage there is
            // indistinguishable from a torn write, which recovery cuts by design — that is what once looked like a
            // damaged log accepted at start).
            offsets = [RecordBeforeTheLast(segment, end)];
        }
        else
        {
            file = Path.Combine(member, "kv.db");
            offsets = [.. Enumerable.Range(2, Math.Max(0, (int)(new FileInfo(file).Length / 16384) - 2)).Select(p => p * 16384L + 100)];
        }
        var original = Patch(file, offsets, null);
        var evidence = Path.Combine(cluster.Root, $"damaged-{n.Name}-{Path.GetFileName(file)}");
        File.Copy(file, evidence, overwrite: true);      // kept only if the member starts on it anyway
        n.Restart(cluster.Settings);
        var what = wal ? "write-ahead log" : "kv.db";
        string notes;
        if (!await n.WaitForExitAsync(TimeSpan.FromSeconds(20)).ConfigureAwait(false))
        {
            Problems.Add($"{n.Name} started on a damaged {what} ({file}, byte {string.Join(",", offsets.Take(3))} flipped; the damaged copy is {evidence}) instead of refusing");
            await n.KillAsync().ConfigureAwait(false);
            notes = $"damaged {what}: NOT refused";
        }
        else
        {
            File.Delete(evidence);
            var output = string.Join("\n", n.Output());
            var named = output.Contains(what, StringComparison.Ordinal) ? "" : $" but the message does not name the {what}";
            if (n.ExitCode == 0 || named.Length > 0) Problems.Add($"{n.Name} on a damaged {what}: exit {n.ExitCode}{named}: {string.Join(" | ", n.Output().TakeLast(1))}");
            notes = $"damaged {what} at {Path.GetFileName(file)}: start refused (exit {n.ExitCode}){named}";
        }
        if (File.Exists(file)) Patch(file, offsets, original);   // a member that started anyway may have compacted it away
        Restart(n);
        return (n.Name, notes + "; repaired, restarted");
    }

    /// <summary>
    /// The offset of a payload byte in the middle record of a segment's records, walking their frames
    /// (<c>[u32 length][u8 type][payload][16-byte tag]</c> after a 128-byte header), never in the last one.
    /// </summary>
    private static long RecordBeforeTheLast(string segment, long end)
    {
        const int header = 128, overhead = 4 + 1 + 16;
        var starts = new List<(long At, int Length)>();
        using (var f = File.OpenRead(segment))
        {
            var length = new byte[4];
            for (long at = header; at + overhead <= end;)
            {
                f.Position = at;
                f.ReadExactly(length);
                var n = System.Buffers.Binary.BinaryPrimitives.ReadInt32LittleEndian(length);
                if (n <= 0 || at + overhead + n > end) break;
                starts.Add((at, n));
                at += overhead + n;
            }
        }
        if (starts.Count < 2) throw new InvalidOperationException($"{segment} holds {starts.Count} record(s): none with a whole record after it to damage");
        var (start, payload) = starts[(starts.Count - 1) / 2];   // the middle one of all but the last
        return start + 5 + payload / 2;
    }

    private static (string Segment, long End) LongestSegment(string member) =>
        Directory.GetFiles(Path.Combine(member, "wal"), "*.wal").Select(f => (f, DataEnd(f))).MaxBy(x => x.Item2);

    /// <summary>Where the records of a preallocated log segment end: after its last non-zero byte.</summary>
    private static long DataEnd(string segment)
    {
        using var f = File.OpenRead(segment);
        var buffer = new byte[1 << 20];
        long end = 0, at = 0;
        int n;
        while ((n = f.Read(buffer)) > 0)
        {
            var last = Array.FindLastIndex(buffer, n - 1, n, b => b != 0);
            if (last >= 0) end = at + last + 1;
            at += n;
        }
        return end;
    }

    /// <summary>Flips the byte at each offset in place (a full disk has no room for a copy); with <paramref name="restore"/>, puts the originals back.</summary>
    private static byte[] Patch(string file, List<long> offsets, byte[]? restore)
    {
        var original = new byte[offsets.Count];
        using var f = new FileStream(file, FileMode.Open, FileAccess.ReadWrite);
        for (var i = 0; i < offsets.Count; i++)
        {
            f.Position = offsets[i];
            original[i] = (byte)f.ReadByte();
            f.Position = offsets[i];
            f.WriteByte(restore is null ? (byte)(original[i] ^ 0x5A) : restore[i]);
        }
        f.Flush(flushToDisk: true);
        return original;
    }

    /// <summary>Heals everything: network, pauses, members killed on purpose. A member that is down without having been
    /// killed exited by itself: a problem (with its last words), and it is started again.</summary>
    public async Task HealAsync()
    {
        cluster.Network.Heal();
        foreach (var n in cluster.Members)
        {
            n.Resume();
            if (n.Running) continue;
            if (!_down.Contains(n))
            {
                Problems.Add($"{n.Name} exited by itself (exit {n.ExitCode}); last output:\n    {string.Join("\n    ", n.Output().TakeLast(15))}");
            }
            Restart(n);
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <summary>Members that exited by themselves while the nemesis was not looking (checked between faults too).</summary>
    public void CheckCrashes()
    {
        foreach (var n in cluster.Members.Where(n => !n.Running && !_down.Contains(n)).ToList())
        {
            Problems.Add($"{n.Name} exited by itself (exit {n.ExitCode}); last output:\n    {string.Join("\n    ", n.Output().TakeLast(15))}");
            Restart(n);
        }
    }
}
