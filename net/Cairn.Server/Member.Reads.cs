using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Diagnostics;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Raft;
using Cairn.Storage;

namespace Cairn.Server;

/// <summary>
/// Owner: the raft thread. Linearizable reads: the reads queued since the last round share one ReadIndex round (one
/// heartbeat exchange confirms the leadership), and each is served once the state is applied up to its read index.
/// </summary>
public sealed partial class Member
{
    private readonly List<(ulong Index, List<PendingRead> Reads)> _readBatches = [];  // confirmed read index → reads waiting for apply

    private readonly Dictionary<ulong, List<PendingRead>> _readRounds = [];          // read-index context → reads in that round
    private ulong _readContext;

    private void StartReads()
    {
        if (_reads.IsEmpty) return;
        List<PendingRead>? round = null;
        while (_reads.TryDequeue(out var r))
        {
            if (StaleRefusal() is { } stale)
            {
                r.Fail(ErrorCode.Corrupt, stale);
                continue;
            }
            if (_node.Role != Role.Leader)
            {
                r.Fail(ErrorCode.NoLeader, "this member stopped leading before the read was confirmed; retry");
                continue;
            }
            (round ??= []).Add(r);
        }
        if (round is null) return;
        var context = ++_readContext;
        var ctx = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(ctx, context);
        if (!_node.ReadIndex(ctx))
        {
            foreach (var r in round) r.Fail(ErrorCode.NoLeader, "this member is not the leader; retry");
            return;
        }
        _readRounds[context] = round;
        Interlocked.Increment(ref Stats.ReadRounds);
    }

    private void ServeReads()
    {
        if (_readBatches.Count == 0) return;
        if (StaleRefusal() is { } stale)
        {
            // Apply stopped on a damaged page: these reads would wait for ever.
            foreach (var (_, batch) in _readBatches) foreach (var r in batch) r.Fail(ErrorCode.Corrupt, stale);
            _readBatches.Clear();
            return;
        }
        var applied = _appliedIndex;
        for (var i = 0; i < _readBatches.Count;)
        {
            var (index, reads) = _readBatches[i];
            if (index > applied)
            {
                i++;
                continue;
            }
            foreach (var r in reads) r.Serve(this);
            _readBatches.RemoveAt(i);
        }
    }
}
