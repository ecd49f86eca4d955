using System.Diagnostics;
using System.Globalization;
using Cairn.Storage.CrashChild;
using Xunit.Abstractions;

namespace Cairn.Storage.Tests;

/// <summary>
/// Kills a child process (Cairn.Storage.CrashChild) that commits a deterministic workload, then checks that the file
/// reopens at exactly some committed prefix of that workload: Verify passes, the content equals the model replayed to
/// the marker transaction, and nothing the child reported as committed is missing.
/// </summary>
public sealed class CrashTests(ITestOutputHelper output)
{
    private const ulong DefaultSeed = 0x5EED_C0DE;

    /// <summary>
    /// Kills at random moments; override the seed with CAIRN_CRASH_SEED, the count with CAIRN_CRASH_KILLS. The seed fixes
    /// the workload and the kill delays; where a kill lands inside a commit is up to the scheduler.
    /// </summary>
    [Theory]
    [InlineData(false)]
    [InlineData(true)]  // every page sealed with AES-256-GCM
    public void Killed_at_random_moments_the_file_reopens_at_a_committed_prefix(bool encrypted)
    {
        var seed = EnvOr("CAIRN_CRASH_SEED", DefaultSeed);
        var kills = (int)EnvOr("CAIRN_CRASH_KILLS", encrypted ? 25UL : 50UL);
        var keyHex = encrypted ? "5ec7e7" + new string('a', 58) : null;
        var options = keyHex is null ? new StorageOptions() : new StorageOptions { MasterKey = new Cairn.Crypto.StaticKeyProvider(Convert.FromHexString(keyHex)) };
        var hangGuard = TimeSpan.FromSeconds(EnvOr("CAIRN_CRASH_SECONDS", 120)); // about 15-25 s on 2 cores
        using var dir = new TempDir();
        var path = dir.File("crash.cairn");
        var rng = new Random((int)(seed ^ (seed >> 32)));
        var model = new WorkloadModel(seed);
        var clock = Stopwatch.StartNew();
        var killed = 0;
        var inFlightCommitted = 0;
        for (var round = 0; killed < kills; round++)
        {
            var where = $"seed {seed} (CAIRN_CRASH_SEED), round {round}";
            Assert.True(clock.Elapsed < hangGuard, $"{where}: only {killed} of {kills} kills in {hangGuard.TotalSeconds} s; the machine is too slow or the child hangs");
            // Most kills land 50-400 ms into the workload; every eighth lands during start-up, open or creation.
            var early = round % 8 == 0;
            var delay = early ? rng.Next(0, 150) : rng.Next(50, 401);
            where += early ? $", killed {delay} ms after launch" : $", killed {delay} ms after open";
            ulong last, began;
            using (var child = ChildProcess.Start(output, ["run", path, seed.ToString(CultureInfo.InvariantCulture)], key: keyHex))
            {
                if (!early) child.WaitForLine("ready ", TimeSpan.FromSeconds(30), where);
                Thread.Sleep(delay);
                Assert.False(child.HasExited, $"{where}: the child exited by itself (code {child.ExitCodeOrNull}): {child.Stderr}");
                child.Kill();
                Assert.True(child.ExitCode != 0, $"{where}: killed child exited 0");
                // Nothing is committed before "ready", so without any "committed" line the marker cannot have moved.
                last = child.LastCommitted > 0 ? (ulong)child.LastCommitted : model.Applied;
                began = child.HasLine("ready ") ? last + 1 : last;
            }
            killed++;

            using var db = Database.Open(path, options);
            try
            {
                db.Verify();
            }
            catch (CorruptDatabaseException e)
            {
                Assert.Fail($"{where}: Verify failed: {e.Message}");
            }
            using var tx = db.BeginRead();
            var marker = Workload.ReadMarker(tx);
            Assert.True(marker >= last, $"{where}: transaction {last} was reported committed but the file holds only {marker}");
            Assert.True(marker <= began, $"{where}: the file holds transaction {marker} but the child had begun at most {began}");
            if (marker > last) inFlightCommitted++;
            model.AdvanceTo(marker);
            var diff = model.Diff(tx);
            Assert.True(diff is null, $"{where}: after transaction {marker}: {diff}");
        }
        output.WriteLine($"seed {seed}: {killed} kills, {model.Applied} transactions committed ({inFlightCommitted} were durable before the child could report them) in {clock.Elapsed.TotalSeconds:F1} s");
        Assert.True(model.Applied >= (ulong)kills, $"seed {seed}: only {model.Applied} transactions in {killed} runs; the children were killed before doing any work");
    }

