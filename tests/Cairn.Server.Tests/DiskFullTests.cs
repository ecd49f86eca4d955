using Cairn.Protocol;

namespace Cairn.Server.Tests;

/// <summary>A leader whose disk is nearly full refuses writes with NoSpace instead of stopping, and takes them again once space is freed.</summary>
public sealed class DiskFullTests : IAsyncLifetime
{
    private readonly string _mount = Path.Combine(Path.GetTempPath(), "cairn-diskfull-" + Guid.NewGuid().ToString("N"));
    private readonly string _secret = Directory.CreateTempSubdirectory("cairn-diskfull-secret-").FullName; // off the small file system

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_mount);
        // A small file system of its own (root, as the fault tests are): mounting must work, or the test fails here.
        using var mount = System.Diagnostics.Process.Start("mount", ["-t", "tmpfs", "-o", "size=48m", "tmpfs", _mount])!;
        await mount.WaitForExitAsync();
        Assert.True(mount.ExitCode == 0, $"mount -t tmpfs on {_mount} failed (exit {mount.ExitCode}); these tests need root");
    }

    public async Task DisposeAsync()
    {
        using var umount = System.Diagnostics.Process.Start("umount", [_mount])!;
        await umount.WaitForExitAsync();
        Directory.Delete(_mount, recursive: true);
        Directory.Delete(_secret, recursive: true);
    }

    [Fact]
    public async Task Writes_are_refused_with_NoSpace_while_the_disk_is_nearly_full_and_nothing_acknowledged_is_lost()
    {
        var dir = Path.Combine(_mount, "m1");
        var options = new MemberOptions
        {
            Name = "m1", DataDir = dir, ListenClient = "127.0.0.1:0", ListenPeer = "127.0.0.1:0", ListenMetrics = "",
            HeartbeatInterval = TimeSpan.FromMilliseconds(20), ElectionTimeout = TimeSpan.FromMilliseconds(200),
            DiskReserveBytes = 8L << 20, Log = _ => { },
        };
        var member = Member.Start(options);
        try
        {
            await TestCluster.EventuallyAsync(() => member.IsLeader, "m1 leads");
            await using var c = await TestClient.ConnectAsync(member.ClientEndpoint);
            for (var i = 0; i < 20; i++) await c.PutAsync($"k{i}", "before");

            // Fill the file system up to 4 MiB from full: under the 8 MiB reserve.
            var ballast = Path.Combine(_mount, "ballast");
            var free = new DriveInfo(_mount).AvailableFreeSpace;
            await using (var f = File.Create(ballast))
            {
                var chunk = new byte[1 << 20];
                Random.Shared.NextBytes(chunk);
                for (long left = free - (4L << 20); left > 0; left -= chunk.Length) await f.WriteAsync(chunk.AsMemory(0, (int)Math.Min(chunk.Length, left)));
            }
            ServerError? refused = null;
            await TestCluster.EventuallyAsync(async () =>
            {
                try
                {
                    await c.PutAsync("k-full", "x");
                    return false;   // the free space is measured once per tick: the first puts may still go through
                }
                catch (ServerError e) when (e.Code == ErrorCode.NoSpace)
                {
                    refused = e;
                    return true;
                }
            }, "a put is refused with NoSpace");
            Assert.Contains("disk is nearly full", refused!.Message, StringComparison.Ordinal);
            Assert.False(member.Stopped.IsCompleted, "the member stays up");
            Assert.Equal("before", await c.GetAsync("k3"));   // reads still work

            File.Delete(ballast);
            await TestCluster.EventuallyAsync(async () =>
            {
                try
                {
                    await c.PutAsync("k-after", "y");
                    return true;
                }
                catch (ServerError e) when (e.Code == ErrorCode.NoSpace)
                {
                    return false;
                }
            }, "puts are taken again once space is freed");
            for (var i = 0; i < 20; i++) Assert.Equal("before", await c.GetAsync($"k{i}"));
            Assert.Equal("y", await c.GetAsync("k-after"));
            Assert.Contains("cairn_disk_full_refusals_total", member.MetricsText(), StringComparison.Ordinal);
        }
        finally
        {
            await member.DisposeAsync();
        }
    }
    [Fact]
    public async Task A_member_that_stops_on_a_failed_disk_write_exits_1_so_a_supervisor_can_tell()
    {
        // With the reserve off, a full disk fails the log write itself: the member must stop (it cannot persist what it
        // would acknowledge), and `cairn serve` must say so with its exit code.
        int Port()
        {
            using var s = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
            s.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
            return ((System.Net.IPEndPoint)s.LocalEndPoint!).Port;
        }
        var (client, peer) = (Port(), Port());
        File.WriteAllText(Path.Combine(_secret, "peer.secret"), Convert.ToHexString(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)));
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in new[]
        {
            Path.Combine(AppContext.BaseDirectory, "cairn.dll"), "serve", "--listen-grpc", "", "--name", "m1", "--data-dir", Path.Combine(_mount, "m1"),
            "--listen-client", $"127.0.0.1:{client}", "--listen-peer", $"127.0.0.1:{peer}", "--listen-metrics", "", "--plain",
            "--initial-cluster", $"m1=127.0.0.1:{peer}", "--heartbeat-interval", "20", "--election-timeout", "200",
            "--disk-reserve-bytes", "0", "--peer-secret-file", Path.Combine(_secret, "peer.secret"),
        }) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var output = new List<string>();
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.Add(e.Data); };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.Add(e.Data); };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            TestClient? c = null;
            await TestCluster.EventuallyAsync(async () =>
            {
                try
                {
                    c = await TestClient.ConnectAsync(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, client));
                    await c.PutAsync("k", "v");
                    return true;
                }
                catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ServerError)
                {
                    if (c is not null) await c.DisposeAsync();
                    c = null;
                    return false;
                }
            }, "the member serves");
            // Leave nothing free, then write until the log write fails.
            var ballast = Path.Combine(_mount, "ballast");
            await using (var f = File.Create(ballast))
            {
                var chunk = new byte[1 << 20];
                try
                {
                    while (true) await f.WriteAsync(chunk);
                }
                catch (IOException)
                {
                    // ENOSPC: the file system is full
                }
            }
            var value = new string('x', 4000);
            for (var i = 0; i < 10_000 && !p.HasExited; i++)
            {
                try
                {
                    await c!.PutAsync($"k{i}", value);
                }
                catch (Exception e) when (e is ServerError or IOException or System.Net.Sockets.SocketException or TimeoutException or OperationCanceledException)
                {
                    break;
                }
            }
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            p.WaitForExit();
            lock (output) Assert.True(p.ExitCode == 1, $"exit {p.ExitCode}; output:\n{string.Join("\n", output.TakeLast(20))}");
            lock (output) Assert.Contains(output, l => l.Contains("fatal", StringComparison.Ordinal));
            if (c is not null) await c.DisposeAsync();
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
    }
}

