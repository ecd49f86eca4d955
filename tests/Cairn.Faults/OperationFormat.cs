using System.Globalization;
using System.Text;

namespace Cairn.Faults;

/// <summary>How operations, values and ticks are printed in reports.</summary>
internal static class OperationFormat
{
    public static string Value(string? value) => value is null ? "absent" : Quote(value);

    public static string Quote(string s)
    {
        var b = new StringBuilder(s.Length + 2).Append('"');
        foreach (var c in s)
        {
            if (c is '"' or '\\') b.Append('\\').Append(c);
            else if (char.IsControl(c)) b.Append(CultureInfo.InvariantCulture, $"\\u{(int)c:x4}");
            else b.Append(c);
        }
        return b.Append('"').ToString();
    }

    public static string Ticks(long t) => t == Operation.Never ? "inf" : t.ToString(CultureInfo.InvariantCulture);

    /// <summary>The call, e.g. <c>put(x, "1")</c>.</summary>
    public static string Call(Operation op) => op.Kind switch
    {
        OperationKind.Put => $"put({op.Key}, {Value(op.Value)})",
        OperationKind.Get => $"get({op.Key})",
        OperationKind.Delete => $"delete({op.Key})",
        _ => $"cas({op.Key}, {Value(op.Expected)} -> {Value(op.Value)})",
    };

    /// <summary>The result as the client saw it: empty for a put, "?" when unknown, "failed" when not applied.</summary>
    public static string Result(Operation op) => op.Outcome switch
    {
        Outcome.Failed => "not applied",
        Outcome.Unknown => "?",
        _ => op.Kind switch
        {
            OperationKind.Put => "ok",
            OperationKind.Get => Value(op.Observed),
            OperationKind.Delete => op.Deleted.ToString(CultureInfo.InvariantCulture),
            _ => op.Succeeded ? "swapped" : "not swapped",
        },
    };

    public static string Describe(Operation op) => $"#{op.Id} {Call(op)} = {Result(op)}";
}
