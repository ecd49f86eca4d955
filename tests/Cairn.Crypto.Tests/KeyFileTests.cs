using System.Security.Cryptography;

namespace Cairn.Crypto.Tests;

/// <summary>Key files: created private and atomically, refused when others may read them or when they hold no key.</summary>
[System.Runtime.Versioning.UnsupportedOSPlatform("windows")] // file modes are Unix's
public sealed class KeyFileTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-key-tests", Guid.NewGuid().ToString("N"));

    public KeyFileTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private string KeyFile(string text, UnixFileMode mode, string name = "master.key")
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, text);
        File.SetUnixFileMode(path, mode);
        return path;
    }

    private static byte[] Read(KeyFileProvider provider)
    {
        var key = new byte[32];
        provider.GetKey(key);
        return key;
    }

    [Fact]
    public void A_new_key_file_is_private_holds_64_hex_digits_and_leaves_no_temporary_file()
    {
        var path = Path.Combine(_dir, "sub", "master.key");
        var provider = KeyFileProvider.OpenOrCreate(path);
        Assert.Equal(Private, File.GetUnixFileMode(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        var text = File.ReadAllText(path);
        Assert.Matches("^[0-9a-f]{64}\n$", text);
        Assert.Equal(Convert.FromHexString(text.Trim()), Read(provider));
        Assert.Equal(["master.key"], Directory.GetFiles(Path.GetDirectoryName(path)!).Select(Path.GetFileName));
        Assert.Equal(Read(provider), Read(KeyFileProvider.OpenOrCreate(path))); // the second call opens, not creates
    }

    [Theory]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead, "0644")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, "0640")]
    [InlineData(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.OtherWrite, "0602")]
    public void A_key_file_others_may_read_or_write_is_refused_unless_allowed(UnixFileMode mode, string octal)
    {
        var hex = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
        var path = KeyFile(hex, mode);
        foreach (var open in new Func<KeyFileProvider>[] { () => KeyFileProvider.Open(path), () => KeyFileProvider.OpenOrCreate(path) })
        {
            var e = Assert.Throws<KeyFileException>(open);
            Assert.Equal(KeyFileProblem.InsecurePermissions, e.Problem);
            Assert.Equal(path, e.Path);
            Assert.Equal(mode, e.Mode);
            Assert.Contains($"{path} has mode {octal}", e.Message, StringComparison.Ordinal);
            Assert.Contains($"chmod 600 {path}", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal(Convert.FromHexString(hex), Read(KeyFileProvider.Open(path, allowInsecurePermissions: true)));
        Assert.Equal(Convert.FromHexString(hex), Read(KeyFileProvider.OpenOrCreate(path, allowInsecurePermissions: true)));
        Assert.Equal(mode, File.GetUnixFileMode(path)); // allowing it changes nothing on disk

        File.SetUnixFileMode(path, UnixFileMode.UserRead); // 0400 is private too
        Assert.Equal(Convert.FromHexString(hex), Read(KeyFileProvider.Open(path)));
    }

    [Theory]
    [InlineData("not a key at all")]
    [InlineData("")]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd")]     // 62 digits: 31 bytes
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeg")]   // 64 characters, one not hex
    [InlineData("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gIQ==")]                   // base64 of 34 bytes
    public void A_key_file_without_a_key_is_a_typed_error_naming_the_file_and_the_fix(string content)
    {
        var path = KeyFile(content, Private);
        var e = Assert.Throws<KeyFileException>(() => KeyFileProvider.Open(path));
        Assert.Equal(KeyFileProblem.Malformed, e.Problem);
        Assert.Equal(path, e.Path);
        Assert.Null(e.Mode);
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("openssl rand -hex 32", e.Message, StringComparison.Ordinal);
        Assert.IsAssignableFrom<IOException>(e); // callers that report I/O errors report this one too
        Assert.Equal(KeyFileProblem.Malformed, Assert.Throws<KeyFileException>(() => KeyFileProvider.OpenOrCreate(path)).Problem);
    }

    [Fact]
    public void A_key_file_spoiled_after_open_fails_at_use_with_the_same_typed_error()
    {
        var path = KeyFile(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32)), Private);
        var provider = KeyFileProvider.Open(path);
        File.WriteAllText(path, "garbage");
        Assert.Equal(KeyFileProblem.Malformed, Assert.Throws<KeyFileException>(() => Read(provider)).Problem);
        File.Delete(path);
        Assert.Contains("openssl rand -hex 32 >", Assert.Throws<FileNotFoundException>(() => Read(provider)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Base64_and_surrounding_white_space_are_accepted()
    {
        var key = RandomNumberGenerator.GetBytes(32);
        Assert.Equal(key, Read(KeyFileProvider.Open(KeyFile("  " + Convert.ToBase64String(key) + "\r\n", Private))));
        Assert.Equal(key, Read(KeyFileProvider.Open(KeyFile(Convert.ToHexString(key) + "\n", Private, "upper.key"))));
    }

    [Fact]
    public void A_missing_key_file_says_how_to_make_one_without_naming_code()
    {
        var path = Path.Combine(_dir, "none.key");
        var e = Assert.Throws<FileNotFoundException>(() => KeyFileProvider.Open(path));
        Assert.Equal(path, e.FileName);
        Assert.Contains($"No key file at {path}", e.Message, StringComparison.Ordinal);
        Assert.Contains($"'openssl rand -hex 32 > {path}; chmod 600 {path}'", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("KeyFileProvider", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Threads_racing_to_create_one_key_file_all_get_the_same_key()
    {
        const int threads = 8;
        for (var round = 0; round < 25; round++)
        {
            var path = Path.Combine(_dir, $"race-{round}.key");
            using var start = new Barrier(threads);
            var keys = await Task.WhenAll(Enumerable.Range(0, threads).Select(_ => Task.Factory.StartNew(() =>
            {
                start.SignalAndWait();
                return Convert.ToHexString(Read(KeyFileProvider.OpenOrCreate(path)));
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)));
            Assert.Single(keys.Distinct());
            Assert.Equal(keys[0], Convert.ToHexString(Read(KeyFileProvider.Open(path))));
            Assert.Equal(Private, File.GetUnixFileMode(path));
        }
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp"));
    }
}
