using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using Cairn.Crypto;
using Cairn.Storage;

namespace Cairn.Cli;

/// <summary>
/// The `cairn` command. Until the server lands it drives the embedded engine: `demo` (the README's first command)
/// writes, reads back, verifies and prints figures; `verify` and `stats` inspect a database file.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        try
        {
            var verb = args.Length > 0 ? args[0] : "demo";
            return verb switch
            {
                "serve" => Serve.Run(args),
                "dev-cluster" => Serve.DevCluster(args),
                "certs" => Certs.Run(args),
                "scale" when args.Length > 1 && args[1] == "simulate" => ScaleSimulate.Run(args),
                _ when ClientVerbs.Handles(verb) => ClientVerbs.Run(args),
                "demo" => Demo(Option(args, "--path") ?? "demo.cairn", int.Parse(Option(args, "--keys") ?? "200000", CultureInfo.InvariantCulture), KeyOptions(args, create: true)),
                "verify" when args.Length > 1 => VerifyFile(args[1], KeyOptions(args, create: false)),
                "stats" when args.Length > 1 => Stats(args[1], KeyOptions(args, create: false)),
                "help" or "--help" or "-h" => Usage(0),
                _ => Usage(2),
            };
        }
        catch (Exception e) when (e is StorageException or IOException or FormatException or UnauthorizedAccessException or ArgumentException or Server.MemberStartException)
        {
            Console.Error.WriteLine($"cairn: {e.Message}");
            return 1;
        }
    }

    /// <summary>
    /// Encrypted by default: the master key comes from --key-file (default ~/.cairn/master.key, created with mode 0600
    /// when absent); --plain opens or creates an unencrypted database.
    /// </summary>
    private static StorageOptions KeyOptions(string[] args, bool create)
    {
        if (Array.IndexOf(args, "--plain") >= 0) return new StorageOptions { CreateIfMissing = create };
        var path = Option(args, "--key-file") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cairn", "master.key");
        var key = create ? KeyFileProvider.OpenOrCreate(path) : KeyFileProvider.Open(path);
        return new StorageOptions { MasterKey = key, CreateIfMissing = create, Warning = w => Console.Error.WriteLine($"cairn: warning: {w}") };
    }

    private static string? Option(string[] args, string name)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
    }

    private static int Usage(int code)
    {
        Console.Error.WriteLine("""
            usage: cairn demo [--path FILE] [--keys N] [--key-file KEY | --plain]
                                               write N keys, read them back, verify, print figures
                   cairn verify FILE [--key-file KEY | --plain]   check every page of a database file
                   cairn stats FILE [--key-file KEY | --plain]    print a database file's figures
                   cairn scale simulate --trace FILE [--out PNG] [...]   replay a memory trace through the autoscaler
            Databases are encrypted (AES-256-GCM) with the master key in --key-file, by default
            ~/.cairn/master.key (created with mode 0600 when absent).
            """);
        Console.Error.WriteLine(ClientVerbs.Usage);
        Console.Error.WriteLine(Certs.Usage);
        return code;
    }

    private static int Demo(string path, int keys, StorageOptions options)
    {
        using var db = Database.Open(path, options);
        Console.WriteLine($"cairn demo: {keys:N0} keys into {Path.GetFullPath(path)} ({(db.IsEncrypted ? $"encrypted with {options.MasterKey!.KeyId}" : "not encrypted")})");
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
                    Console.Error.WriteLine($"cairn demo: key {i} read back wrong");
                    return 1;
                }
            }
        }
        var read = sw.Elapsed;
        sw.Restart();
        var stats = db.Verify();
        Console.WriteLine($"wrote {keys:N0} keys in {write.TotalMilliseconds:N0} ms ({keys / write.TotalSeconds:N0}/s, durable commits of {batch:N0})");
        Console.WriteLine($"read them back in {read.TotalMilliseconds:N0} ms ({keys / read.TotalSeconds:N0}/s)");
        Console.WriteLine($"verified every page in {sw.Elapsed.TotalMilliseconds:N0} ms");
        Console.WriteLine(stats);
        return 0;
    }

    private static void KeyFor(int i, Span<byte> key)
    {
        // Random-looking 16-byte keys: a multiplicative hash of i, then i itself.
        BinaryPrimitives.WriteUInt64BigEndian(key, (ulong)i * 0x9E3779B97F4A7C15UL);
        BinaryPrimitives.WriteUInt64BigEndian(key[8..], (ulong)i);
    }

    private static int VerifyFile(string path, StorageOptions options)
    {
        using var db = Database.Open(path, options);
        Console.WriteLine("ok: " + db.Verify());
        return 0;
    }

    private static int Stats(string path, StorageOptions options)
    {
        using var db = Database.Open(path, options);
        Console.WriteLine(db.GetStats());
        return 0;
    }
}
