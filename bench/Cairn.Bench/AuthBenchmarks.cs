using System.Text;
using BenchmarkDotNet.Attributes;
using Cairn.Kv;
using Cairn.Storage;

namespace Cairn.Bench;

/// <summary>
/// The per-request permission check (issue 10's goal: under 50 ns, 0 B). A user holds a role with <see cref="Permissions"/>
/// grants (one prefix per tenant); the check is on a key inside the last tenant's prefix and on the whole prefix as a
/// range. The baseline is what a simple implementation does: scan the role's grants for one that covers the request.
/// </summary>
[MemoryDiagnoser]
public class AuthBenchmarks
{
    [Params(1, 100)]
    public int Permissions { get; set; }

    private string _dir = "";
    private UserAccess _access = null!;
    private Permission[] _grants = [];
    private byte[] _key = [];
    private byte[] _prefix = [];
    private byte[] _prefixEnd = [];

    [GlobalSetup]
    public void Setup()
    {
        _dir = Path.Combine(Path.GetTempPath(), "cairn-bench-auth-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "db"), new KvOptions { Storage = new StorageOptions { PageSize = 16384, SyncOnCommit = false } });
        ulong index = 0;
        void Apply(AuthCommand c) => sm.Apply(++index, new KvCommand { Auth = c }.Encode());
        Apply(new AuthCommand(AuthOp.UserAdd) { Name = "u" });
        Apply(new AuthCommand(AuthOp.RoleAdd) { Name = "r" });
        Apply(new AuthCommand(AuthOp.UserGrantRole) { Name = "u", Role = "r" });
        var grants = new List<Permission>();
        for (var i = 0; i < Permissions; i++)
        {
            var prefix = Encoding.UTF8.GetBytes($"tenant/{i:D4}/");
            var p = new Permission(PermissionType.ReadWrite, prefix, RangeRequest.Prefix(prefix));
            grants.Add(p);
            Apply(new AuthCommand(AuthOp.RoleGrantPermission) { Name = "r", Permission = p });
        }
        _grants = [.. grants];
        _access = sm.Auth.Access("u")!;
        _prefix = grants[^1].Key;
        _prefixEnd = grants[^1].RangeEnd;
        _key = [.. _prefix, .. "config/feature-flags"u8];
    }

    [GlobalCleanup]
    public void Cleanup() => Directory.Delete(_dir, recursive: true);

    [Benchmark(Baseline = true)]
    public bool ScanKey()
    {
        foreach (var g in _grants)
        {
            if ((g.Type & PermissionType.Write) != 0 && g.Key.AsSpan().SequenceCompareTo(_key) <= 0 && g.RangeEnd.AsSpan().SequenceCompareTo(_key) > 0) return true;
        }
        return false;
    }

    [Benchmark]
    public bool PermitsKey() => _access.Permits(PermissionType.Write, _key, []);

    [Benchmark]
    public bool PermitsPrefix() => _access.Permits(PermissionType.Read, _prefix, _prefixEnd);
}
