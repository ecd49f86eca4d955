namespace Cairn.Crypto.Tests;

/// <summary>One known-answer case: the inputs and what an independent implementation produced.</summary>
public sealed record GcmVector(
    string File, int Line, byte[] Key, byte[] Nonce, byte[] Plaintext, byte[] AssociatedData, byte[] Ciphertext, byte[] Tag)
{
    public override string ToString() =>
        $"{File}:{Line} (nonce {Nonce.Length} B, text {Plaintext.Length} B, aad {AssociatedData.Length} B, tag {Tag.Length} B)";
}

/// <summary>
/// Reads the aws-lc cipher test format: blocks of <c>NAME: hex</c> lines separated by blank lines,
/// <c>#</c> comments, an empty value written as nothing or as <c>""</c>. Anything else is an error,
/// so a format surprise fails loudly instead of dropping cases.
/// </summary>
public static class GcmVectorFile
{
    public const string AwsLc = "aes_256_gcm_tests.txt";
    public const string McGrewViega = "gcm_spec_256.txt";

    private static readonly string[] Fields = ["KEY", "NONCE", "IN", "AD", "CT", "TAG"];
    private static readonly Dictionary<string, IReadOnlyList<GcmVector>> Cache = [];

    public static IReadOnlyList<GcmVector> Load(string fileName)
    {
        lock (Cache)
        {
            if (!Cache.TryGetValue(fileName, out IReadOnlyList<GcmVector>? vectors))
            {
                string path = Path.Combine(AppContext.BaseDirectory, "TestData", fileName);
                vectors = Parse(fileName, File.ReadAllLines(path));
                Cache[fileName] = vectors;
            }

            return vectors;
        }
    }

    public static IReadOnlyList<GcmVector> Parse(string fileName, IReadOnlyList<string> lines)
    {
        var vectors = new List<GcmVector>();
        var fields = new Dictionary<string, byte[]>();
        int blockLine = 0;

        for (int i = 0; i <= lines.Count; i++)
        {
            string line = i < lines.Count ? lines[i].Trim() : "";
            if (line.StartsWith('#'))
            {
                continue;
            }

            if (line.Length == 0)
            {
                if (fields.Count > 0)
                {
                    vectors.Add(Complete(fileName, blockLine, fields));
                    fields.Clear();
                }

                continue;
            }

            int colon = line.IndexOf(':');
            if (colon < 0)
            {
                throw new FormatException($"{fileName}:{i + 1}: expected 'NAME: hex', got '{line}'.");
            }

            string name = line[..colon].Trim();
            string value = line[(colon + 1)..].Trim();
            if (value == "\"\"")
            {
                value = "";
            }

            if (fields.Count == 0)
            {
                blockLine = i + 1;
            }

            if (!fields.TryAdd(name, Convert.FromHexString(value)))
            {
                throw new FormatException($"{fileName}:{i + 1}: {name} appears twice in one block.");
            }
        }

        return vectors;
    }

    private static GcmVector Complete(string fileName, int line, Dictionary<string, byte[]> fields)
    {
        if (fields.Count != Fields.Length || !Fields.All(fields.ContainsKey))
        {
            throw new FormatException(
                $"{fileName}:{line}: block has fields [{string.Join(", ", fields.Keys)}], expected [{string.Join(", ", Fields)}].");
        }

        return new GcmVector(
            fileName, line, fields["KEY"], fields["NONCE"], fields["IN"], fields["AD"], fields["CT"], fields["TAG"]);
    }
}
