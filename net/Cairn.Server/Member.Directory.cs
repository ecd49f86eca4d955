using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: the raft thread (writes); any thread reads. The member directory (names and addresses from the log) and
/// removal: a member that applied its own removal, or hears of it from a peer, stops serving.
/// </summary>
public sealed partial class Member
{
    /// <param name="fromSnapshot">
    /// The configuration is a snapshot's: a member added after the snapshot's index is not in it, yet is no less a
    /// member (the entry adding it follows). Removal is learned from a removal entry applied, or from the peers.
    /// </param>
    private void RefreshDirectory(bool fromSnapshot = false)
    {
        ApplyUnits(UnitsFromState());     // the unit count is a cluster record too
        _directory = MemberDirectory.Build(_options, _sm.ClusterMetadata());
        RefreshAlarms();    // alarms are cluster records too
        var peers = _directory.PeerUrls(Id);
        foreach (var id in peers.Keys.ToList())
        {
            if (!_node.Voters.Contains(id) && !_node.Learners.Contains(id)) peers.Remove(id);
        }
        _peers.SetPeers(peers);
        RefreshMembers();
        if (!fromSnapshot && !_node.Voters.Contains(Id) && !_node.Learners.Contains(Id) && !_removed)
        {
            _removed = true;
            Log("removed from the cluster; stopping");
            _ = Task.Run(() => StopAsync(handOver: false));
        }
    }

    private volatile bool _removed;

    private readonly System.Collections.Concurrent.ConcurrentDictionary<ulong, byte> _removedIds = new(); // members whose removal this member applied

    /// <summary>Whether this member applied the removal of <paramref name="id"/> (its links are then refused, which tells it).</summary>
    internal bool WasRemoved(ulong id) => _removedIds.ContainsKey(id);

    /// <summary>
    /// A peer refused this member's link because it applied this member's removal. The removal entry never reaches a
    /// removed member (the leader stops replicating to it), so this is how it learns; it stops.
    /// </summary>
    internal void OnRemovedByPeer(string message)
    {
        if (_removed) return;
        _removed = true;
        Log($"removed from the cluster ({message}); stopping");
        _ = Task.Run(() => StopAsync(handOver: false));
    }
}
