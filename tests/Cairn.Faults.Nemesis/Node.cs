using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace Cairn.Faults.Nemesis;

/// <summary>
/// One slot of the cluster: a `cairn serve` process with its ports, data directory and proxy. The name changes when
/// the member is removed and a fresh one added in its place (a removed id is refused for good).
/// </summary>
internal sealed class Node
{
    private readonly List<string> _output = [];   // the last lines the process wrote; guarded by itself
    private Process? _process;
    private int _generation;
    private string? _initialCluster;
    private bool _existing;

    public Node(int slot, string root)
    {
        Slot = slot;
        Name = $"m{slot + 1}";
        ClientPort = FreePort();
        PeerPort = FreePort();
        ProxyPort = FreePort();
        Root = Path.Combine(root, $"slot{slot + 1}");
        LogPath = Path.Combine(root, $"slot{slot + 1}.log");
        Directory.CreateDirectory(Root);
    }

    public int Slot { get; }

    public string Name { get; private set; }

    public ulong Id => Cairn.Server.MemberOptions.MemberId(Name);

    public int ClientPort { get; }

    /// <summary>The member's real peer listener (--listen-peer).</summary>
    public int PeerPort { get; }

    /// <summary>The address the cluster knows it by (--initial-cluster): its proxy.</summary>
    public int ProxyPort { get; }

    public string ClientUrl => $"127.0.0.1:{ClientPort}";

    public string PeerUrl => $"127.0.0.1:{ProxyPort}";

    /// <summary>The slot's directory: a tmpfs mount point when the run puts data on tmpfs.</summary>
    public string Root { get; }

    public string DataDir => Path.Combine(Root, Name);

    /// <summary>Everything the slot's processes wrote, one file per slot beside the data (kept when a run fails).</summary>
    public string LogPath { get; }

    public bool Running => _process is { HasExited: false };

    public bool Paused { get; private set; }

    public int? ExitCode => _process is { HasExited: true } p ? p.ExitCode : null;

    /// <summary>The next name for this slot, after the member holding it was removed.</summary>
    public void Rename() => Name = $"m{Slot + 1}-{++_generation}";

    /// <summary>Starts the member again with the flags it was last started with (its data directory says the rest).</summary>
    public void Restart(ClusterSettings settings) => Start(settings, _initialCluster ?? throw new InvalidOperationException($"{Name} never started"), _existing);

    public void Start(ClusterSettings settings, string initialCluster, bool existing)
    {
        _initialCluster = initialCluster;
        _existing = existing;
        if (Running) throw new InvalidOperationException($"{Name} is already running");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "cairn.dll"), "serve", "--listen-grpc", "", "--name", Name, "--data-dir", DataDir,
            "--listen-client", ClientUrl, "--listen-peer", $"127.0.0.1:{PeerPort}", "--listen-metrics", "",
            "--initial-cluster", initialCluster, "--initial-cluster-state", existing ? "existing" : "new",
            "--key-file", settings.KeyFile,
            "--heartbeat-interval", settings.HeartbeatMs.ToString(CultureInfo.InvariantCulture),
            "--election-timeout", settings.ElectionTimeoutMs.ToString(CultureInfo.InvariantCulture),
            "--snapshot-count", settings.SnapshotCount.ToString(CultureInfo.InvariantCulture),
            "--quota-bytes", settings.QuotaBytes.ToString(CultureInfo.InvariantCulture),
        }) psi.ArgumentList.Add(a);
        Remember($"---- starting {Name}: {string.Join(' ', psi.ArgumentList.Skip(1))}");
        var p = Process.Start(psi) ?? throw new InvalidOperationException("could not start dotnet");
        p.ErrorDataReceived += (_, e) => Remember(e.Data);
        p.OutputDataReceived += (_, e) => Remember(e.Data);
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        _process?.Dispose();
        _process = p;
        Paused = false;
    }

    private void Remember(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            File.AppendAllText(LogPath, $"{DateTime.Now:HH:mm:ss.fff} {line}\n");
            _output.Add(line);
            if (_output.Count > 400) _output.RemoveRange(0, 100);
        }
    }

    public IReadOnlyList<string> Output()
    {
        lock (_output) return [.. _output];
    }

    /// <summary>kill -9: no hand-over, no flush.</summary>
    public async Task KillAsync()
    {
        if (_process is not { HasExited: false } p) return;
        if (Paused) Signal("CONT");
        p.Kill();
        await p.WaitForExitAsync().ConfigureAwait(false);
        p.WaitForExit();             // and its output read to the end
        Paused = false;
    }

    public void Pause()
    {
        if (!Running || Paused) return;
        Signal("STOP");
        Paused = true;
    }

    public void Resume()
    {
        if (!Paused) return;
        if (Running) Signal("CONT");
        Paused = false;
    }

    /// <summary>Waits for the process to end by itself (a removed member stops); false if it did not.</summary>
    public async Task<bool> WaitForExitAsync(TimeSpan timeout)
    {
        if (_process is not { } p) return true;
        try
        {
            await p.WaitForExitAsync().WaitAsync(timeout).ConfigureAwait(false);
            p.WaitForExit();
            return true;
        }
        catch (TimeoutException)
        {
            return false;
        }
    }

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", [$"-{signal}", _process!.Id.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
        if (kill.ExitCode != 0) throw new InvalidOperationException($"kill -{signal} {Name} failed");
    }

    public static int FreePort() => Cairn.Tests.TestPorts.Next();
}

/// <summary>How members are started.</summary>
internal sealed record ClusterSettings(string KeyFile, int HeartbeatMs = 50, int ElectionTimeoutMs = 500, int SnapshotCount = 200, long QuotaBytes = 4L << 30);
