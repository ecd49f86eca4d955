using System.Buffers.Binary;
using System.Text.Json;
using Cairn.Kv;
using Cairn.Protocol;
using Cairn.Scaling;

namespace Cairn.Server;

/// <summary>
/// Owner: the autoscaler's timer (measuring, deciding); the raft thread applies the count.
/// The autoscaler in a member (docs/scaling.md). Every member measures what its allocators hold; followers report
/// their samples to the leader once per interval; the leader decides on the worst member and proposes the new unit
/// count through the log, so every member applies the same count at the same index. Applying a count sets the
/// storage quota (4 × RAM, enforced as NOSPACE where writes are proposed), the page-cache budget and, when the process
/// runs under a heap hard limit, the GC's limit.
/// </summary>
public sealed partial class Member
{
    /// <summary>The cluster-metadata key holding the unit count (absent: the configured initial count).</summary>
    internal static readonly byte[] UnitsKey = "scaling/units"u8.ToArray();

    private MemoryAccountant? _accountant;
    private Autoscaler? _autoscaler;
    private volatile int _units;
    private long _quotaBytes;
    private readonly List<string> _scalingLog = [];

    /// <summary>The unit count in force (0 when autoscaling is off).</summary>
    public int Units => _units;

    /// <summary>The storage quota in force: from the units, or --quota-bytes when autoscaling is off.</summary>
    public long QuotaBytes => Interlocked.Read(ref _quotaBytes);

    /// <summary>The autoscaler (null when off); exposed for status and tests.</summary>
    internal Autoscaler? Autoscaler => _autoscaler;

    internal MemoryAccountant? Accountant => _accountant;

    private void StartScaling()
    {
        Interlocked.Exchange(ref _quotaBytes, _options.QuotaBytes);
        if (_options.Scaling is not { } scaling) return;
        var accountant = new MemoryAccountant(_options.Time);
        if (_options.MeasureProcessMemory)
        {
            accountant.Add(new ManagedHeapSource());
            accountant.Add(new MappedFileResidentSource(_sm.Storage.Path, "mapped-resident"));
        }
        accountant.Add("page-cache", SourceKind.Managed, () => _sm.Storage.PageCacheBytes);
        // The Raft log's entries live in slabs its arena keeps for reuse between compactions.
        accountant.Add("raft-log", SourceKind.Managed, () => _node.LogBytes);
        accountant.Add("page-buffers", SourceKind.Managed, () => _sm.Storage.PageBufferBytes);
        // Each watcher holds a bounded queue of responses; estimated at its capacity of small responses.
        accountant.Add("watch-buffers", SourceKind.Managed, () => (long)_sm.Watches.Count * _sm.Watches.QueueCapacity * 256);
        foreach (var source in _options.MemorySources) accountant.Add(source);
        // Storage in use is what the quota measures (pages in use in the database); the log's segments are
        // preallocated and recycled, and are part of what the 4:1 ratio provisions for.
        accountant.Add("database", SourceKind.Storage, () => _sm.Storage.DataSize);
        _accountant = accountant;
        ApplyUnits(UnitsFromState(), log: false);
        var time = _options.Time;
        _autoscaler = new Autoscaler(accountant, new ScalingPolicy(scaling), time, () => _units, ScaleUpAsync, Name);
        _autoscaler.Start();
        _reportTimer = time.CreateTimer(_ => ReportToLeader(), null, scaling.Interval, scaling.Interval);
    }

    private ITimer? _reportTimer;

    private void StopScaling()
    {
        _reportTimer?.Dispose();
        _autoscaler?.Dispose();
    }

    private int UnitsFromState()
    {
        foreach (var (key, value) in _sm.ClusterMetadata())
        {
            if (key.AsSpan().SequenceEqual(UnitsKey) && value.Length == 4) return BinaryPrimitives.ReadInt32LittleEndian(value);
        }
        return _options.Scaling?.InitialUnits ?? 0;
    }

    /// <summary>Applies the unit count the log holds (called after apply on every member, and at start).</summary>
    private void ApplyUnits(int units, bool log = true)
    {
        if (_options.Scaling is not { } scaling || units == _units) return;
        var before = _units;
        var targets = ScalingTargets.For(units, scaling);
        _units = units;
        Interlocked.Exchange(ref _quotaBytes, targets.StorageQuotaBytes);
        _sm.Storage.PageCacheBudget = targets.PageCacheBytes;
        var gc = ScalingTargets.ApplyGcLimit(targets);
        var line = $"units {before} → {units}: RAM {ByteSize.Format(targets.RamBytes)}, storage quota {ByteSize.Format(targets.StorageQuotaBytes)}, page cache {ByteSize.Format(targets.PageCacheBytes)}; {gc.Description}";
        lock (_scalingLog)
        {
            _scalingLog.Add($"{_options.Time.GetUtcNow():O} {line}");
            if (_scalingLog.Count > 100) _scalingLog.RemoveAt(0);
        }
        Interlocked.Increment(ref Stats.ScaleEvents);
        if (log) Log(line);
    }