/// <summary>What a member says when its log had a torn last record at start.</summary>
public sealed class WalRecoveryLogTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-torn-" + Guid.NewGuid().ToString("N"));

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_torn_last_record_is_cut_at_start_and_said_in_the_log()
    {
        var lines = new List<string>();
        MemberOptions Options() => new()
        {
            Name = "m1", DataDir = _dir, ListenClient = "127.0.0.1:0", ListenPeer = "127.0.0.1:0", ListenMetrics = "",
            HeartbeatInterval = TimeSpan.FromMilliseconds(20), ElectionTimeout = TimeSpan.FromMilliseconds(200),
            Log = l => { lock (lines) lines.Add(l); },
        };
        var member = Member.Start(Options());
        await TestCluster.EventuallyAsync(() => member.IsLeader, "m1 leads");
        await using (var c = await TestClient.ConnectAsync(member.ClientEndpoint)) await c.PutAsync("k", "v");
        await member.DisposeAsync();

        // A write the crash tore: the start of a record frame after the last one, then the preallocated zeros.
        var segment = Directory.GetFiles(Path.Combine(_dir, "member", "wal"), "*.wal").Order(StringComparer.Ordinal).Last();
        var data = File.ReadAllBytes(segment);
        var end = Array.FindLastIndex(data, b => b != 0) + 1;
        await using (var f = new FileStream(segment, FileMode.Open, FileAccess.Write))
        {
            f.Position = end;
            f.Write([0xE8, 0x03, 0x00, 0x00, 0x01, 0xAA, 0xBB, 0xCC]);
        }
        member = Member.Start(Options());
        try
        {
            await TestCluster.EventuallyAsync(() => member.IsLeader, "m1 leads again");
            lock (lines) Assert.Contains(lines, l => l.Contains("write-ahead log: cut a torn last record", StringComparison.Ordinal));
            await using var c = await TestClient.ConnectAsync(member.ClientEndpoint);
            Assert.Equal("v", await c.GetAsync("k"));
        }
        finally
        {
            await member.DisposeAsync();
        }
    }
}
