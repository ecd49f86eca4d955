using System.Globalization;
using Cairn.Crypto;

namespace Cairn.Client;

/// <summary>
/// One key of a <see cref="ValueProtector"/>'s keyring: a 256-bit key from an <see cref="IKeyProvider"/> (a key file,
/// an environment variable, a KMS) and the small id that names it in every value sealed with it. Ids are chosen by
/// the operator and must mean the same key on every client: a value records only the id.
/// </summary>
public sealed class ValueKey
{
    /// <summary>A key with id <paramref name="id"/> (1–65535) read from <paramref name="provider"/> when the protector is built.</summary>
    public ValueKey(int id, IKeyProvider provider)
    {
        ArgumentNullException.ThrowIfNull(provider);
        if (id is < 1 or > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(id), id, "A value key id is 1 to 65535.");
        Id = (ushort)id;
        Provider = provider;
    }

    /// <summary>The id written into each value sealed with this key.</summary>
    public ushort Id { get; }

    /// <summary>Where the key comes from.</summary>
    public IKeyProvider Provider { get; }

    /// <summary>A key in a key file of Cairn.Crypto's format (64 hex digits; <c>openssl rand -hex 32 &gt; FILE</c>), which must exist.</summary>
    public static ValueKey FromFile(int id, string path) => new(id, KeyFileProvider.Open(path));

    /// <summary>
    /// A keyring written as on the `cairn` command line: <c>[ID=]FILE[,ID=FILE...]</c>. The first key seals (its id
    /// defaults to 1); the others only open. Each FILE is a key file of Cairn.Crypto's format.
    /// </summary>
    public static IReadOnlyList<ValueKey> ParseKeyFiles(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var keys = new List<ValueKey>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var eq = part.IndexOf('=', StringComparison.Ordinal);
            int id;
            string path;
            if (eq > 0 && int.TryParse(part.AsSpan(0, eq), NumberStyles.None, CultureInfo.InvariantCulture, out var parsed))
            {
                id = parsed;
                path = part[(eq + 1)..];
            }
            else if (keys.Count == 0 && !text.Contains(',', StringComparison.Ordinal))
            {
                id = 1;
                path = part;
            }
            else
            {
                throw new ArgumentException($"value key '{part}' needs an id when several are given: ID=FILE (e.g. 2=new.key,1=old.key)", nameof(text));
            }
            if (id is < 1 or > ushort.MaxValue) throw new ArgumentException($"value key id {id} in '{part}' is not 1 to 65535", nameof(text));
            keys.Add(FromFile(id, path));
        }
        if (keys.Count == 0) throw new ArgumentException("no value key file given: [ID=]FILE[,ID=FILE...]", nameof(text));
        return keys;
    }
}
