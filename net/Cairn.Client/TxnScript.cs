using System.Globalization;
using System.Text;
using Cairn.Kv;

namespace Cairn.Client;

/// <summary>
/// etcdctl's text form of a transaction (`cairn txn`, docs/client.md): compares, a blank line, the operations run when
/// every compare holds, a blank line, the operations run otherwise.
/// <code>
/// mod("config/a") > "0"
/// value("config/a") = "1"
///
/// put config/a "two words"
/// get config/a
///
/// put config/a created
/// </code>
/// Compares are <c>value|version|create|mod|lease("KEY") =|!=|&lt;|&gt; "OPERAND"</c>; operations
/// <c>put KEY VALUE [--lease=ID]</c>, <c>get KEY [END] [--prefix]</c>, <c>del KEY [END] [--prefix]</c>. Words with
/// spaces go in double quotes (\" and \\ escape). Lease ids are hexadecimal, as `cairn lease grant` prints them.
/// </summary>
public static class TxnScript
{
    /// <summary>Reads one transaction; <paramref name="prompts"/>, when given, gets each section's prompt first (interactive use).</summary>
    /// <exception cref="FormatException">A line is not a compare or an operation; the message quotes it and says what was expected.</exception>
    public static TxnRequest Parse(TextReader input, TextWriter? prompts = null)
    {
        ArgumentNullException.ThrowIfNull(input);
        var compares = Section(input, prompts, "compares:").Select(ParseCompare).ToList();
        var success = Section(input, prompts, "success requests (get, put, del):").Select(ParseOp).ToList();
        var failure = Section(input, prompts, "failure requests (get, put, del):").Select(ParseOp).ToList();
        return new TxnRequest { Compares = compares, Success = success, Failure = failure };
    }

    /// <summary>Lines up to a blank line (or the end of the input).</summary>
    private static List<string> Section(TextReader input, TextWriter? prompts, string prompt)
    {
        prompts?.WriteLine(prompt);
        var lines = new List<string>();
        while (input.ReadLine() is { } line)
        {
            if (line.Trim().Length == 0) break;
            lines.Add(line.Trim());
        }
        return lines;
    }

    /// <summary>One compare: <c>mod("key") &gt; "3"</c>.</summary>
    public static Compare ParseCompare(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var open = line.IndexOf('(', StringComparison.Ordinal);
        var close = line.IndexOf(')', StringComparison.Ordinal);
        if (open <= 0 || close < open) throw new FormatException($"compare '{line}' is not target(\"key\") op \"value\" (e.g. mod(\"k\") > \"3\")");
        var target = line[..open].Trim() switch
        {
            "value" or "val" => CompareTarget.Value,
            "version" or "ver" => CompareTarget.Version,
            "create" or "c" => CompareTarget.Create,
            "mod" or "m" => CompareTarget.Mod,
            "lease" => CompareTarget.Lease,
            var t => throw new FormatException($"compare target '{t}' is not value, version, create, mod or lease"),
        };
        var key = Words(line[(open + 1)..close]);
        if (key.Count != 1) throw new FormatException($"compare '{line}' names {key.Count} keys; give one");
        var rest = Words(line[(close + 1)..]);
        if (rest.Count != 2) throw new FormatException($"compare '{line}' needs an operator and a value after the key");
        var result = rest[0] switch
        {
            "=" or "==" => CompareResult.Equal,
            "!=" => CompareResult.NotEqual,
            "<" => CompareResult.Less,
            ">" => CompareResult.Greater,
            var o => throw new FormatException($"compare operator '{o}' is not =, !=, < or >"),
        };
        if (target == CompareTarget.Value) return new Compare { Key = Utf8(key[0]), Target = target, Result = result, Value = Utf8(rest[1]) };
        var number = target == CompareTarget.Lease ? Lease(rest[1]) : Number(rest[1], line);
        return new Compare { Key = Utf8(key[0]), Target = target, Result = result, Number = number };
    }

    /// <summary>One operation: <c>put KEY VALUE [--lease=ID]</c>, <c>get KEY [END] [--prefix]</c>, <c>del KEY [END] [--prefix]</c>.</summary>
    public static TxnOp ParseOp(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var words = Words(line);
        var args = words.Where(w => !w.StartsWith("--", StringComparison.Ordinal)).ToList();
        var prefix = words.Contains("--prefix");
        var lease = words.FirstOrDefault(w => w.StartsWith("--lease=", StringComparison.Ordinal)) is { } l ? Lease(l["--lease=".Length..]) : 0;
        if (args.Count < 2) throw new FormatException($"operation '{line}' needs a verb and a key");
        var key = Utf8(args[1]);
        var end = prefix ? RangeRequest.Prefix(key) : args.Count > 2 && args[0] != "put" ? Utf8(args[2]) : [];
        return args[0] switch
        {
            "put" when args.Count == 3 => new TxnOp { Put = new PutRequest { Key = key, Value = Utf8(args[2]), Lease = lease } },
            "put" => throw new FormatException($"operation '{line}': put needs KEY and VALUE"),
            "get" => new TxnOp { Range = new RangeRequest { Key = key, RangeEnd = end } },
            "del" or "delete" => new TxnOp { Delete = new DeleteRangeRequest { Key = key, RangeEnd = end } },
            var v => throw new FormatException($"operation '{line}': '{v}' is not put, get or del"),
        };
    }

    /// <summary>Splits on white space, keeping "double quoted" words whole (with \" and \\ escapes).</summary>
    public static List<string> Words(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var words = new List<string>();
        var current = new StringBuilder();
        var quoted = false;
        var any = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (quoted)
            {
                if (c == '\\' && i + 1 < text.Length) current.Append(text[++i]);
                else if (c == '"') quoted = false;
                else current.Append(c);
            }
            else if (c == '"')
            {
                quoted = true;
                any = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (any) words.Add(current.ToString());
                current.Clear();
                any = false;
            }
            else
            {
                current.Append(c);
                any = true;
            }
        }
        if (quoted) throw new FormatException($"unterminated quote in '{text}'");
        if (any) words.Add(current.ToString());
        return words;
    }

    private static byte[] Utf8(string s) => Encoding.UTF8.GetBytes(s);

    private static long Number(string text, string line) =>
        long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var v) ? v : throw new FormatException($"compare '{line}': '{text}' is not a whole number");

    private static long Lease(string text) =>
        long.TryParse(text, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var id) ? id : throw new FormatException($"lease id '{text}' is not hexadecimal (as `cairn lease grant` prints it)");
}
