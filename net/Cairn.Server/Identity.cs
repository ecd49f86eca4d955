using System.Globalization;
using System.Net.Sockets;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// Who a data directory belongs to: member name and id, cluster id, and the voters the log starts from, written once
/// in `member/identity` so that a restarted member cannot silently join another cluster or take another member's
/// place, and its configuration never depends on the --initial-cluster of a later start.
/// </summary>
internal sealed record Identity(string Name, ulong MemberId, ulong ClusterId, IReadOnlyList<ulong>? Bootstrap)
{
    /// <summary>The voters a member's log starts from: the bootstrap list, or (joining) the members before it.</summary>
    public static List<ulong> BootstrapOf(MemberOptions options) => options.InitialClusterState == "existing"
        ? [.. options.Cluster.Where(m => m.Name != options.Name).Select(m => MemberOptions.MemberId(m.Name))]
        : [.. options.Cluster.Select(m => MemberOptions.MemberId(m.Name))];

    public static Identity LoadOrCreate(string dir, MemberOptions options, MemberTls tls, byte[] peerKey)
    {
        var path = Path.Combine(dir, "identity");
        var id = MemberOptions.MemberId(options.Name);
        if (File.Exists(path))
        {
            var fields = File.ReadAllLines(path).Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
            if (!fields.TryGetValue("name", out var name) || !fields.TryGetValue("cluster", out var cluster) ||
                !ulong.TryParse(cluster, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var clusterId))
            {
                throw new MemberStartException($"{path} is damaged (it should hold name= and cluster= lines); restore it or start with an empty --data-dir.");
            }
            if (name != options.Name) throw new MemberStartException($"--data-dir {options.DataDir} belongs to member '{name}', not '{options.Name}'; pass --name {name} or another --data-dir.");
            // Written since the bootstrap list is kept (older directories have none: the flags say it, as before).
            List<ulong>? bootstrap = null;
            if (fields.TryGetValue("bootstrap", out var list))
            {
                bootstrap = [];
                foreach (var hex in list.Split(',', StringSplitOptions.RemoveEmptyEntries))
                {
                    if (!ulong.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var voter)) throw new MemberStartException($"{path} is damaged (its bootstrap line holds '{hex}'); restore it or start with an empty --data-dir.");
                    bootstrap.Add(voter);
                }
            }
            return new Identity(name, id, clusterId, bootstrap);
        }
        var clusterIdNew = options.InitialClusterState == "new"
            ? MemberOptions.ClusterIdOf(options.Cluster, options.ClusterToken)
            : AskCluster(options, id, tls, peerKey);
        return Write(dir, options.Name, clusterIdNew, BootstrapOf(options));
    }

    /// <summary>Writes a new data directory's identity (a restore writes one too).</summary>
    public static Identity Write(string dir, string name, ulong clusterId, List<ulong> bootstrap)
    {
        var path = Path.Combine(dir, "identity");
        var id = MemberOptions.MemberId(name);
        var tmp = path + ".tmp";
        File.WriteAllText(tmp, $"name={name}\nmember={id:x16}\ncluster={clusterId:x16}\nbootstrap={string.Join(',', bootstrap.Select(v => v.ToString("x16", CultureInfo.InvariantCulture)))}\n");
        File.Move(tmp, path, overwrite: true);
        return new Identity(name, id, clusterId, bootstrap);
    }

    /// <summary>A member joining an existing cluster asks its peers for the cluster id; they answer only members already added.</summary>
    private static ulong AskCluster(MemberOptions options, ulong self, MemberTls tls, byte[] peerKey)
    {
        // A member that has not applied the change adding this one yet refuses; ask around for a few seconds.
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        string? refusal = null;
        while (true)
        {
            try
            {
                return AskOnce(options, self, tls, peerKey);
            }
            catch (MemberStartException e) when (DateTime.UtcNow < deadline)
            {
                refusal = e.Message;
                Thread.Sleep(200);
            }
            catch (MemberStartException e) when (refusal is not null && !e.Message.Contains("refused", StringComparison.Ordinal))
            {
                throw new MemberStartException(refusal);
            }
        }
    }

    private static ulong AskOnce(MemberOptions options, ulong self, MemberTls tls, byte[] peerKey)
    {
        var tried = new List<string>();
        string? refused = null;
        foreach (var (name, url) in options.Cluster)
        {
            if (name == options.Name) continue;
            tried.Add(url);
            try
            {
                // Start runs before any socket loop of this member exists: waiting here holds no one up.
                var (stream, cluster) = PeerHandshake.DialAsync(tls, peerKey, url, 0, self, MemberOptions.MemberId(name), PeerCodec.LinkKind.Query,
                    TimeSpan.FromSeconds(3), CancellationToken.None).GetAwaiter().GetResult();
                stream.Dispose();
                return cluster;
            }
            catch (ProtocolException e)
            {
                refused = $"member {name} at {url} refused to let '{options.Name}' join: {e.Message}";
            }
            catch (Exception e) when (e is SocketException or OperationCanceledException or IOException or System.Security.Authentication.AuthenticationException)
            {
            }
        }
        if (refused is not null) throw new MemberStartException(refused);
        throw new MemberStartException($"--initial-cluster-state existing: no member answered at {string.Join(", ", tried)}. Start the existing members first and run `cairn member add {options.Name} --peer-urls {options.ListenPeer}` before starting this one.");
    }
}

