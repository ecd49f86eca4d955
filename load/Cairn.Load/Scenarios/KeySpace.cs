using System.Text;

namespace Cairn.Load.Scenarios;

/// <summary>
/// The keys a scenario uses: <see cref="Count"/> keys under a prefix, each the prefix and a zero-padded index padded
/// to <c>keySize</c> bytes (longer when the index needs it), built once. Picked in order (wrapping) or at random.
/// </summary>
internal sealed class KeySpace
{
    private readonly byte[][] _keys;
    private readonly bool _sequential;
    private long _next = -1;

    public KeySpace(string prefix, int count, int keySize, bool sequential)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        _sequential = sequential;
        Prefix = Encoding.UTF8.GetBytes(prefix);
        var digits = Math.Max(count.ToString(System.Globalization.CultureInfo.InvariantCulture).Length, keySize - Prefix.Length);
        _keys = new byte[count][];
        for (var i = 0; i < count; i++) _keys[i] = Encoding.UTF8.GetBytes(prefix + i.ToString(System.Globalization.CultureInfo.InvariantCulture).PadLeft(digits, '0'));
    }

    public byte[] Prefix { get; }

    public int Count => _keys.Length;

    public byte[] this[int index] => _keys[index];

    /// <summary>The next key: in order across all clients, or uniformly at random from <paramref name="random"/>.</summary>
    public byte[] Next(Random random) =>
        _sequential ? _keys[(int)((ulong)Interlocked.Increment(ref _next) % (ulong)_keys.Length)] : _keys[random.Next(_keys.Length)];

    /// <summary>Puts every key once (256 at a time, spread over the connections) so reads find them.</summary>
    public async Task FillAsync(IReadOnlyList<Targets.ITargetConnection> connections, byte[] value, CancellationToken cancellationToken)
    {
        const int batch = 256;
        for (var i = 0; i < _keys.Length; i += batch)
        {
            var n = Math.Min(batch, _keys.Length - i);
            await Task.WhenAll(Enumerable.Range(i, n).Select(k => connections[k % connections.Count].PutAsync(_keys[k], value, cancellationToken).AsTask()));
        }
    }

    /// <summary>A value of <paramref name="size"/> bytes of fixed pseudo-random content.</summary>
    public static byte[] Value(int size)
    {
        var value = new byte[size];
        new Random(size).NextBytes(value);
        return value;
    }
}
