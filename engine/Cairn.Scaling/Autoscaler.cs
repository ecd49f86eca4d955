using System.Globalization;

namespace Cairn.Scaling;

/// <summary>
/// The loop: every <see cref="ScalingOptions.Interval"/> (a <see cref="TimeProvider"/> timer, so tests run in fake
/// time) it samples the local <see cref="MemoryAccountant"/>, decides with the <see cref="ScalingPolicy"/> on every
/// member that has reported recently, takes the worst member's decision, invokes the scale-up callback when that
/// decision adds units, and records it in a bounded event log.
/// <para>
/// Worst member: the policy decides for each member on its own samples; the decision asking for the most units wins,
/// then a capped one, then one where a rule fired, then the highest utilization. So a member that is rising fast
/// beats one that is fuller but steady.
/// </para>
/// <para>
/// The callback receives the whole decision and should set the count to <see cref="ScalingDecision.NewUnits"/> (in
/// the server, the leader proposes it through Raft). It must be idempotent: until the new count is in force (read
/// through the unit-count function) the next check may ask for the same count again.
/// </para>
/// <para>
/// Event log: every scale-up, failed apply, failed check and manual request is recorded. A check that changes
/// nothing is recorded when its outcome (no change, or capped, and which rules fired) differs from the last such
/// entry, and otherwise at most once per <see cref="ScalingOptions.NoChangeLogInterval"/> (an hour), so the log shows
/// that checks run without one entry a minute.
/// </para>
/// </summary>
public sealed class Autoscaler : IDisposable
{
    private readonly MemoryAccountant _accountant;
    private readonly ScalingPolicy _policy;
    private readonly TimeProvider _time;
    private readonly Func<int> _currentUnits;
    private readonly Func<ScalingDecision, Task> _scaleUp;
    private readonly SemaphoreSlim _checking = new(1, 1);  // one check at a time; a tick that finds one running skips
    private readonly Lock _gate = new();                   // guards everything below
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);
    private readonly Queue<ScalingEvent> _events = new();  // Count <= EventLogCapacity
    private (ScalingEventKind Kind, ScalingTriggers Triggers)? _quietKey;  // the last no-change outcome logged
    private DateTimeOffset _quietLoggedAt;
    private ScalingDecision? _last;
    private ITimer? _timer;
    private long _checks;
    private long _skipped;
    private long _scaleUps;
    private bool _disposed;

    private sealed class Member(DateTimeOffset heard)
    {
        public readonly Queue<MemorySample> Samples = new();  // oldest first, Count <= TrendWindow, times increasing
        public DateTimeOffset Heard = heard;                  // local time of the last report
    }

    /// <summary>An autoscaler; call <see cref="Start"/> to begin the checks.</summary>
    /// <param name="accountant">This member's accountant, sampled at each check.</param>
    /// <param name="policy">The policy.</param>
    /// <param name="time">The clock and timer.</param>
    /// <param name="currentUnits">The unit count in force (in the server, the applied one).</param>
    /// <param name="scaleUp">Applies or proposes a scale-up decision.</param>
    /// <param name="localMember">This member's name among the reporters.</param>
    public Autoscaler(
        MemoryAccountant accountant, ScalingPolicy policy, TimeProvider time, Func<int> currentUnits,
        Func<ScalingDecision, Task> scaleUp, string localMember = "local")
    {
        ArgumentNullException.ThrowIfNull(accountant);
        ArgumentNullException.ThrowIfNull(policy);
        ArgumentNullException.ThrowIfNull(time);
        ArgumentNullException.ThrowIfNull(currentUnits);
        ArgumentNullException.ThrowIfNull(scaleUp);
        ArgumentException.ThrowIfNullOrWhiteSpace(localMember);
        _accountant = accountant;
        _policy = policy;
        _time = time;
        _currentUnits = currentUnits;
        _scaleUp = scaleUp;
        LocalMember = localMember;
    }

    /// <summary>This member's name.</summary>
    public string LocalMember { get; }

    /// <summary>The policy.</summary>
    public ScalingPolicy Policy => _policy;

    /// <summary>The event log, oldest first (at most <see cref="ScalingOptions.EventLogCapacity"/> entries).</summary>
    public IReadOnlyList<ScalingEvent> Events { get { lock (_gate) return [.. _events]; } }

    /// <summary>The last check's decision, or null before the first.</summary>
    public ScalingDecision? LastDecision { get { lock (_gate) return _last; } }

    /// <summary>Every known member's latest sample, stale ones included until they are dropped.</summary>
    public IReadOnlyDictionary<string, MemorySample> LatestSamples
    {
        get
        {
            lock (_gate)
            {
                return _members.Where(m => m.Value.Samples.Count > 0).ToDictionary(m => m.Key, m => m.Value.Samples.Last(), StringComparer.Ordinal);
            }
        }
    }

    /// <summary>Checks run so far.</summary>
    public long Checks => Interlocked.Read(ref _checks);

    /// <summary>Timer ticks skipped because the previous check (its callback) was still running.</summary>
    public long SkippedTicks => Interlocked.Read(ref _skipped);

    /// <summary>Scale-ups decided (the callback invoked) so far.</summary>
    public long ScaleUps => Interlocked.Read(ref _scaleUps);

    /// <summary>Starts the timer: the first check runs one interval from now. Idempotent.</summary>
    public void Start()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var interval = _policy.Options.Interval;
            _timer ??= _time.CreateTimer(static state => ((Autoscaler)state!).Tick(), this, interval, interval);
        }
    }

    /// <summary>Stops the timer. A check already running finishes.</summary>
    public void Dispose()
    {
        ITimer? timer;
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            timer = _timer;
            _timer = null;
        }
        timer?.Dispose();
    }

    /// <summary>
    /// Takes a sample <paramref name="member"/> sent (in a cluster every member reports to the leader). Kept are its
    /// last <see cref="ScalingOptions.TrendWindow"/> samples; one not newer than the last kept is ignored.
    /// </summary>
    public void Report(string member, MemorySample sample)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(member);
        ArgumentNullException.ThrowIfNull(sample);
        var now = _time.GetUtcNow();
        lock (_gate)
        {
            if (!_members.TryGetValue(member, out var m)) _members[member] = m = new Member(now);
            m.Heard = now;
            if (m.Samples.Count > 0 && sample.Time <= m.Samples.Last().Time) return;
            m.Samples.Enqueue(sample);
            while (m.Samples.Count > _policy.Options.TrendWindow) m.Samples.Dequeue();
        }
    }

    /// <summary>Forgets <paramref name="member"/> (removed from the cluster); false when it was not known.</summary>
    public bool Forget(string member)
    {
        lock (_gate) return _members.Remove(member);
    }

    /// <summary>
    /// Runs one check now (waiting for one in progress): samples, decides on the worst member, invokes the callback
    /// for a scale-up, records the decision.
    /// </summary>
    public async Task<ScalingDecision> CheckNowAsync(CancellationToken cancellationToken = default)
    {
        await _checking.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await CheckAsync().ConfigureAwait(false);
        }
        finally
        {
            _checking.Release();
        }
    }

    /// <summary>
    /// Whether an operator may set <paramref name="requestedUnits"/>, judged on the worst figures among the members
    /// heard from recently (the most RAM and the most storage in use, each from whichever member has it), and
    /// recorded in the event log.
    /// </summary>
    public ManualScalingCheck CheckManual(int requestedUnits)
    {
        var now = _time.GetUtcNow();
        var units = _currentUnits();
        MemorySample? worst = null;
        string ramMember = "", storageMember = "";
        lock (_gate)
        {
            foreach (var (name, m) in Fresh(now))
            {
                var s = m.Samples.Last();
                if (worst is null || s.RamBytes > worst.RamBytes) ramMember = name;
                if (worst is null || s.StorageBytes > worst.StorageBytes) storageMember = name;
                worst = worst is null ? s : new MemorySample(now, Math.Max(worst.RamBytes, s.RamBytes), Math.Max(worst.StorageBytes, s.StorageBytes));
            }
        }
        var check = _policy.CheckManual(requestedUnits, worst, units);
        var summary = worst is null
            ? "no samples"
            : $"worst figures: RAM {ByteSize.Format(worst.RamBytes)} ({ramMember}), storage {ByteSize.Format(worst.StorageBytes)} ({storageMember})";
        Record(new ScalingEvent(now, check.Allowed ? ScalingEventKind.ManualAllowed : ScalingEventKind.ManualRefused,
            units, check.Allowed ? requestedUnits : units, "", check.Reason, summary));
        return check;
    }

    private void Tick()
    {
        if (!_checking.Wait(0))
        {
            Interlocked.Increment(ref _skipped);
            return;
        }
        _ = TickAsync();
    }

    private async Task TickAsync()
    {
        try
        {
            await CheckAsync().ConfigureAwait(false);
        }
#pragma warning disable CA1031 // a timer tick has no caller to throw to: the failure goes to the event log
        catch (Exception e)
#pragma warning restore CA1031
        {
            Record(new ScalingEvent(_time.GetUtcNow(), ScalingEventKind.CheckFailed, 0, 0, LocalMember, $"check failed: {e.GetType().Name}: {e.Message}", ""));
        }
        finally
        {
            _checking.Release();
        }
    }

    private async Task<ScalingDecision> CheckAsync()
    {
        Report(LocalMember, _accountant.Sample());
        var units = _currentUnits();
        var now = _time.GetUtcNow();
        var decision = Decide(units, now);
        Interlocked.Increment(ref _checks);
        var summary = MemorySample.Summarize(decision.Samples);
        var member = decision.Member ?? LocalMember;
        if (!decision.ScalesUp)
        {
            var kind = decision.Capped ? ScalingEventKind.Capped : ScalingEventKind.NoChange;
            lock (_gate)
            {
                _last = decision;
                if (_quietKey != (kind, decision.Triggers) || now - _quietLoggedAt >= _policy.Options.NoChangeLogInterval)
                {
                    _quietKey = (kind, decision.Triggers);
                    _quietLoggedAt = now;
                    RecordLocked(new ScalingEvent(now, kind, units, units, member, decision.Reason, summary));
                }
            }
            return decision;
        }

        lock (_gate)
        {
            _last = decision;
            _quietKey = null;  // the first quiet check after a scale-up shows where it landed
            RecordLocked(new ScalingEvent(now, ScalingEventKind.ScaleUp, units, decision.NewUnits!.Value, member, decision.Reason, summary));
        }
        Interlocked.Increment(ref _scaleUps);
        try
        {
            await _scaleUp(decision).ConfigureAwait(false);
        }
#pragma warning disable CA1031 // whatever the callback throws, the next check decides again; the log says why
        catch (Exception e)
#pragma warning restore CA1031
        {
            Record(new ScalingEvent(_time.GetUtcNow(), ScalingEventKind.ApplyFailed, units, units, member,
                $"applying {decision.NewUnits} units failed: {e.GetType().Name}: {e.Message}", summary));
        }
        return decision;
    }

    private ScalingDecision Decide(int units, DateTimeOffset now)
    {
        List<(string Name, MemorySample[] Samples)> members;
        lock (_gate)
        {
            members = [.. Fresh(now).Select(m => (m.Key, m.Value.Samples.ToArray()))];
        }
        ScalingDecision? worst = null;
        foreach (var (name, samples) in members)
        {
            var d = _policy.Decide(samples, units);
            d = d with
            {
                Member = name,
                Reason = members.Count > 1 ? $"member {name}: {d.Reason}" : d.Reason,
            };
            if (worst is null || Worse(d, worst)) worst = d;
        }
        return worst ?? _policy.Decide([], units);
    }

    private static bool Worse(ScalingDecision a, ScalingDecision b)
    {
        if ((a.NewUnits ?? 0) != (b.NewUnits ?? 0)) return (a.NewUnits ?? 0) > (b.NewUnits ?? 0);
        if (a.Capped != b.Capped) return a.Capped;
        if ((a.Triggers != ScalingTriggers.None) != (b.Triggers != ScalingTriggers.None)) return a.Triggers != ScalingTriggers.None;
        return a.Utilization > b.Utilization;
    }

    // Members heard from within StaleAfterIntervals; silent ones are dropped (the local member is sampled every check).
    private List<KeyValuePair<string, Member>> Fresh(DateTimeOffset now)
    {
        var limit = _policy.Options.Interval * _policy.Options.StaleAfterIntervals;
        List<string>? stale = null;
        var fresh = new List<KeyValuePair<string, Member>>(_members.Count);
        foreach (var m in _members)
        {
            if (now - m.Value.Heard > limit && m.Key != LocalMember) (stale ??= []).Add(m.Key);
            else if (m.Value.Samples.Count > 0) fresh.Add(m);
        }
        if (stale is not null) foreach (var name in stale) _members.Remove(name);
        fresh.Sort((x, y) => string.CompareOrdinal(x.Key, y.Key));  // a fixed order, so ties resolve the same way
        return fresh;
    }

    private void Record(ScalingEvent e)
    {
        lock (_gate) RecordLocked(e);
    }

    private void RecordLocked(ScalingEvent e)
    {
        _events.Enqueue(e);
        while (_events.Count > _policy.Options.EventLogCapacity) _events.Dequeue();
    }

    /// <inheritdoc/>
    public override string ToString() =>
        string.Create(CultureInfo.InvariantCulture, $"Autoscaler({LocalMember}, {Checks} checks, {ScaleUps} scale-ups)");
}