/// <summary>Names and addresses of members: the bootstrap list from the flags, overlaid by the replicated records.</summary>
internal sealed class MemberDirectory
{
    public const string Prefix = "member/";

    /// <summary><see cref="Prefix"/> as bytes.</summary>
    public static ReadOnlySpan<byte> PrefixBytes => "member/"u8;
    private readonly Dictionary<ulong, (string Name, string PeerUrl, string ClientUrl)> _members;
    private readonly Dictionary<ulong, string> _grpcUrls;

    private MemberDirectory(Dictionary<ulong, (string, string, string)> members, Dictionary<ulong, string> grpcUrls)
    {
        _members = members;
        _grpcUrls = grpcUrls;
    }

    public static MemberDirectory Build(MemberOptions options, IReadOnlyList<(byte[] Key, byte[] Value)> records)
    {
        var map = new Dictionary<ulong, (string, string, string)>();
        var grpc = new Dictionary<ulong, string>();
        foreach (var (name, url) in options.Cluster) map[MemberOptions.MemberId(name)] = (name, url, name == options.Name ? options.ClientUrl : "");
        foreach (var (key, value) in records)
        {
            var k = System.Text.Encoding.UTF8.GetString(key);
            if (!k.StartsWith(Prefix, StringComparison.Ordinal) || !ulong.TryParse(k.AsSpan(Prefix.Length), NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id)) continue;
            if (Decode(value) is { } rec) map[id] = rec;
            if (DecodeGrpcUrl(value) is { } url) grpc[id] = url;
        }
        return new MemberDirectory(map, grpc);
    }

    public static byte[] Key(ulong id) => System.Text.Encoding.UTF8.GetBytes($"{Prefix}{id:x16}");

    /// <summary>A member's record: name, peer and client addresses, and the URL of its etcd API when it serves one (a fourth line).</summary>
    public static byte[] Encode(string name, string peerUrl, string clientUrl, string grpcUrl = "") =>
        System.Text.Encoding.UTF8.GetBytes(grpcUrl.Length == 0 ? $"{name}\n{peerUrl}\n{clientUrl}" : $"{name}\n{peerUrl}\n{clientUrl}\n{grpcUrl}");

    public static (string Name, string PeerUrl, string ClientUrl)? Decode(ReadOnlySpan<byte> value)
    {
        var parts = System.Text.Encoding.UTF8.GetString(value).Split('\n');
        return parts.Length is 3 or 4 ? (parts[0], parts[1], parts[2]) : null;
    }

    private static string? DecodeGrpcUrl(ReadOnlySpan<byte> value)
    {
        var parts = System.Text.Encoding.UTF8.GetString(value).Split('\n');
        return parts.Length == 4 && parts[3].Length > 0 ? parts[3] : null;
    }

    /// <summary>The URL of a member's etcd API, as it published it (null: none, or not published yet).</summary>
    public string? GrpcUrl(ulong id) => _grpcUrls.GetValueOrDefault(id);

    public (string Name, string PeerUrl, string ClientUrl)? Get(ulong id) => _members.TryGetValue(id, out var m) ? m : null;

    public Dictionary<ulong, string> PeerUrls(ulong self)
    {
        var d = new Dictionary<ulong, string>();
        foreach (var (id, m) in _members) if (id != self) d[id] = m.PeerUrl;
        return d;
    }

    public List<MemberInfo> List(IEnumerable<ulong> voters, IEnumerable<ulong> learners)
    {
        var list = new List<MemberInfo>();
        foreach (var id in voters) list.Add(Describe(id, false));
        foreach (var id in learners) list.Add(Describe(id, true));
        list.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        return list;
    }

    private MemberInfo Describe(ulong id, bool learner) =>
        _members.TryGetValue(id, out var m) ? new MemberInfo(id, m.Name, m.PeerUrl, m.ClientUrl, learner) : new MemberInfo(id, $"{id:x16}", "", "", learner);
}
