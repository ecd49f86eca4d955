using System.Text;
using Cairn.Storage;

namespace Cairn.Kv.Tests;

/// <summary><see cref="KvStateMachine.Scrub"/>: a scrub pass over the store goes on across applies and across the file swap of a defragmentation.</summary>
public sealed class ScrubTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "cairn-kv-tests", Guid.NewGuid().ToString("N"));

    public ScrubTests() => Directory.CreateDirectory(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void A_pass_goes_on_across_applies_and_a_defragmentation_and_finds_nothing_in_a_sound_store()
    {
        using var sm = KvStateMachine.Open(Path.Combine(_dir, "kv"), new KvOptions { Storage = new StorageOptions { PageSize = 4096, MasterKey = Cairn.Crypto.StaticKeyProvider.CreateRandom() }, MaxKeyBytes = 200 });
        ulong index = 0;
        void Apply(int n, string prefix)
        {
            for (var i = 0; i < n; i++)
            {
                sm.Apply(++index, new KvCommand { Put = new PutRequest { Key = Encoding.UTF8.GetBytes($"{prefix}{i:D4}"), Value = new byte[300] } }.Encode());
            }
        }
        Apply(800, "a");
        var scrubber = new Scrubber();
        long pages = 0;
        var steps = 0;
        var defragmented = false;
        while (scrubber.PassesCompleted < 2)
        {
            var step = sm.Scrub(scrubber, 5);
            Assert.Empty(step.Damage);
            pages += step.PagesVerified;
            steps++;
            if (steps % 4 == 0) Apply(10, $"b{steps}-");
            if (steps == 10)
            {
                sm.Defragment(); // swaps the file while the pass is half done: the next step reads the new one
                defragmented = true;
            }
            Assert.True(steps < 10_000, "the passes never completed");
        }
        Assert.True(defragmented);
        Assert.True(pages > 100);
    }
}
