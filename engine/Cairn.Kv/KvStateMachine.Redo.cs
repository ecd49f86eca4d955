using Cairn.Storage;

namespace Cairn.Kv;

/// <summary>
/// The batches applied while an online defragmentation copies the store (KvStateMachine.Files.cs): recorded as they
/// apply, and applied to the copy in rounds. Commands are deterministic, so the copy ends in the store's state.
/// </summary>
public sealed partial class KvStateMachine
{
    private readonly object _defragment = new();   // one defragmentation at a time
    private RedoLog? _redo;                         // under _apply: where applied batches are recorded, while a defragmentation runs

    /// <summary>Test hook: runs when a defragmentation has copied the store and is about to catch up (no lock held).</summary>
    internal Action? DefragmentCopied { get; set; }

    /// <summary>Records a batch that applied (its successful commands; refused ones and no-ops only advance the index).</summary>
    private void Record<TEntries>(TEntries entries, List<Pending> pending, Dictionary<ulong, KvException>? refused) where TEntries : struct, IEntries
    {
        if (_redo is not { } redo) return;
        foreach (var p in pending)
        {
            redo.Add(p.Index, Retained(p, refused) ? entries.Command(p.Entry).ToArray() : null, p.PlainPut);
        }
    }

    private sealed class DefragmentAbandonedException : Exception;

    private sealed class RedoLog
    {
        private readonly Lock _lock = new();
        private List<(ulong Index, byte[]? Command, bool Plain)> _entries = [];

        /// <summary>Set when a snapshot replaced the store: the copy no longer follows it.</summary>
        public volatile bool Abandoned;

        public int Pending
        {
            get { lock (_lock) return _entries.Count; }
        }

        public void Add(ulong index, byte[]? command, bool plain)
        {
            lock (_lock) _entries.Add((index, command, plain));
        }

        /// <summary>Applies what was recorded so far to <paramref name="db"/>, in one transaction.</summary>
        public void ApplyTo(Database db, KvOptions options)
        {
            List<(ulong Index, byte[]? Command, bool Plain)> taken;
            lock (_lock)
            {
                taken = _entries;
                _entries = [];
            }
            if (taken.Count == 0) return;
            using var w = db.BeginWrite();
            var m = new Mvcc(w, options) { EventsWanted = false };
            foreach (var (index, command, plain) in taken)
            {
                if (index <= m.Applied) continue;
                if (command is not null)
                {
                    try
                    {
                        ApplyAgain(m, command, plain);
                    }
                    catch (Exception e) when (e is KvException or ArgumentException or InvalidDataException)
                    {
                        throw new InvalidOperationException($"entry {index} applied to the store but not to its defragmented copy: {e.Message}", e);
                    }
                }
                m.Finish(index);
            }
            w.Commit(false);
        }
    }
}