    /// <summary>The autoscaler asks for more units: the leader proposes the count (set, not add: repeating it is harmless).</summary>
    private async Task ScaleUpAsync(ScalingDecision decision)
    {
        if (decision.NewUnits is not { } units || !IsLeader) return;
        Log($"autoscaler: {decision.Reason}");
        await ProposeUnitsAsync(units).ConfigureAwait(false);
    }

    private async Task<bool> ProposeUnitsAsync(int units)
    {
        var value = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(value, units);
        var waiter = new TaskWaiter();
        var data = Envelope(new KvCommand { Cluster = (UnitsKey, value) }.Encode(), out var seq);
        if (!TryPropose(new Proposal(data, waiter) { Seq = seq })) return false;
        var result = await waiter.Done.Task.ConfigureAwait(false);
        return result is { Error: null };
    }

    /// <summary>Followers send their latest sample to the leader once per interval (through the forwarding path).</summary>
    private void ReportToLeader()
    {
        if (_accountant is null || _autoscaler is null) return;
        var sample = _accountant.Sample();
        if (IsLeader)
        {
            _autoscaler.Report(Name, sample);
            return;
        }
        using var w = new FrameWriter(512);
        w.BeginFrame(MessageType.ScalingReport, FrameFlags.None, 0);
        w.String(Name);
        w.I64(sample.Time.ToUnixTimeMilliseconds());
        w.I64(sample.RamBytes);
        w.I64(sample.StorageBytes);
        w.EndFrame();
        Frame.TryReadHeader(w.WrittenSpan, out var h);
        _router.Forward(new SelfResponder(this), h, w.WrittenSpan[Frame.HeaderSize..]);
    }

    /// <summary>The leader takes a follower's sample.</summary>
    internal void OnScalingReport(Responder r, ulong id, ref PayloadReader reader)
    {
        var name = reader.String();
        var time = DateTimeOffset.FromUnixTimeMilliseconds(reader.I64());
        var ram = reader.I64();
        var storage = reader.I64();
        reader.End();
        _autoscaler?.Report(name, new MemorySample(time, ram, storage));
        WriteHeaderOnly(r, MessageType.ScalingReport, id);
    }

    /// <summary>`cairn scale`: units, RAM in use by source against provisioned RAM, storage against quota, last decisions.</summary>
    internal string ScalingStatusJson()
    {
        var sample = _accountant?.Sample();
        var scaling = _options.Scaling;
        var targets = scaling is null ? null : ScalingTargets.For(Math.Max(1, _units), scaling);
        List<string> log;
        lock (_scalingLog) log = [.. _scalingLog];
        var doc = new Dictionary<string, object?>
        {
            ["member"] = Name,
            ["enabled"] = scaling is not null,
            ["units"] = _units,
            ["maxUnits"] = scaling?.MaxUnits,
            ["unitRamBytes"] = scaling?.UnitRamBytes,
            ["ramProvisionedBytes"] = targets?.RamBytes,
            ["ramInUseBytes"] = sample?.RamBytes,
            ["storageQuotaBytes"] = QuotaBytes,
            ["storageInUseBytes"] = sample?.StorageBytes ?? new FileInfo(_sm.Storage.Path).Length,
            ["sources"] = sample?.Figures.Select(f => new Dictionary<string, object?> { ["name"] = f.Name, ["kind"] = f.Kind.ToString(), ["bytes"] = f.Bytes, ["error"] = f.Error }).ToList(),
            ["members"] = _autoscaler?.LatestSamples.ToDictionary(kv => kv.Key, kv => new Dictionary<string, long> { ["ramInUseBytes"] = kv.Value.RamBytes, ["storageInUseBytes"] = kv.Value.StorageBytes }),
            ["lastDecision"] = _autoscaler?.LastDecision?.Reason,
            ["events"] = _autoscaler?.Events.TakeLast(20).Select(e => $"{e.Time:O} {e.Kind} {e.UnitsBefore}→{e.UnitsAfter} ({e.Member}): {e.Reason}").ToList(),
            ["applied"] = log,
        };
        return JsonSerializer.Serialize(doc, JsonOptions);
    }

    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    /// <summary>`cairn scale --units N`: checked against the data and memory in use, then proposed.</summary>
    internal void ScaleSet(Responder r, ulong id, ref PayloadReader reader)
    {
        var units = (int)reader.U32();
        reader.End();
        if (_autoscaler is null) throw new ProtocolException(ErrorCode.InvalidArgument, "autoscaling is off on this cluster (it was started with --quota-bytes); restart the members without it to use units");
        var check = _autoscaler.CheckManual(units);
        if (!check.Allowed) throw new ProtocolException(ErrorCode.InvalidArgument, check.Reason);
        Log($"manual scaling to {units} units: {check.Reason}");
        _ = CompleteScaleSetAsync(r, id, units);
    }

    private async Task CompleteScaleSetAsync(Responder r, ulong id, int units)
    {
        if (!await ProposeUnitsAsync(units).ConfigureAwait(false))
        {
            r.Error(MessageType.ScaleSet, id, ErrorCode.Timeout, "the new unit count was not applied in time; check `cairn scale`");
            return;
        }
        r.Answer(MessageType.ScaleSet, id, Header(), (uint)_units, static (w, units) => w.U32(units));
    }
}
