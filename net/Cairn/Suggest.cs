namespace Cairn.Cli;

/// <summary>A mistake on the command line (an unknown flag, a missing argument): exit code 2, one line on stderr.</summary>
internal sealed class UsageException(string message) : Exception(message);

/// <summary>The closest known name to a mistyped one ("did you mean --data-dir?").</summary>
internal static class Suggest
{
    /// <summary>The known name nearest to <paramref name="typed"/>, or null when none is near enough to be a typo of it.</summary>
    public static string? Closest(string typed, IEnumerable<string> known)
    {
        string? best = null;
        var bestDistance = int.MaxValue;
        var bare = typed.TrimStart('-');
        foreach (var name in known)
        {
            var d = Distance(bare, name.TrimStart('-'));
            if (d < bestDistance)
            {
                (best, bestDistance) = (name, d);
            }
        }
        // A typo is a few edits away, relative to the name's length; a prefix of a known name counts too (--data → --data-dir).
        if (best is not null && bestDistance <= Math.Max(2, bare.Length / 3)) return best;
        return bare.Length >= 3 ? known.FirstOrDefault(n => n.TrimStart('-').StartsWith(bare, StringComparison.Ordinal)) : null;
    }

    /// <summary>Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours.</summary>
    internal static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                var cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }
}
