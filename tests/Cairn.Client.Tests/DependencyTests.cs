using System.Reflection;

namespace Cairn.Client.Tests;

/// <summary>The client library carries no storage engine: the wire model lives apart from the state machine.</summary>
public sealed class DependencyTests
{
    [Fact]
    public void Cairn_Client_depends_neither_on_Cairn_Kv_nor_on_Cairn_Storage()
    {
        var root = typeof(CairnClient).Assembly;
        var seen = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase) { [root.GetName().Name!] = "" };
        var queue = new Queue<Assembly>([root]);
        while (queue.TryDequeue(out var assembly))
        {
            foreach (var reference in assembly.GetReferencedAssemblies())
            {
                if (!seen.TryAdd(reference.Name!, assembly.GetName().Name!)) continue;
                queue.Enqueue(Assembly.Load(reference));
            }
        }

        // Name the chain of references to a forbidden assembly, so a failure says which reference brought it in.
        string Chain(string name) => seen[name].Length == 0 ? name : $"{Chain(seen[name])} → {name}";
        foreach (var forbidden in new[] { "Cairn.Kv", "Cairn.Storage", "Cairn.Raft" })
            if (seen.ContainsKey(forbidden)) Assert.Fail($"Cairn.Client depends on {forbidden}: {Chain(forbidden)}");
        Assert.Contains("Cairn.Protocol", seen.Keys);
        Assert.Contains("Cairn.Kv.Model", seen.Keys);
    }
}