    public static TheoryData<string, int> FailpointCases => new()
    {
        { Failpoints.BeforeDataSync, 0 },
        { Failpoints.BeforeMetaWrite, 0 },
        { Failpoints.BeforeMetaSync, 0 },
        { Failpoints.AfterMetaSync, 0 },
        { Failpoints.BeforeDataSync, 7 },
        { Failpoints.BeforeMetaWrite, 7 },
        { Failpoints.BeforeMetaSync, 7 },
        { Failpoints.AfterMetaSync, 7 },
    };

    /// <summary>
    /// The child dies at the failpoint inside its first commit, after <paramref name="prior"/> earlier commits. Before
    /// the meta record is written the transaction must be absent; once written, present (see below). Either way the
    /// file verifies, holds exactly the model of its marker, and accepts more work.
    /// </summary>
    [Theory]
    [MemberData(nameof(FailpointCases))]
    public void Dying_at_a_failpoint_leaves_exactly_the_committed_prefix(string failpoint, int prior)
    {
        const ulong seed = 77;
        using var dir = new TempDir();
        var path = dir.File("failpoint.cairn");
        var model = new WorkloadModel(seed);
        using (var db = Database.Open(path))
        {
            for (var i = 1UL; i <= (ulong)prior; i++)
            {
                using var tx = db.BeginWrite();
                Workload.Apply(tx, seed, i);
                tx.Commit();
            }
        }

        using (var child = ChildProcess.Start(output, ["run", path, "77"], failpoint))
        {
            Assert.True(child.WaitForExit(TimeSpan.FromSeconds(30)), $"{failpoint}: the child did not reach the failpoint");
            Assert.True(child.ExitCode == 137, $"{failpoint}: the child exited {child.ExitCode}, expected 137 from the failpoint: {child.Stderr}");
            Assert.Equal(prior, child.WaitForLine("ready ", TimeSpan.Zero, failpoint));
            Assert.Equal(0, child.LastCommitted); // it died inside its first commit
        }

        // Before the meta record is written the transaction cannot exist. From the moment it is written it is in the
        // kernel's page cache, which outlives the process: a process crash (unlike a power cut) keeps it even unsynced.
        var metaWritten = failpoint is Failpoints.BeforeMetaSync or Failpoints.AfterMetaSync;
        var expected = metaWritten ? (ulong)prior + 1 : (ulong)prior;
        using (var db = Database.Open(path))
        {
            db.Verify();
            using var tx = db.BeginRead();
            Assert.Equal(expected, Workload.ReadMarker(tx));
            model.AdvanceTo(expected);
            Assert.Null(model.Diff(tx));
        }

        // Recovery is complete: a clean run continues from the marker and the result is the same as never crashing.
        using (var child = ChildProcess.Start(output, ["run", path, "77", (expected + 5).ToString(CultureInfo.InvariantCulture)]))
        {
            Assert.True(child.WaitForExit(TimeSpan.FromSeconds(30)), $"{failpoint}: the follow-up run did not finish");
            Assert.True(child.ExitCode == 0, $"{failpoint}: follow-up run exited {child.ExitCode}: {child.Stderr}");
        }
        using (var db = Database.Open(path))
        {
            db.Verify();
            using var tx = db.BeginRead();
            model.AdvanceTo(expected + 5);
            Assert.Null(model.Diff(tx));
        }
    }

    /// <summary>
    /// Commits made without a sync are lost to a SIGKILL (their meta record was never written), unless an empty durable
    /// commit came after them: once it returns they must survive. The case without the barrier shows the kill does
    /// lose them, so the barrier is what keeps them.
    /// </summary>
    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void An_empty_durable_commit_makes_earlier_no_sync_commits_survive_a_kill(bool barrier)
    {
        const ulong seed = 31, count = 12;
        using var dir = new TempDir();
        var path = dir.File("lazy.cairn");
        using (var child = ChildProcess.Start(output, ["lazy", path, "31", "12", barrier ? "barrier" : "none"]))
        {
            child.WaitForLine("waiting", TimeSpan.FromSeconds(30), "lazy");
            Assert.Equal((int)count, child.LastCommitted);
            if (barrier) Assert.True(child.WaitForLine("barrier ", TimeSpan.Zero, "lazy") > 0);
            child.Kill();
        }
        using var db = Database.Open(path);
        db.Verify();
        using var tx = db.BeginRead();
        var expected = barrier ? count : 0;
        Assert.Equal(expected, Workload.ReadMarker(tx));
        var model = new WorkloadModel(seed);
        model.AdvanceTo(expected);
        Assert.Null(model.Diff(tx));
    }

