namespace Cairn.Load.Scenarios;

/// <summary>The scenarios the command line names.</summary>
internal static class ScenarioCatalog
{
    public static readonly IReadOnlyList<(string Name, string What)> All =
    [
        ("put", "puts of --value-size bytes to --key-count keys (--keys sequential|random)"),
        ("get", "reads of one key (--consistency linearizable|serializable) from --key-count keys filled first"),
        ("range", "reads of a prefix holding --range-size keys"),
        ("txn-cas", "compare-and-swap transactions, each client on its own key"),
        ("mixed", "reads with probability --read-ratio, else puts"),
        ("watch", "--watchers watchers on a prefix; put→receipt latency of every event (step 'watch delivery')"),
        ("lease-keep-alive", "each client renews its own lease once per iteration"),
    ];

    /// <exception cref="LoadConfigurationException">Unknown scenario; the message lists the known ones.</exception>
    public static Scenario Create(LoadOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        return options.Scenario switch
        {
            "put" => new PutScenario(options),
            "get" => new GetScenario(options),
            "range" => new RangeScenario(options),
            "txn-cas" => new TxnCasScenario(options),
            "mixed" => new MixedScenario(options),
            "watch" => new WatchScenario(options),
            "lease-keep-alive" => new LeaseKeepAliveScenario(options),
            _ => throw Unknown(options.Scenario),
        };
    }

    public static LoadConfigurationException Unknown(string name) =>
        new($"unknown scenario '{name}'; known: {string.Join(", ", All.Select(s => s.Name))}");
}
