using System.Diagnostics;
using System.Globalization;
using Cairn.Client;

namespace Cairn.Faults.Nemesis;

/// <summary>
/// Members as `cairn serve` processes on loopback, each behind a <see cref="PeerProxy"/> at its published peer
/// address, optionally each on a tmpfs of its own. Disposing kills every process, unmounts and removes everything.
/// </summary>
internal sealed class Cluster : IAsyncDisposable
{
    private readonly List<PeerProxy> _proxies = [];
    private readonly List<string> _mounts = [];
    private readonly HashSet<int> _members;       // slots in the cluster now (a removed one is out until re-added)
    private readonly Action<string> _log;

    public Cluster(int size, string root, int? tmpfsMiB, Action<string> log)
    {
        Root = root;
        _log = log;
        Directory.CreateDirectory(root);
        var keyFile = Path.Combine(root, "master.key");
        Cairn.Crypto.KeyFileProvider.OpenOrCreate(keyFile);   // before the members start: they would race to create it
        Settings = new ClusterSettings(keyFile);
        Network = new Network(size);
        try
        {
            for (var i = 0; i < size; i++)
            {
                var node = new Node(i, root);
                Nodes.Add(node);
                if (tmpfsMiB is { } mib) Mount(node.Root, mib);
                _proxies.Add(new PeerProxy(i, node.ProxyPort, node.PeerPort, Network, SlotOf));
            }
        }
        catch
        {
            ShutdownAsync(keep: false).GetAwaiter().GetResult();   // nothing started yet: unmount what was mounted
            throw;
        }
        _members = [.. Enumerable.Range(0, size)];
    }

    public string Root { get; }

    public ClusterSettings Settings { get; }

    public Network Network { get; }

    public List<Node> Nodes { get; } = [];

    public IEnumerable<Node> Members => Nodes.Where(n => _members.Contains(n.Slot));

    public string[] ClientEndpoints => [.. Nodes.Select(n => n.ClientUrl)];

    public long LinksRelayed => _proxies.Sum(p => p.Relayed);

    public long LinksRefused => _proxies.Sum(p => p.Refused);

    public bool OnTmpfs => _mounts.Count > 0;

    private int? SlotOf(ulong id) => Nodes.FirstOrDefault(n => n.Id == id)?.Slot;

    private string InitialCluster => string.Join(",", Members.Select(n => $"{n.Name}={n.PeerUrl}"));

