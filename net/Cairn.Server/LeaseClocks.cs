using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;

namespace Cairn.Server;

/// <summary>
/// The leader's lease clocks: each lease expires a TTL after its grant or last keep-alive. A new leader restarts every
/// clock with the full TTL (as etcd does), so a change of leader never expires a lease early. The clocks read the
/// member's <see cref="MemberOptions.Time"/>, so a test with a fake clock expires leases by advancing it.
/// </summary>
internal sealed class LeaseClocks(TimeProvider time)
{
    private readonly Dictionary<long, (long Deadline, long Ttl, long RetryAt)> _leases = []; // timestamps of time
    private readonly Lock _lock = new();

    private long Now => time.GetTimestamp();

    private long Seconds(long s) => s * time.TimestampFrequency;

    public void Reset(IReadOnlyList<LeaseInfo> leases)
    {
        lock (_lock)
        {
            _leases.Clear();
            foreach (var l in leases) _leases[l.Id] = (Now + Seconds(l.Ttl), l.Ttl, 0);
        }
    }

    public void Granted(long id, long ttl)
    {
        lock (_lock) _leases[id] = (Now + Seconds(ttl), ttl, 0);
    }

    /// <summary>Renews a lease; its TTL, or -1 when it does not exist.</summary>
    public long KeepAlive(long id, KvStateMachine sm)
    {
        var info = sm.Lease(id, withKeys: false);
        lock (_lock)
        {
            if (info is null)
            {
                _leases.Remove(id);
                return -1;
            }
            _leases[id] = (Now + Seconds(info.Ttl), info.Ttl, 0);
            return info.Ttl;
        }
    }

    /// <summary>Seconds left, or -1 when unknown.</summary>
    public long Remaining(long id)
    {
        lock (_lock)
        {
            if (!_leases.TryGetValue(id, out var l)) return -1;
            return Math.Max(0, (long)Math.Ceiling((l.Deadline - Now) / (double)time.TimestampFrequency));
        }
    }

    /// <summary>Leases past their deadline that are not being revoked already (a revoke is retried after a second).</summary>
    public List<long> Expired(KvStateMachine sm)
    {
        var now = Now;
        lock (_lock)
        {
            if (_leases.Count == 0) return NoLeases;
        }
        var list = new List<long>();
        lock (_lock)
        {
            foreach (var (id, l) in _leases)
            {
                if (l.Deadline <= now && l.RetryAt <= now) list.Add(id);
            }
        }
        if (list.Count == 0) return list;
        var live = new HashSet<long>();
        foreach (var l in sm.Leases()) live.Add(l.Id);
        lock (_lock)
        {
            foreach (var id in list.Where(id => !live.Contains(id)).ToList())
            {
                _leases.Remove(id);
                list.Remove(id);
            }
        }
        return list;
    }

    private static readonly List<long> NoLeases = [];

    public void Revoking(long id)
    {
        lock (_lock)
        {
            if (_leases.TryGetValue(id, out var l)) _leases[id] = l with { RetryAt = Now + Seconds(1) };
        }
    }
}
