using System.Buffers.Binary;
using System.CommandLine;
using System.Diagnostics;
using Cairn.Crypto;
using Cairn.Storage;

namespace Cairn.Cli;

/// <summary>The `cairn` executable: the console's streams, Ctrl+C, and <see cref="CairnCli"/>.</summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        using var interrupt = new CancellationTokenSource();
        void OnCancel(object? sender, ConsoleCancelEventArgs e)
        {
            // Ctrl+C ends watches and keep-alives; `serve` has its own handler and stops gracefully.
            e.Cancel = true;
            interrupt.Cancel();
        }
        Console.CancelKeyPress += OnCancel;
        using var stdin = Console.OpenStandardInput();
        using var stdout = Console.OpenStandardOutput();
        var io = new CliIo(Console.Out, Console.Error, stdin, terminal: !Console.IsInputRedirected, rawOut: stdout);
        try
        {
            return CairnCli.RunAsync(args, io, interrupt.Token).GetAwaiter().GetResult();
        }
        finally
        {
            Console.CancelKeyPress -= OnCancel;
            Console.Out.Flush();
        }
    }
}

/// <summary>
/// The verbs on the embedded engine, without a member: `demo` writes, reads back, verifies and prints figures;
/// `verify` and `stats` inspect a database file.
/// </summary>
internal static class Embedded
{
    /// <summary>demo, verify and stats.</summary>
    public static IEnumerable<Command> Commands(CliIo io)
    {
        Option<string?> KeyFile() => new("--key-file") { Description = "The master key (default ~/.cairn/master.key).", HelpName = "FILE" };
        Option<bool> Plain() => new("--plain") { Description = "The database is not encrypted." };
        Option<bool> Insecure() => new("--allow-insecure-key-file") { Description = "Accept a --key-file that group or others may read." };

        var demo = new Command("demo", "Write N keys into an embedded encrypted database, read them back, verify every page, print figures.");
        var path = new Option<string?>("--path") { Description = "The database file (default ./demo.cairn).", HelpName = "FILE" };
        var keys = new Option<int?>("--keys") { Description = "How many keys (default 200000).", HelpName = "N" };
        var demoKey = KeyFile();
        var demoPlain = Plain();
        var demoInsecure = Insecure();
        demo.Options.Add(demoInsecure);
        demo.Options.Add(path);
        demo.Options.Add(keys);
        demo.Options.Add(demoKey);
        demo.Options.Add(demoPlain);
        demo.SetAction(p =>
        {
            var n = p.GetValue(keys) ?? 200_000;
            if (n < 1) throw new UsageException("--keys must be at least 1");
            return Demo(io.Out, io.Err, p.GetValue(path) ?? "demo.cairn", n, KeyOptions(p.GetValue(demoKey), p.GetValue(demoPlain), p.GetValue(demoInsecure), create: true, io.Err));
        });
        yield return demo;

        foreach (var (name, help) in new[] { ("verify", "Check every page of a database file: reachable once or free, keys in order, tags valid."), ("stats", "Print a database file's figures.") })
        {
            var c = new Command(name, help);
            var file = new Argument<string>("FILE");
            var key = KeyFile();
            var plain = Plain();
            var insecure = Insecure();
            c.Options.Add(insecure);
            c.Arguments.Add(file);
            c.Options.Add(key);
            c.Options.Add(plain);
            c.SetAction(p =>
            {
                var f = p.GetValue(file)!;
                if (!File.Exists(f)) throw new UsageException($"no database file at {f}");
                using var db = Database.Open(f, KeyOptions(p.GetValue(key), p.GetValue(plain), p.GetValue(insecure), create: false, io.Err));
                io.Out.WriteLine(name == "verify" ? "ok: " + db.Verify() : db.GetStats().ToString());
                return 0;
            });
            yield return c;
        }
    }

    /// <summary>
    /// Encrypted by default: the master key comes from --key-file (default ~/.cairn/master.key, created with mode 0600
    /// when absent for a new demo database); --plain opens or creates an unencrypted database.
    /// </summary>
    private static StorageOptions KeyOptions(string? keyFile, bool plain, bool allowInsecure, bool create, TextWriter err)
    {
        if (plain)
        {
            if (keyFile is not null) throw new UsageException("give either --key-file or --plain, not both");
            return new StorageOptions { CreateIfMissing = create };
        }
        var path = keyFile ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cairn", "master.key");
        var key = create ? KeyFileProvider.OpenOrCreate(path, allowInsecure) : KeyFileProvider.Open(path, allowInsecure);
        return new StorageOptions { MasterKey = key, CreateIfMissing = create, Warning = w => err.WriteLine($"cairn: warning: {w}") };
    }

    private static int Demo(TextWriter stdout, TextWriter stderr, string path, int keys, StorageOptions options)
    {
        using var db = Database.Open(path, options);
        stdout.WriteLine($"cairn demo: {keys:N0} keys into {Path.GetFullPath(path)} ({(db.IsEncrypted ? $"encrypted with {options.MasterKey!.KeyId}" : "not encrypted")})");
        Span<byte> key = stackalloc byte[16];
        var value = new byte[100];
        var sw = Stopwatch.StartNew();
        const int batch = 10_000;
        for (var start = 0; start < keys; start += batch)
        {
            using var tx = db.BeginWrite();
            var tree = tx.CreateTree("demo");
            for (var i = start; i < Math.Min(keys, start + batch); i++)
            {
                KeyFor(i, key);
                BinaryPrimitives.WriteInt32LittleEndian(value, i);
                tree.Put(key, value);
            }
            tx.Commit();
        }
        var write = sw.Elapsed;
        sw.Restart();
        using (var tx = db.BeginRead())
        {
            var tree = tx.OpenTree("demo");
            for (var i = 0; i < keys; i++)
            {
                KeyFor(i, key);
                if (!tree.TryGet(key, out var v) || BinaryPrimitives.ReadInt32LittleEndian(v) != i)
                {
                    stderr.WriteLine($"cairn demo: key {i} read back wrong");
                    return 1;
                }
            }
        }
        var read = sw.Elapsed;
        sw.Restart();
        var stats = db.Verify();
        stdout.WriteLine($"wrote {keys:N0} keys in {write.TotalMilliseconds:N0} ms ({keys / write.TotalSeconds:N0}/s, durable commits of {batch:N0})");
        stdout.WriteLine($"read them back in {read.TotalMilliseconds:N0} ms ({keys / read.TotalSeconds:N0}/s)");
        stdout.WriteLine($"verified every page in {sw.Elapsed.TotalMilliseconds:N0} ms");
        stdout.WriteLine(stats);
        return 0;
    }

    private static void KeyFor(int i, Span<byte> key)
    {
        // Random-looking 16-byte keys: a multiplicative hash of i, then i itself.
        BinaryPrimitives.WriteUInt64BigEndian(key, (ulong)i * 0x9E3779B97F4A7C15UL);
        BinaryPrimitives.WriteUInt64BigEndian(key[8..], (ulong)i);
    }
}