    private static void Run(string file, params string[] args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, UseShellExecute = false })!;
        var err = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {err.Trim()}");
    }

    private void Mount(string dir, int mib)
    {
        // Fails loudly when mounting is not permitted: a disk test that cannot fill a disk must not pass.
        Run("mount", "-t", "tmpfs", "-o", $"size={mib}m", "tmpfs", dir);
        _mounts.Add(dir);
    }

    public async Task StartAsync()
    {
        foreach (var n in Nodes) n.Start(Settings, InitialCluster, existing: false);
        await LeaderAsync(TimeSpan.FromSeconds(30)).ConfigureAwait(false);
    }

    public void Restart(Node node) => node.Restart(Settings);

    /// <summary>A client of every member with short timeouts, for the harness's own requests.</summary>
    public CairnClient ControlClient(IEnumerable<Node>? through = null) => new(new CairnClientOptions
    {
        Endpoints = [.. (through ?? Nodes).Select(n => n.ClientUrl)],
        ConnectTimeout = TimeSpan.FromSeconds(1),
        RequestTimeout = TimeSpan.FromSeconds(2),
        DiscoverEndpoints = false,
    });

    /// <summary>The member every reachable running member names as leader, or null after <paramref name="timeout"/>.</summary>
    public async Task<Node?> LeaderAsync(TimeSpan timeout)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < timeout)
        {
            var live = Members.Where(n => n.Running && !n.Paused).ToList();
            var seen = new List<ulong>();
            foreach (var n in live)
            {
                await using var c = ControlClient([n]);
                try
                {
                    seen.Add((await c.StatusAsync(n.ClientUrl).ConfigureAwait(false)).Body.Leader);
                }
                catch (CairnException)
                {
                    seen.Add(0);
                }
            }
            if (seen.Count > 0 && seen[0] != 0 && seen.All(s => s == seen[0]) && live.FirstOrDefault(n => n.Id == seen[0]) is { } leader) return leader;
            await Task.Delay(100).ConfigureAwait(false);
        }
        return null;
    }

    /// <summary>
    /// Removes the member in <paramref name="node"/>'s slot, wipes its data and adds a fresh member there under a new
    /// name (a removed id is refused for good). Throws when the cluster refuses; the caller records it.
    /// </summary>
    public async Task ReplaceAsync(Node node, CancellationToken cancellationToken)
    {
        // Never shrink a cluster that is already short: removing another member while a slot is empty can leave a
        // voter set whose quorum needs a member that is not running.
        if (_members.Count < Nodes.Count) throw new InvalidOperationException($"replace {node.Name}: a slot is still empty from an earlier change; not removing another member");
        var others = Members.Where(n => n != node).ToList();
        await using var c = ControlClient(others);
        var name = node.Name;
        await ChangeAsync(c, () => c.MemberRemoveAsync(node.Id, cancellationToken), $"remove {name}", list => list.All(m => m.Name != name), cancellationToken).ConfigureAwait(false);
        _members.Remove(node.Slot);
        if (!await node.WaitForExitAsync(TimeSpan.FromSeconds(10)).ConfigureAwait(false))
        {
            _log($"{node.Name} was removed but did not stop by itself within 10 s; killing it");
            await node.KillAsync().ConfigureAwait(false);
        }
        Directory.Delete(node.DataDir, recursive: true);
        node.Rename();
        var added = node.Name;
        // An add whose outcome stayed unknown (say, forwarded to a leader that was just removed) and that the member
        // list did not show is tried again: leaving the slot empty would shrink the cluster for good.
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await ChangeAsync(c, () => c.MemberAddAsync(added, node.PeerUrl, cancellationToken: cancellationToken), $"add {added}", list => list.Any(m => m.Name == added), cancellationToken).ConfigureAwait(false);
                break;
            }
            catch (InvalidOperationException) when (attempt < 3)
            {
                var members = await c.MemberListAsync(cancellationToken).ConfigureAwait(false);
                if (members.Body.Any(m => m.Name == added)) break;   // it did take effect after all
                _log($"add {added} not applied (attempt {attempt}); trying again");
            }
        }
        _members.Add(node.Slot);
        node.Start(Settings, InitialCluster, existing: true);
    }

    /// <summary>
    /// A member change is a write: NoLeader/Busy (not applied) are retried; when its outcome is unknown, the member list
    /// says whether it happened. Throws <see cref="InvalidOperationException"/> when it did not.
    /// </summary>
    private static async Task ChangeAsync<T>(CairnClient c, Func<Task<T>> call, string what, Func<IReadOnlyList<Cairn.Protocol.MemberInfo>, bool> done, CancellationToken cancellationToken)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await call().ConfigureAwait(false);
                return;
            }
            catch (CairnException e) when (e.Code is { } code && CairnException.IsNotApplied(code) && deadline.Elapsed < TimeSpan.FromSeconds(20))
            {
                await Task.Delay(200, cancellationToken).ConfigureAwait(false);
            }
            catch (CairnException e)
            {
                // Unknown outcome (or a refusal): look for a while (a member may not have applied it yet).
                var look = Stopwatch.StartNew();
                while (look.Elapsed < TimeSpan.FromSeconds(5))
                {
                    try
                    {
                        if (done((await c.MemberListAsync(cancellationToken).ConfigureAwait(false)).Body)) return;
                    }
                    catch (CairnException)
                    {
                    }
                    await Task.Delay(300, cancellationToken).ConfigureAwait(false);
                }
                throw new InvalidOperationException($"{what}: {e.Message}", e);
            }
        }
    }

    /// <summary>Fills the tmpfs under <paramref name="node"/> until the kernel refuses (ENOSPC); returns the ballast file.</summary>
    public static string Fill(Node node)
    {
        var ballast = Path.Combine(node.Root, "ballast");
        var chunk = new byte[64 << 10];
        using var f = new FileStream(ballast, FileMode.Create, FileAccess.Write, FileShare.None, 0);
        try
        {
            while (true) f.Write(chunk);
        }
        catch (IOException)
        {
            // the disk is full
        }
        return ballast;
    }

    /// <summary>Kills every process, closes the proxies, unmounts and deletes (unless <paramref name="keep"/>).</summary>
    public async Task ShutdownAsync(bool keep)
    {
        foreach (var n in Nodes) await n.KillAsync().ConfigureAwait(false);
        foreach (var p in _proxies) p.Dispose();
        _proxies.Clear();
        foreach (var m in _mounts)
        {
            if (keep)
            {
                // Copy what was on the tmpfs before it goes, so the failing run can be looked at.
                var copy = m + ".kept";
                Run("cp", "-a", m, copy);
            }
            Run("umount", m);
        }
        _mounts.Clear();
        if (!keep)
        {
            try
            {
                Directory.Delete(Root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await ShutdownAsync(keep: false).ConfigureAwait(false);
        }
        catch (InvalidOperationException)
        {
            // a second shutdown after a failed umount: already reported
        }
    }

    public override string ToString() => string.Join(", ", Nodes.Select(n => string.Create(CultureInfo.InvariantCulture, $"{n.Name}{(n.Running ? n.Paused ? " (paused)" : "" : " (down)")}")));
}