    /// <summary>A creation killed between writing its temporary file and renaming it leaves that file; the next open removes it.</summary>
    [Fact]
    public void A_creation_killed_before_its_rename_leaves_a_file_the_next_open_removes()
    {
        using var dir = new TempDir();
        var path = dir.File("new.cairn");
        using (var child = ChildProcess.Start(output, ["run", path, "5"], Failpoints.BeforeCreateRename))
        {
            Assert.True(child.WaitForExit(TimeSpan.FromSeconds(30)), "the child did not reach the failpoint");
            Assert.True(child.ExitCode == 137, $"the child exited {child.ExitCode}, expected 137 from the failpoint: {child.Stderr}");
        }
        Assert.False(File.Exists(path));
        var leftover = Path.GetFileName(Assert.Single(Directory.GetFiles(dir.Path, "*.creating")));
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir.File(leftover))); // private from the start
        }

        var warnings = new List<string>();
        using (var db = Database.Open(path, new StorageOptions { Warning = warnings.Add }))
        {
            db.Verify();
        }
        Assert.Empty(Directory.GetFiles(dir.Path, "*.creating"));
        Assert.Contains(leftover, Assert.Single(warnings), StringComparison.Ordinal);
    }

    [Fact]
    public void A_second_process_cannot_open_a_database_in_use()
    {
        using var dir = new TempDir();
        var path = dir.File("locked.cairn");
        using (var db = Database.Open(path))
        {
            using var tx = db.BeginWrite();
            tx.CreateTree("t").Put("k"u8, "v"u8);
            tx.Commit();
        }
        using (var child = ChildProcess.Start(output, ["hold", path]))
        {
            child.WaitForLine("holding", TimeSpan.FromSeconds(30), "hold");
            var e = Assert.Throws<DatabaseLockedException>(() => Database.Open(path));
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Equal(path, e.Path);
            if (OperatingSystem.IsLinux())
            {
                Assert.Equal(child.Id, e.HolderPid); // from /proc/locks
                Assert.Contains($"in use by another process (pid {child.Id}); stop it first", e.Message, StringComparison.Ordinal);
                Assert.False(e.HeldByThisProcess);
            }
            Assert.DoesNotContain("snapshot", e.Message, StringComparison.OrdinalIgnoreCase);
            child.Kill();
        }
        // The lock dies with its holder.
        using (var db = Database.Open(path))
        {
            using var tx = db.BeginRead();
            Assert.True(tx.OpenTree("t").TryGet("k"u8, out var v) && v.SequenceEqual("v"u8));
        }
    }

    [Fact]
    public void A_second_instance_in_the_same_process_cannot_open_a_database_in_use()
    {
        using var dir = new TempDir();
        var path = dir.File("locked.cairn");
        var first = Database.Open(path);
        try
        {
            var e = Assert.Throws<DatabaseLockedException>(() => Database.Open(path));
            Assert.Throws<DatabaseLockedException>(() => Database.Open(path, new StorageOptions { CreateIfMissing = false }));
            if (OperatingSystem.IsLinux())
            {
                Assert.Equal(Environment.ProcessId, e.HolderPid);
                Assert.True(e.HeldByThisProcess);
                Assert.Contains($"{path} is in use by another Database instance in this process", e.Message, StringComparison.Ordinal);
            }
        }
        finally
        {
            first.Dispose();
        }
        using var again = Database.Open(path);
        again.Verify();
    }

    private static ulong EnvOr(string name, ulong fallback) =>
        Environment.GetEnvironmentVariable(name) is { Length: > 0 } s ? ulong.Parse(s, CultureInfo.InvariantCulture) : fallback;

    /// <summary>A running Cairn.Storage.CrashChild with its stdout read line by line as it arrives.</summary>
    private sealed class ChildProcess : IDisposable
    {
        private readonly Process _process;
        private readonly List<string> _lines = [];
        private readonly System.Text.StringBuilder _stderr = new();
        private readonly ITestOutputHelper _output;

        private ChildProcess(Process process, ITestOutputHelper output)
        {
            _process = process;
            _output = output;
        }

        public static ChildProcess Start(ITestOutputHelper output, string[] args, string? failpoint = null, string? key = null)
        {
            var dll = Path.Combine(AppContext.BaseDirectory, "Cairn.Storage.CrashChild.dll");
            Assert.True(File.Exists(dll), $"{dll} is missing: the test project must reference Cairn.Storage.CrashChild so it is copied to the output");
            var psi = new ProcessStartInfo(DotnetHost())
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                RedirectStandardInput = true,
                UseShellExecute = false,
            };
            psi.ArgumentList.Add(dll);
            foreach (var a in args) psi.ArgumentList.Add(a);
            psi.Environment.Remove("CAIRN_FAILPOINT");
            if (failpoint is not null) psi.Environment["CAIRN_FAILPOINT"] = failpoint;
            if (key is not null) psi.Environment[Workload.KeyVariable] = key;
            var p = new Process { StartInfo = psi };
            var child = new ChildProcess(p, output);
            p.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (child._lines)
                {
                    child._lines.Add(e.Data);
                    Monitor.PulseAll(child._lines);
                }
            };
            p.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (child._stderr) child._stderr.AppendLine(e.Data);
            };
            p.Start();
            p.BeginOutputReadLine();
            p.BeginErrorReadLine();
            return child;
        }

        /// <summary>Where `dotnet` is: the host running these tests when it is dotnet, else DOTNET_HOST_PATH, else PATH.</summary>
        private static string DotnetHost()
        {
            var self = Environment.ProcessPath;
            if (self is not null && Path.GetFileNameWithoutExtension(self) == "dotnet") return self;
            return Environment.GetEnvironmentVariable("DOTNET_HOST_PATH") is { Length: > 0 } host ? host : "dotnet";
        }

        public int Id => _process.Id;

        public bool HasExited => _process.HasExited;

        public int? ExitCodeOrNull => _process.HasExited ? _process.ExitCode : null;

        public int ExitCode => _process.ExitCode;

        public string Stderr
        {
            get { lock (_stderr) return _stderr.ToString(); }
        }

        public bool HasLine(string prefix)
        {
            lock (_lines) return _lines.Exists(l => l.StartsWith(prefix, StringComparison.Ordinal));
        }

        /// <summary>The number in the last "committed i" line; 0 when none.</summary>
        public int LastCommitted
        {
            get
            {
                lock (_lines)
                {
                    for (var i = _lines.Count - 1; i >= 0; i--)
                    {
                        if (_lines[i].StartsWith("committed ", StringComparison.Ordinal)) return int.Parse(_lines[i].AsSpan(10), CultureInfo.InvariantCulture);
                    }
                }
                return 0;
            }
        }

        /// <summary>Waits for a line starting with <paramref name="prefix"/>; returns the number after it, if any (else 0).</summary>
        public int WaitForLine(string prefix, TimeSpan timeout, string where)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                lock (_lines)
                {
                    foreach (var line in _lines)
                    {
                        if (!line.StartsWith(prefix, StringComparison.Ordinal)) continue;
                        return int.TryParse(line.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
                    }
                    if (DateTime.UtcNow < deadline && !_process.HasExited)
                    {
                        Monitor.Wait(_lines, TimeSpan.FromMilliseconds(50));
                        continue;
                    }
                }
                if (_process.WaitForExit(1000))
                {
                    _process.WaitForExit(); // drain stdout, then look once more
                    lock (_lines)
                    {
                        var found = _lines.Find(l => l.StartsWith(prefix, StringComparison.Ordinal));
                        if (found is not null) return int.TryParse(found.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
                    }
                }
                Assert.Fail($"{where}: the child never printed '{prefix}' (exited: {_process.HasExited}): {Stderr}");
            }
        }

        /// <summary>SIGKILL, then waits until the process is gone and its output is drained.</summary>
        public void Kill()
        {
            try
            {
                _process.Kill(entireProcessTree: false);
            }
            catch (InvalidOperationException)
            {
                // Already exited.
            }
            _process.WaitForExit();
        }

        public bool WaitForExit(TimeSpan timeout)
        {
            if (!_process.WaitForExit(timeout)) return false;
            _process.WaitForExit(); // drains the redirected streams
            return true;
        }

        public void Dispose()
        {
            if (!_process.HasExited)
            {
                try
                {
                    _process.Kill();
                    _process.WaitForExit();
                }
                catch (InvalidOperationException)
                {
                }
            }
            var err = Stderr;
            if (err.Length > 0) _output.WriteLine($"child stderr: {err}");
            _process.Dispose();
        }
    }
}
