using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Cairn.Kv;
using Cairn.Server;

namespace Cairn.Cli;

/// <summary>
/// `cairn snapshot status FILE` and `cairn snapshot restore FILE ...`, as etcdctl's: what a saved snapshot holds, and a
/// new member's data directory made from one (docs/operations.md, "Restore a whole cluster").
/// </summary>
internal static class Snapshots
{
    /// <summary>status and restore.</summary>
    public static IEnumerable<Command> Commands(CliIo io)
    {
        var status = new Command("status", "Check a saved snapshot and print its hash, revision, total keys and size.");
        var statusFile = new Argument<string>("FILE");
        var output = new Option<string?>("--write-out", "-w") { Description = "Output format: simple, json or table.", HelpName = "FORMAT" };
        status.Arguments.Add(statusFile);
        status.Options.Add(output);
        status.SetAction(p => Status(p.GetValue(statusFile)!, p.GetValue(output) ?? "simple", io));
        yield return status;

        var restore = new Command("restore", """
            Make a new member's data directory from a saved snapshot, for a new cluster: run it once per member (same FILE,
            same --initial-cluster and --initial-cluster-token, each member's own --name and --data-dir), then start each
            with `cairn serve` and the same flags. Every key, revision, lease and user is kept.
            """);
        var file = new Argument<string>("FILE");
        restore.Arguments.Add(file);
        foreach (var (name, help, value) in new[]
        {
            ("--data-dir", "The new member's data directory (must not hold a member yet; default ./NAME.cairn).", "DIR"),
            ("--name", "The new member's name (default 'default').", "NAME"),
            ("--initial-cluster", "Every member of the new cluster (default: this member alone on 127.0.0.1:9380).", "NAME=HOST:PORT,..."),
            ("--initial-cluster-token", "The new cluster's token (default cairn-cluster).", "TOKEN"),
            ("--key-file", "The master key to seal the new member's data with (default ~/.cairn/master.key).", "FILE"),
        })
        {
            restore.Options.Add(new Option<string?>(name) { Description = help, HelpName = value });
        }
        restore.Options.Add(new Option<bool>("--plain") { Description = "Store the new member's data unencrypted." });
        restore.Options.Add(new Option<bool>("--allow-insecure-key-file") { Description = "Accept a --key-file that group or others may read." });
        restore.SetAction(p => Restore(p.GetValue(file)!, new Flags(p), io));
        yield return restore;
    }

    private static int Status(string path, string format, CliIo io)
    {
        if (!File.Exists(path)) throw new UsageException($"no snapshot file at {path}");
        if (format is not ("simple" or "json" or "table")) throw new UsageException($"-w '{format}' is not simple, json or table");
        SnapshotSummary s;
        using (var input = MemberRestore.OpenDump(path))
        {
            try
            {
                s = KvStateMachine.InspectSnapshot(input);
            }
            catch (InvalidDataException e)
            {
                throw new IOException($"{path}: {e.Message}", e);
            }
        }
        var size = new FileInfo(path).Length;
        var hash = s.Hash.ToString("x16", CultureInfo.InvariantCulture);
        switch (format)
        {
            case "json":
                using (var buffer = new MemoryStream())
                {
                    using (var w = new Utf8JsonWriter(buffer))
                    {
                        w.WriteStartObject();
                        w.WriteString("hash", hash);
                        w.WriteNumber("revision", s.Revision);
                        w.WriteNumber("totalKey", s.Records);
                        w.WriteNumber("totalSize", size);
                        w.WriteNumber("keys", s.Keys);
                        w.WriteNumber("appliedIndex", s.AppliedIndex);
                        w.WriteEndObject();
                    }
                    io.Out.WriteLine(System.Text.Encoding.UTF8.GetString(buffer.ToArray()));
                }
                break;
            case "table":
                string[] headers = ["HASH", "REVISION", "TOTAL KEYS", "TOTAL SIZE"];
                string[] row = [hash, Num(s.Revision), Num(s.Records), Bytes(size)];
                var widths = headers.Select((h, i) => Math.Max(h.Length, row[i].Length)).ToArray();
                var rule = "+" + string.Join("+", widths.Select(w => new string('-', w + 2))) + "+";
                string Line(string[] cells) => "| " + string.Join(" | ", cells.Select((c, i) => c.PadRight(widths[i]))) + " |";
                io.Out.WriteLine(rule);
                io.Out.WriteLine(Line(headers));
                io.Out.WriteLine(rule);
                io.Out.WriteLine(Line(row));
                io.Out.WriteLine(rule);
                break;
            default:
                io.Out.WriteLine($"{hash}, {s.Revision}, {s.Records}, {Bytes(size)}");
                break;
        }
        return 0;
    }

    private static int Restore(string path, Flags flags, CliIo io)
    {
        var name = flags.Get("--name") ?? "default";
        var dataDir = flags.Get("--data-dir") ?? $"{name}.cairn";
        var defaults = new MemberOptions();
        var options = new MemberOptions
        {
            Name = name,
            DataDir = dataDir,
            InitialCluster = flags.Get("--initial-cluster") is { } c ? MemberOptions.ParseCluster(c) : null,
            ClusterToken = flags.Get("--initial-cluster-token") ?? defaults.ClusterToken,
        };
        options.Validate();
        if (Serve.HoldsData(dataDir)) throw new UsageException($"--data-dir {dataDir} already holds a member's data; restore into a new, empty directory");
        options = options with { MasterKey = Serve.Key(flags, dataDir) };
        var result = MemberRestore.Restore(path, options);
        var cluster = string.Join(",", options.Cluster.Select(m => $"{m.Name}={m.PeerUrl}"));
        io.Out.WriteLine($"restored {path} into {Path.GetFullPath(dataDir)}: revision {result.Snapshot.Revision}, applied index {result.Snapshot.AppliedIndex}; " +
            $"member {result.MemberId:x} of new cluster {result.ClusterId:x}");
        io.Out.WriteLine("Start it with:");
        var token = flags.Get("--initial-cluster-token") is { } t ? $" --initial-cluster-token {t}" : "";
        var key = flags.Get("--key-file") is { } k ? $" --key-file {k}" : flags.Has("--plain") ? " --plain" : "";
        io.Out.WriteLine($"  cairn serve --name {name} --data-dir {dataDir} --initial-cluster {cluster}{token}{key}");
        return 0;
    }

    private static string Num(long v) => v.ToString(CultureInfo.InvariantCulture);

    private static string Bytes(long n) => ClientVerbs.Bytes(n);
}
