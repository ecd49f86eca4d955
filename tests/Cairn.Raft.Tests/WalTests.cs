using System.Text;
using Cairn.Crypto;

namespace Cairn.Raft.Tests;

public sealed class WalTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-wal-tests", Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
    }

    private static readonly IKeyProvider Key = new StaticKeyProvider(Enumerable.Range(0, 32).Select(i => (byte)(i * 3)).ToArray());

    public static TheoryData<bool> Encryption => new() { false, true };

    [Fact]
    public void A_commit_index_alone_may_be_saved_without_a_sync_and_reads_back_but_entries_may_not()
    {
        using (var wal = Wal.Open(_dir))
        {
            wal.Save(new HardState(1, 1, 0), [new LogEntry(1, 1, [1]), new LogEntry(2, 1, [2])]);
            wal.Save(new HardState(1, 1, 2), [], sync: false);
            Assert.Throws<ArgumentException>(() => wal.Save(null, [new LogEntry(3, 1, [3])], sync: false));
        }
        using var reopened = Wal.Open(_dir);
        Assert.Equal(new HardState(1, 1, 2), reopened.HardState);   // written (the process did not crash), just not awaited
        Assert.Equal([1UL, 2UL], reopened.Entries.Select(e => e.Index));
    }

    [Fact]
    public void A_stray_wal_file_whose_name_is_not_a_segment_number_is_refused_by_name()
    {
        using (var wal = Wal.Open(_dir)) wal.Save(new HardState(1, 1, 0), [new LogEntry(1, 1, [1])]);
        File.WriteAllBytes(Path.Combine(_dir, "backup.wal"), [1, 2, 3]);
        var e = Assert.Throws<WalCorruptException>(() => Wal.Open(_dir));
        Assert.Equal("backup.wal", e.Segment);
        Assert.Contains("move the file", e.Message, StringComparison.Ordinal);
    }

    private static WalOptions Options(bool encrypted, long segment = 64 * 1024) => new() { SegmentBytes = segment, MaxRecordBytes = 16 * 1024, MasterKey = encrypted ? Key : null };

    private static LogEntry E(ulong index, ulong term, string data = "") => new(index, term, Encoding.UTF8.GetBytes(data.Length > 0 ? data : $"entry {index}@{term}"));

    private static void AssertLog(Wal wal, List<LogEntry> expected)
    {
        Assert.Equal(expected.Count, wal.Entries.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Index, wal.Entries[i].Index);
            Assert.Equal(expected[i].Term, wal.Entries[i].Term);
            Assert.Equal(expected[i].Data.ToArray(), wal.Entries[i].Data.ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Entries_and_hard_state_survive_reopen_and_a_conflicting_suffix_replaces_the_tail(bool encrypted)
    {
        var expected = new List<LogEntry>();
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            var batch = Enumerable.Range(1, 10).Select(i => E((ulong)i, 1)).ToList();
            wal.Save(new HardState(1, 2, 5), batch);
            expected.AddRange(batch);
            // A new leader overwrites from index 8 in term 2.
            var conflict = new[] { E(8, 2), E(9, 2) };
            wal.Save(new HardState(2, 3, 7), conflict);
            expected.RemoveRange(7, 3);
            expected.AddRange(conflict);
        }
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            Assert.Equal(new HardState(2, 3, 7), wal.HardState);
            AssertLog(wal, expected);
            wal.Save(null, [E(10, 2)]);
            expected.Add(E(10, 2));
        }
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            AssertLog(wal, expected);
            Assert.Equal(2, wal.Segments.Count); // after a restart new records go to a new segment
        }
        if (encrypted)
        {
            foreach (var f in Directory.GetFiles(_dir, "*.wal")) Assert.Equal(-1, File.ReadAllBytes(f).AsSpan().IndexOf("entry 3"u8));
            Assert.Throws<WalKeyException>(() => Wal.Open(_dir, new WalOptions { SegmentBytes = 64 * 1024, MaxRecordBytes = 16 * 1024, MasterKey = StaticKeyProvider.CreateRandom() }));
            Assert.Throws<WalKeyException>(() => Wal.Open(_dir, new WalOptions { SegmentBytes = 64 * 1024, MaxRecordBytes = 16 * 1024 }));
        }
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Segments_rotate_and_those_behind_a_snapshot_are_released(bool encrypted)
    {
        var expected = new List<LogEntry>();
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            for (ulong i = 1; i <= 400; i++)
            {
                var e = new LogEntry(i, 1, new byte[700]);
                wal.Save(new HardState(1, 1, i), [e]);
                expected.Add(e);
            }
            Assert.True(wal.Segments.Count >= 4, $"{wal.Segments.Count} segments");
        }
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            AssertLog(wal, expected);
            wal.SaveSnapshot(300, 1);
            var before = wal.Segments.Count;
            Assert.True(wal.ReleaseSegments() > 0);
            Assert.True(wal.Segments.Count < before);
            AssertLog(wal, expected.Skip(300).ToList());
        }
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            Assert.Equal((300UL, 1UL), wal.Snapshot);
            AssertLog(wal, expected.Skip(300).ToList());
            Assert.Equal(400UL, wal.LastIndex);
        }
    }

    /// <summary>A crash in the middle of the last write: cut the file at every byte offset of the last record.</summary>
    [Theory]
    [MemberData(nameof(Encryption))]
    public void A_torn_last_record_is_cut_off_at_every_byte_offset(bool encrypted)
    {
        var source = Path.Combine(_dir, "source");
        using (var wal = Wal.Open(source, Options(encrypted)))
        {
            wal.Save(new HardState(1, 1, 1), [E(1, 1), E(2, 1)]);
            wal.Save(new HardState(1, 1, 2), [E(3, 1, new string('x', 100))]);
        }
        var segment = Directory.GetFiles(source, "*.wal").Single();
        var bytes = File.ReadAllBytes(segment);
        // Walk the frames to find where the data ends (a plaintext checksum ends in zero bytes).
        var end = 128;
        while (BitConverter.ToInt32(bytes, end) is var len && (len != 0 || bytes[end + 4] != 0)) end += 21 + len;
        // The last Save wrote entry 3 then the hard state: the torn region is from the start of entry 3's record.
        var lastStart = end - (21 + 16 + 100) - (21 + 24);
        for (var cut = lastStart; cut < end; cut++)
        {
            var dir = Path.Combine(_dir, $"cut{cut}");
            Directory.CreateDirectory(dir);
            var torn = bytes[..cut];
            var zeroed = (byte[])bytes.Clone();
            zeroed.AsSpan(cut).Clear();
            File.WriteAllBytes(Path.Combine(dir, Path.GetFileName(segment)), cut % 2 == 0 ? torn : zeroed);
            using (var wal = Wal.Open(dir, Options(encrypted)))
            {
                // A cut exactly between records leaves a clean, shorter log; anywhere else a torn record is cut off.
                var boundary = cut == lastStart || cut == lastStart + 21 + 16 + 100;
                Assert.True(boundary == (wal.RecoveryNote is null), $"cut at {cut}: note '{wal.RecoveryNote}'");
                Assert.True(wal.LastIndex is 2 or 3, $"cut at {cut}: last index {wal.LastIndex}");
                Assert.Equal(1UL, wal.HardState.Commit); // the last Save's hard state record is always the torn one
                Assert.Equal(cut >= lastStart + 21 + 16 + 100 ? 3UL : 2UL, wal.LastIndex);
                wal.Save(new HardState(1, 1, 2), [E(wal.LastIndex + 1, 1)]);
            }
            using (var again = Wal.Open(dir, Options(encrypted)))
            {
                Assert.Null(again.RecoveryNote);
            }
        }
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Damage_before_the_tail_refuses_to_open_naming_the_place(bool encrypted)
    {
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            for (ulong i = 1; i <= 20; i++) wal.Save(new HardState(1, 1, i), [E(i, 1)]);
        }
        var segment = Directory.GetFiles(_dir, "*.wal").Single();
        var bytes = File.ReadAllBytes(segment);
        var at = 128 + 200; // inside an early record
        bytes[at] ^= 0x40;
        File.WriteAllBytes(segment, bytes);
        var e = Assert.Throws<WalCorruptException>(() => Wal.Open(_dir, Options(encrypted)));
        Assert.Equal(Path.GetFileName(segment), e.Segment);
        Assert.True(e.Offset > 128 && e.Offset <= at, $"offset {e.Offset}");
        Assert.Contains("TruncateAtDamage", e.Message);
        // The parts, for a caller that names its own remedy (the server's flag), and no C# API in the message.
        Assert.False(string.IsNullOrEmpty(e.Detail));
        Assert.StartsWith($"write-ahead log damaged in {e.Segment} at offset {e.Offset}: {e.Detail}. ", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("WalOptions", e.Message, StringComparison.Ordinal);
        using var truncated = Wal.Open(_dir, Options(encrypted) with { TruncateAtDamage = true });
        Assert.True(truncated.LastIndex < 20);
        Assert.Contains("damage", truncated.RecoveryNote);
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Damage_to_any_byte_of_a_record_with_whole_records_after_it_refuses_to_open(bool encrypted)
    {
        // Found by the nemesis (docs/faults.md): a damaged length field in the middle of the last segment made the
        // record look as long as the rest of the file, and recovery cut it and every record after it as a "torn
        // tail" — records the member had acknowledged, gone without a word.
        var source = Path.Combine(_dir, "source");
        using (var wal = Wal.Open(source, Options(encrypted)))
        {
            for (ulong i = 1; i <= 40; i++) wal.Save(new HardState(1, 1, i), [E(i, 1, new string('v', 30))]);
        }
        var segment = Directory.GetFiles(source, "*.wal").Single();
        var original = File.ReadAllBytes(segment);
        var end = Array.FindLastIndex(original, b => b != 0) + 1;
        var wrong = new List<string>();
        for (var at = end / 2; at < end / 2 + 120; at++)     // every byte of a couple of records from the middle
        {
            foreach (var flip in new byte[] { 0x01, 0x5A, 0xFF })
            {
                var dir = Path.Combine(_dir, $"case-{at}-{flip}");
                Directory.CreateDirectory(dir);
                var bytes = (byte[])original.Clone();
                bytes[at] ^= flip;
                File.WriteAllBytes(Path.Combine(dir, Path.GetFileName(segment)), bytes);
                try
                {
                    using var wal = Wal.Open(dir, Options(encrypted));
                    wrong.Add($"offset {at} ^ 0x{flip:x2}: opened with {wal.LastIndex} of 40 entries ({wal.RecoveryNote})");
                }
                catch (WalCorruptException)
                {
                }
                Directory.Delete(dir, recursive: true);
            }
        }
        Assert.True(wrong.Count == 0, string.Join("\n", wrong.Take(10)));
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Membership_change_entries_keep_their_kind(bool encrypted)
    {
        var change = new LogEntry(2, 1, new ConfigChange(ConfigChangeType.AddLearner, 4).Encode(), EntryKind.Config);
        using (var wal = Wal.Open(_dir, Options(encrypted))) wal.Save(null, [E(1, 1), change, E(3, 1)]);
        using var again = Wal.Open(_dir, Options(encrypted));
        Assert.Equal([EntryKind.Normal, EntryKind.Config, EntryKind.Normal], again.Entries.Select(e => e.Kind));
        Assert.Equal(new ConfigChange(ConfigChangeType.AddLearner, 4), ConfigChange.Decode(again.Entries[1].Data.Span));
    }

    // ---- found by fuzzing (docs/faults.md, "Fuzzing") ----

    private List<string> ThreeSegments(bool encrypted)
    {
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            for (ulong i = 1; i <= 200; i++) wal.Save(new HardState(1, 1, i), [new LogEntry(i, 1, new byte[700])]);
        }
        var files = Directory.GetFiles(_dir, "*.wal").Order(StringComparer.Ordinal).ToList();
        Assert.True(files.Count >= 3, $"{files.Count} segments");
        return files;
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Segments_swapped_under_their_names_are_damage_not_replayed_out_of_order(bool encrypted)
    {
        var files = ThreeSegments(encrypted);
        var first = File.ReadAllBytes(files[0]);
        File.WriteAllBytes(files[0], File.ReadAllBytes(files[1]));
        File.WriteAllBytes(files[1], first);
        var e = Assert.Throws<WalCorruptException>(() => Wal.Open(_dir, Options(encrypted)));
        Assert.Contains("names sequence", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void A_segment_missing_from_the_middle_is_damage(bool encrypted)
    {
        var files = ThreeSegments(encrypted);
        File.Delete(files[1]);
        var e = Assert.Throws<WalCorruptException>(() => Wal.Open(_dir, Options(encrypted)));
        Assert.Contains("missing", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_segment_that_lost_its_tail_before_the_next_one_is_damage()
    {
        var files = ThreeSegments(encrypted: false);
        // Keep the middle segment's header only: its entries are gone, and the next segment's first entry leaves a gap.
        using (var fs = new FileStream(files[1], FileMode.Open, FileAccess.Write)) fs.SetLength(128);
        var e = Assert.Throws<WalCorruptException>(() => Wal.Open(_dir, Options(false)));
        Assert.Contains("entries between are missing", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Truncating_at_a_damaged_header_leaves_a_log_that_opens_again(bool encrypted)
    {
        var files = ThreeSegments(encrypted);
        var bytes = File.ReadAllBytes(files[1]);
        bytes[20] ^= 1;
        File.WriteAllBytes(files[1], bytes);
        ulong last;
        using (var wal = Wal.Open(_dir, Options(encrypted) with { TruncateAtDamage = true }))
        {
            last = wal.LastIndex;
            Assert.True(last > 0);
            wal.Save(null, [new LogEntry(last + 1, 1, [1])]);
        }
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            Assert.Equal(last + 1, wal.LastIndex);
        }
    }

    [Theory]
    [MemberData(nameof(Encryption))]
    public void Every_file_the_log_and_its_snapshots_create_is_private(bool encrypted)
    {
        if (OperatingSystem.IsWindows()) return;
        // A leftover temporary file of an earlier crash, made world-readable: replaced, not reused with its mode.
        Directory.CreateDirectory(_dir);
        var stale = Path.Combine(_dir, "snap.tmp");
        File.WriteAllBytes(stale, [1]);
        File.SetUnixFileMode(stale, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        using (var wal = Wal.Open(_dir, Options(encrypted)))
        {
            for (var i = 1UL; i <= 40; i++) wal.Save(new HardState(1, 1, i - 1), [new LogEntry(i, 1, new byte[4000])]);
            Assert.True(wal.Segments.Count >= 2, "the test wants a rotation");
        }
        SnapshotFile.Write(Path.Combine(_dir, "snap"), new SnapshotMetadata(40, 1, [1], []), [1, 2, 3], encrypted ? Key : null);
        var files = Directory.GetFiles(_dir);
        Assert.True(files.Length >= 3, string.Join(", ", files));
        foreach (var f in files)
        {
            Assert.True(File.GetUnixFileMode(f) == (UnixFileMode.UserRead | UnixFileMode.UserWrite), $"{Path.GetFileName(f)} has mode {File.GetUnixFileMode(f)}");
        }
    }

    [Fact]
    public void Option_and_key_errors_read_without_code_names_a_user_cannot_act_on()
    {
        foreach (var bad in new[] { new WalOptions { SegmentBytes = 1 }, new WalOptions { MaxRecordBytes = 1 } })
        {
            Assert.DoesNotContain("(Parameter", Assert.Throws<ArgumentException>(bad.Validate).Message, StringComparison.Ordinal);
        }
        foreach (var bad in new[] { new RaftOptions { Id = 0, Members = [1] }, new RaftOptions { Id = 1, Members = [1], HeartbeatTicks = 0 } })
        {
            Assert.DoesNotContain("(Parameter", Assert.Throws<ArgumentException>(bad.Validate).Message, StringComparison.Ordinal);
        }
        using (var wal = Wal.Open(_dir, Options(encrypted: true))) wal.Save(new HardState(1, 1, 0), [new LogEntry(1, 1, [1])]);
        var k = Assert.Throws<WalKeyException>(() => Wal.Open(_dir, Options(encrypted: false)));
        Assert.DoesNotContain("WalOptions", k.Message, StringComparison.Ordinal);
    }
}
