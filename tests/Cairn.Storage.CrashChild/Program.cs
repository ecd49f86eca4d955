using System.Globalization;

namespace Cairn.Storage.CrashChild;

/// <summary>
/// The process the crash tests kill. Modes:
/// <code>
/// run &lt;path&gt; &lt;seed&gt; [lastTxn]   commit workload transactions after the marker already in the file, printing
///                              "ready m" once open and "committed i" after each Commit returns; stop after lastTxn
///                              (default: never). CAIRN_FAILPOINT=name makes the engine exit with 137 at that point.
/// hold &lt;path&gt;                  open the database, print "holding", keep it open until stdin closes.
/// lazy &lt;path&gt; &lt;seed&gt; &lt;count&gt; barrier|none
///                              commit workload transactions 1..count without a sync, printing "committed i"; then,
///                              with barrier, an empty durable commit ("barrier d": d is the durable transaction id);
///                              print "waiting" and wait until stdin closes or the process is killed, without closing
///                              the database (closing would sync).
/// </code>
/// Exit codes: 0 done, 2 usage, 3 the database threw.
/// </summary>
internal static class Program
{
    private static int Main(string[] args)
    {
        try
        {
            return args switch
            {
                ["run", var path, var seed] => Run(path, Parse(seed), ulong.MaxValue),
                ["run", var path, var seed, var last] => Run(path, Parse(seed), Parse(last)),
                ["hold", var path] => Hold(path),
                ["lazy", var path, var seed, var count, var mode and ("barrier" or "none")] => Lazy(path, Parse(seed), Parse(count), mode == "barrier"),
                _ => Usage(),
            };
        }
        catch (Exception e) when (e is StorageException or IOException or InvalidDataException)
        {
            Console.Error.WriteLine($"error: {e}");
            return 3;
        }
    }

    private static int Run(string path, ulong seed, ulong lastTxn)
    {
        var stdout = Console.Out;
        using var db = Database.Open(path, Workload.OptionsFromEnvironment());
        ulong next;
        using (var tx = db.BeginRead()) next = Workload.ReadMarker(tx) + 1;
        stdout.WriteLine($"ready {next - 1}");
        stdout.Flush();
        for (; next <= lastTxn; next++)
        {
            using (var tx = db.BeginWrite())
            {
                Workload.Apply(tx, seed, next);
                tx.Commit();
            }
            stdout.WriteLine($"committed {next}");
            stdout.Flush();
        }
        return 0;
    }

    private static int Hold(string path)
    {
        using var db = Database.Open(path);
        Console.Out.WriteLine("holding");
        Console.Out.Flush();
        while (Console.In.ReadLine() is not null)
        {
        }
        return 0;
    }

    private static int Lazy(string path, ulong seed, ulong count, bool barrier)
    {
        var stdout = Console.Out;
        var db = Database.Open(path, Workload.OptionsFromEnvironment());
        for (var txn = 1UL; txn <= count; txn++)
        {
            using (var tx = db.BeginWrite())
            {
                Workload.Apply(tx, seed, txn);
                tx.Commit(durable: false);
            }
            stdout.WriteLine($"committed {txn}");
        }
        if (barrier)
        {
            using (var tx = db.BeginWrite()) tx.Commit(durable: true); // changes nothing
            stdout.WriteLine($"barrier {db.LastDurableTransaction}");
        }
        stdout.WriteLine("waiting");
        stdout.Flush();
        while (Console.In.ReadLine() is not null)
        {
        }
        // Deliberately not disposed: the test kills this process, and a clean close would sync what the barrier should have.
        GC.KeepAlive(db);
        return 0;
    }

    private static ulong Parse(string s) => ulong.Parse(s, NumberStyles.None, CultureInfo.InvariantCulture);

    private static int Usage()
    {
        Console.Error.WriteLine("usage: Cairn.Storage.CrashChild run <path> <seed> [lastTxn] | hold <path> | lazy <path> <seed> <count> barrier|none");
        return 2;
    }
}
