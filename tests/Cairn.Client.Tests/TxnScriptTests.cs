using System.Text;
using Cairn.Kv;

namespace Cairn.Client.Tests;

/// <summary>etcdctl's text form of a transaction.</summary>
public sealed class TxnScriptTests
{
    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    [Fact]
    public void Sections_compares_and_operations_parse_as_etcdctl_writes_them()
    {
        var prompts = new StringWriter();
        var txn = TxnScript.Parse(new StringReader("""
            mod("a") > "3"
            value("b b") != "say \"hi\""
            lease("c") = "1f"
            ver("d") < "-1"

            put a "two words" --lease=ff
            get a z
            del p --prefix

            get a
            """), prompts);
        Assert.Equal(
            [("a", CompareTarget.Mod, CompareResult.Greater, "", 3L), ("b b", CompareTarget.Value, CompareResult.NotEqual, "say \"hi\"", 0), ("c", CompareTarget.Lease, CompareResult.Equal, "", 0x1f), ("d", CompareTarget.Version, CompareResult.Less, "", -1)],
            txn.Compares.Select(c => (S(c.Key), c.Target, c.Result, S(c.Value), c.Number)));
        Assert.Equal(("a", "two words", 0xffL), (S(txn.Success[0].Put!.Key), S(txn.Success[0].Put!.Value), txn.Success[0].Put!.Lease));
        Assert.Equal(("a", "z"), (S(txn.Success[1].Range!.Key), S(txn.Success[1].Range!.RangeEnd)));
        Assert.Equal(("p", "q"), (S(txn.Success[2].Delete!.Key), S(txn.Success[2].Delete!.RangeEnd)));
        Assert.Equal("a", S(Assert.Single(txn.Failure).Range!.Key));
        Assert.Equal("compares:\nsuccess requests (get, put, del):\nfailure requests (get, put, del):\n", prompts.ToString().ReplaceLineEndings("\n"));
    }

    [Theory]
    [InlineData("size(\"a\") = \"1\"", "compare target 'size'")]
    [InlineData("mod(\"a\") ~ \"1\"", "compare operator '~'")]
    [InlineData("mod(\"a\") > \"x\"", "'x' is not a whole number")]
    [InlineData("mod \"a\" > 1", "is not target(\"key\") op \"value\"")]
    [InlineData("value(\"a) = \"1\"", "unterminated quote")]
    public void A_bad_compare_is_quoted_in_the_error(string line, string expected)
    {
        var e = Assert.Throws<FormatException>(() => TxnScript.Parse(new StringReader(line + "\n\n\n")));
        Assert.Contains(expected, e.Message);
    }

    [Theory]
    [InlineData("put a", "put needs KEY and VALUE")]
    [InlineData("frob a", "'frob' is not put, get or del")]
    [InlineData("get", "needs a verb and a key")]
    [InlineData("put a b --lease=zz", "lease id 'zz' is not hexadecimal")]
    public void A_bad_operation_is_quoted_in_the_error(string line, string expected)
    {
        var e = Assert.Throws<FormatException>(() => TxnScript.Parse(new StringReader("\n" + line + "\n\n")));
        Assert.Contains(expected, e.Message);
    }
}
