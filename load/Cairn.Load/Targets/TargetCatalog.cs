namespace Cairn.Load.Targets;

/// <summary>The targets the command line names.</summary>
internal static class TargetCatalog
{
    public static readonly IReadOnlyList<string> Names = ["cairn", "etcd"];

    /// <summary>The default endpoint of a target when --endpoints is not given.</summary>
    public static string DefaultEndpoint(string target) => target == "etcd" ? "127.0.0.1:2379" : "127.0.0.1:9379";

    /// <exception cref="LoadConfigurationException">Unknown target.</exception>
    public static ILoadTarget Create(LoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Target switch
        {
            "cairn" => new CairnTarget(options.Endpoints, options.Connections, options.ConnectTimeout, options.RequestTimeout),
            "etcd" => new EtcdTarget(options.Endpoints, options.Connections, options.ConnectTimeout, options.RequestTimeout),
            _ => throw new LoadConfigurationException($"unknown target '{options.Target}'; use {string.Join(" or ", Names)}"),
        };
    }
}
