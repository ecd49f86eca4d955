using System.Text;

namespace Cairn.Cli;

/// <summary>
/// The streams one `cairn` invocation uses: tests pass their own, <see cref="Program"/> the console's. Standard input
/// is bytes (<see cref="In"/>), so `cairn put k &lt; file` stores the file exactly; <see cref="InText"/> reads it as
/// UTF-8 text for the verbs that read lines (txn, passwords).
/// </summary>
internal sealed class CliIo(TextWriter stdout, TextWriter stderr, Stream stdin, bool terminal = false, Stream? rawOut = null)
{
    private TextReader? _text;

    /// <summary>Standard output.</summary>
    public TextWriter Out { get; } = stdout;

    /// <summary>Standard error.</summary>
    public TextWriter Err { get; } = stderr;

    /// <summary>Standard output as bytes, for keys and values printed exactly (null: through <see cref="Out"/> as UTF-8).</summary>
    public Stream? RawOut { get; } = rawOut;

    /// <summary>Standard input, as bytes.</summary>
    public Stream In { get; } = stdin;

    /// <summary>Whether standard input is a terminal a password may be typed into without echo.</summary>
    public bool Terminal { get; } = terminal;

    /// <summary>Standard input as UTF-8 text.</summary>
    public TextReader InText => _text ??= new StreamReader(In, new UTF8Encoding(false), detectEncodingFromByteOrderMarks: false, bufferSize: 4096, leaveOpen: true);

    /// <summary>Writes <paramref name="bytes"/> and a newline to standard output exactly, as etcdctl prints values.</summary>
    public void WriteLine(ReadOnlySpan<byte> bytes)
    {
        if (RawOut is null)
        {
            Out.WriteLine(Encoding.UTF8.GetString(bytes));
            return;
        }
        Out.Flush();
        RawOut.Write(bytes);
        RawOut.WriteByte((byte)'\n');
        RawOut.Flush();
    }

    /// <summary>Streams with <paramref name="stdin"/> as standard input (tests).</summary>
    public static CliIo Of(TextWriter stdout, TextWriter stderr, string stdin = "") => new(stdout, stderr, new MemoryStream(Encoding.UTF8.GetBytes(stdin)));
}
