namespace Cairn.Faults.Nemesis;

/// <summary>
/// Which member may reach which over the peer links: a rule per (dialer, listener) slot. A peer link carries messages
/// one way only (each member dials each peer and sends on that stream), so blocking the link a dials to b drops exactly
/// the messages from a to b. Clients are never blocked: the proxies sit between members only.
/// </summary>
internal sealed class Network
{
    private readonly Lock _lock = new();
    private readonly bool[,] _blocked;       // [from, to]; guarded by _lock
    private readonly List<PeerProxy> _proxies = [];

    public Network(int slots) => _blocked = new bool[slots, slots];

    public int Slots => _blocked.GetLength(0);

    public void Attach(PeerProxy proxy)
    {
        lock (_lock) _proxies.Add(proxy);
    }

    public bool Allowed(int from, int to)
    {
        lock (_lock) return !_blocked[from, to];
    }

    /// <summary>Cuts both directions between every member of <paramref name="a"/> and every member of <paramref name="b"/>.</summary>
    public void Cut(IEnumerable<int> a, IEnumerable<int> b)
    {
        var bs = b.ToList();
        lock (_lock)
        {
            foreach (var x in a)
                foreach (var y in bs)
                    if (x != y) _blocked[x, y] = _blocked[y, x] = true;
        }
        Enforce();
    }

    public void Heal()
    {
        lock (_lock) Array.Clear(_blocked);
    }

    public bool Partitioned
    {
        get
        {
            lock (_lock) foreach (var b in _blocked) if (b) return true;
            return false;
        }
    }

    /// <summary>Closes every open link the rules now forbid (new ones are refused as they come).</summary>
    private void Enforce()
    {
        List<PeerProxy> proxies;
        lock (_lock) proxies = [.. _proxies];
        foreach (var p in proxies) p.Enforce();
    }
}
