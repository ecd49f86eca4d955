using System.Diagnostics;

namespace Cairn.Server.Tests;

/// <summary>The `cairn` executable as a person runs it: a child process with its own working directory, HOME and input.</summary>
internal static class CairnProcess
{
    public static string Dll => Path.Combine(AppContext.BaseDirectory, "cairn.dll");

    /// <summary>A process of `cairn ARGS` (not yet started), with HOME set to <paramref name="home"/>.</summary>
    public static ProcessStartInfo StartInfo(string workingDirectory, string home, IEnumerable<string> args, IReadOnlyDictionary<string, string>? env = null)
    {
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory,
        };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        psi.Environment["HOME"] = home;
        psi.Environment["CAIRN_DEBUG"] = "";
        foreach (var (k, v) in env ?? new Dictionary<string, string>()) psi.Environment[k] = v;
        return psi;
    }

    /// <summary>What a run printed: its exit code, stdout (as text and as bytes) and stderr.</summary>
    public sealed record Result(int Code, string Out, string Err, byte[] OutBytes)
    {
        /// <summary>stderr's lines.</summary>
        public string[] ErrLines => Err.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>Runs `cairn ARGS` to its end (killed after <paramref name="timeout"/>, default 60 s).</summary>
    public static async Task<Result> RunAsync(string workingDirectory, string home, string[] args, byte[]? stdin = null, IReadOnlyDictionary<string, string>? env = null, TimeSpan? timeout = null)
    {
        using var p = Process.Start(StartInfo(workingDirectory, home, args, env))!;
        var bytes = new MemoryStream();
        var stdout = p.StandardOutput.BaseStream.CopyToAsync(bytes);
        var stderr = p.StandardError.ReadToEndAsync();
        if (stdin is not null) await p.StandardInput.BaseStream.WriteAsync(stdin);
        p.StandardInput.Close();
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(60));
        try
        {
            await p.WaitForExitAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            p.Kill(entireProcessTree: true);
            throw new TimeoutException($"cairn {string.Join(' ', args)} did not end; stderr: {await stderr}");
        }
        await stdout;
        return new Result(p.ExitCode, System.Text.Encoding.UTF8.GetString(bytes.ToArray()), await stderr, bytes.ToArray());
    }
}
