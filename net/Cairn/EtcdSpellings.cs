using System.CommandLine;
using System.CommandLine.Parsing;

namespace Cairn.Cli;

/// <summary>
/// etcd's flags that Cairn spells differently. Where the meaning and the value are the same, the etcd spelling is an
/// alias of the Cairn flag (<see cref="Aliases"/>); where the value differs (etcd takes lists of URLs, Cairn one
/// HOST:PORT), the etcd spelling is refused with the Cairn flag to use, never ignored.
/// </summary>
internal static class EtcdSpellings
{
    /// <summary>etcd spelling → Cairn flag, same meaning and same value: accepted as aliases.</summary>
    public static readonly IReadOnlyDictionary<string, string> Aliases = new Dictionary<string, string>
    {
        ["--quota-backend-bytes"] = "--quota-bytes",
        ["--cert-file"] = "--cert",
        ["--trusted-ca-file"] = "--cacert",
        ["--peer-cert-file"] = "--peer-cert",
        ["--peer-key-file"] = "--peer-key",
        ["--peer-trusted-ca-file"] = "--peer-cacert",
    };

    /// <summary>etcd spelling → what to give Cairn instead.</summary>
    private static readonly Dictionary<string, string> Refused = new()
    {
        ["--listen-client-urls"] = "--listen-grpc HOST:PORT for etcd's API, or --listen-client HOST:PORT for Cairn's protocol (one address, no scheme)",
        ["--advertise-client-urls"] = "--advertise-client HOST:PORT (one address, no scheme)",
        ["--listen-peer-urls"] = "--listen-peer HOST:PORT (one address, no scheme)",
        ["--initial-advertise-peer-urls"] = "--initial-cluster NAME=HOST:PORT,... (this member's entry is the peer address others dial)",
        ["--listen-metrics-urls"] = "--listen-metrics HOST:PORT",
    };

    /// <summary>Throws <see cref="UsageException"/> for an etcd spelling <paramref name="command"/> does not take.</summary>
    public static void Check(IReadOnlyList<Token> tokens, Command command)
    {
        var known = CairnCli.KnownOptions(command).ToHashSet();
        foreach (var token in tokens)
        {
            var name = token.Value.Split('=', 2)[0];
            if (known.Contains(name) || !Refused.TryGetValue(name, out var use)) continue;
            throw new UsageException($"{name} is etcd's spelling; Cairn's is {use}");
        }
    }
}
