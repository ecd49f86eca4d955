using System.Text;
using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Client.Tests;

/// <summary>Reads and writes through the client against a real member, checked against a model of the key space.</summary>
public sealed class KvTests(SingleMember member) : IClassFixture<SingleMember>
{
    private static byte[] B(string s) => Encoding.UTF8.GetBytes(s);

    private static string S(byte[] b) => Encoding.UTF8.GetString(b);

    /// <summary>The model: each key's value and counters, one copy per revision.</summary>
    private sealed record Entry(string Value, long Create, long Mod, long Version);

    private sealed class Model
    {
        public readonly List<SortedDictionary<string, Entry>> History = [];
        public long Base;                 // the revision History[0] holds
        public long Compacted;

        public long Revision => Base + History.Count - 1;

        public SortedDictionary<string, Entry> Current => History[^1];

        public SortedDictionary<string, Entry> At(long rev) => History[(int)(rev - Base)];

        public SortedDictionary<string, Entry> Next()
        {
            var next = new SortedDictionary<string, Entry>(Current, StringComparer.Ordinal);
            History.Add(next);
            return next;
        }
    }

    private static void AssertKv(string key, Entry? expected, KeyValue? actual, string context)
    {
        if (expected is null)
        {
            Assert.True(actual is null, $"{context}: {key} should be absent, is {(actual is null ? "" : S(actual.Value))}");
            return;
        }
        Assert.True(actual is not null, $"{context}: {key} missing");
        Assert.Equal(key, S(actual!.Key));
        Assert.True((expected.Value, expected.Create, expected.Mod, expected.Version) == (S(actual.Value), actual.CreateRevision, actual.ModRevision, actual.Version),
            $"{context}: {key} is ({S(actual.Value)}, c{actual.CreateRevision}, m{actual.ModRevision}, v{actual.Version}), model says {expected}");
    }

    private static async Task AssertPrefixAsync(CairnClient client, Model model, long rev, string context)
    {
        var (_, range) = await client.RangeAsync(new RangeRequest { Key = B("k/"), RangeEnd = RangeRequest.Prefix(B("k/")), Revision = rev });
        var expected = model.At(rev == 0 ? model.Revision : rev);
        Assert.Equal(expected.Count, range.Count);
        Assert.Equal(expected.Keys, range.Kvs.Select(kv => S(kv.Key)));
        foreach (var kv in range.Kvs) AssertKv(S(kv.Key), expected[S(kv.Key)], kv, context);
    }

    [Fact]
    public async Task Random_puts_gets_deletes_txns_and_compactions_match_a_model()
    {
        const int seed = 20240611;
        var rng = new Random(seed);
        await using var client = member.Cluster.Client();
        // Start from a clean slate of this test's prefix, at the member's current revision.
        await client.DeleteAsync("k/", prefix: true);
        var start = (await client.GetAsync("k/none")).Header.Revision;
        var model = new Model { Base = start };
        model.History.Add(new SortedDictionary<string, Entry>(StringComparer.Ordinal));
        for (var step = 0; step < 400; step++)
        {
            var key = $"k/{rng.Next(16):d2}";
            var context = $"seed {seed} step {step}";
            switch (rng.Next(10))
            {
                case 0 or 1 or 2:
                {
                    var value = $"v{step}";
                    var prev = model.Current.GetValueOrDefault(key);
                    var (h, put) = await client.PutAsync(key, value, prevKv: true);
                    var next = model.Next();
                    var rev = model.Revision;
                    next[key] = new Entry(value, prev?.Create ?? rev, rev, (prev?.Version ?? 0) + 1);
                    Assert.Equal(rev, h.Revision);
                    Assert.Equal(rev, put.Header.Revision);
                    AssertKv(key, prev, put.PrevKv, context + " prev kv");
                    break;
                }
                case 3 or 4:
                {
                    var consistency = rng.Next(2) == 0 ? Consistency.Linearizable : Consistency.Serializable;
                    var (h, kv) = await client.GetAsync(key, consistency);
                    Assert.Equal(model.Revision, h.Revision);
                    AssertKv(key, model.Current.GetValueOrDefault(key), kv, context);
                    break;
                }
                case 5:
                {
                    var prefix = rng.Next(4) == 0;
                    var victims = prefix ? model.Current.Keys.Where(k => k.StartsWith(key[..3], StringComparison.Ordinal)).ToList() : model.Current.ContainsKey(key) ? [key] : [];
                    var (h, del) = await client.DeleteAsync(prefix ? key[..3] : key, prefix, prevKv: true);
                    Assert.Equal(victims.Count, del.Deleted);
                    Assert.Equal(victims, del.PrevKvs.Select(kv => S(kv.Key)));
                    if (victims.Count > 0)
                    {
                        var next = model.Next();
                        foreach (var v in victims) next.Remove(v);
                    }
                    Assert.Equal(model.Revision, h.Revision);
                    break;
                }
                case 6 or 7:
                {
                    // Compare-and-swap on the version: right half the time, wrong the other half.
                    var current = model.Current.GetValueOrDefault(key);
                    var version = (current?.Version ?? 0) + (rng.Next(2) == 0 ? 0 : 1);
                    var other = $"k/{rng.Next(16):d2}";
                    var txn = new TxnRequest
                    {
                        Compares = [new Compare { Key = B(key), Target = CompareTarget.Version, Result = CompareResult.Equal, Number = version }],
                        Success = other == key
                            ? [new TxnOp { Put = new PutRequest { Key = B(key), Value = B($"t{step}") } }]
                            : [new TxnOp { Put = new PutRequest { Key = B(key), Value = B($"t{step}") } }, new TxnOp { Delete = new DeleteRangeRequest { Key = B(other) } }],
                        Failure = [new TxnOp { Range = new RangeRequest { Key = B(key) } }],
                    };
                    var (h, resp) = await client.TxnAsync(txn);
                    var succeeded = version == (current?.Version ?? 0);
                    Assert.Equal(succeeded, resp.Succeeded);
                    if (succeeded)
                    {
                        var next = model.Next();
                        var rev = model.Revision;
                        next[key] = new Entry($"t{step}", current?.Create ?? rev, rev, (current?.Version ?? 0) + 1);
                        if (other != key)
                        {
                            Assert.Equal(next.Remove(other) ? 1 : 0, resp.Responses[1].Delete!.Deleted);
                        }
                    }
                    else
                    {
                        AssertKv(key, current, resp.Responses[0].Range!.Kvs.SingleOrDefault(), context + " txn failure read");
                    }
                    Assert.Equal(model.Revision, h.Revision);
                    break;
                }
                case 8:
                {
                    // A read at a past revision: the model's copy of that revision, or Compacted below the compaction.
                    var rev = model.Base + rng.Next(model.History.Count);
                    if (rev < model.Compacted)
                    {
                        var e = await Assert.ThrowsAsync<CairnCompactedException>(() => client.RangeAsync(new RangeRequest { Key = B("k/"), RangeEnd = RangeRequest.Prefix(B("k/")), Revision = rev }));
                        Assert.Equal(model.Compacted, e.CompactRevision);
                        Assert.Equal(ErrorCode.Compacted, e.Code);
                    }
                    else if (rev > 0)
                    {
                        await AssertPrefixAsync(client, model, rev, context + $" at revision {rev}");
                    }
                    break;
                }
                case 9:
                {
                    if (rng.Next(3) != 0 || model.Revision - 3 <= Math.Max(model.Compacted, model.Base)) break;
                    var rev = model.Revision - 3;
                    var (h, _) = await client.CompactAsync(rev);
                    model.Compacted = rev;
                    Assert.Equal(model.Revision, h.Revision);
                    break;
                }
            }
        }
        await AssertPrefixAsync(client, model, 0, $"seed {seed}, at the end");
    }

    [Fact]
    public async Task A_thousand_requests_in_flight_on_one_connection_are_each_answered_with_their_own_answer()
    {
        await using var client = member.Cluster.Client();
        const int n = 1000;
        // Puts go through the log; serializable gets of keys written before are answered at once: the answers overtake each other.
        await Task.WhenAll(Enumerable.Range(0, 100).Select(i => client.PutAsync($"seeded/{i}", $"s{i}")));
        var completions = new int[2 * n];
        var done = 0;
        var puts = new List<Task<Answer<PutResponse>>>();
        var gets = new List<Task<Answer<KeyValue?>>>();
        for (var i = 0; i < n; i++)
        {
            var at = i;
            puts.Add(Record(client.PutAsync($"many/{at:d4}", $"value {at}"), 2 * at));
            gets.Add(Record(client.GetAsync($"seeded/{at % 100}", Consistency.Serializable), 2 * at + 1));
        }
        async Task<T> Record<T>(Task<T> call, int slot)
        {
            var r = await call;
            completions[slot] = Interlocked.Increment(ref done);
            return r;
        }
        var putAnswers = await Task.WhenAll(puts);
        var getAnswers = await Task.WhenAll(gets);
        for (var i = 0; i < n; i++) Assert.Equal($"s{i % 100}", S(getAnswers[i].Body!.Value));
        // Every put made its own revision.
        Assert.Equal(n, putAnswers.Select(a => a.Header.Revision).Distinct().Count());
        // Answers came out of order: gets sent after their put were answered before it.
        Assert.Contains(Enumerable.Range(0, n), i => completions[2 * i + 1] < completions[2 * i]);
        // And each put stored its own value.
        var reads = await Task.WhenAll(Enumerable.Range(0, n).Select(i => client.GetAsync($"many/{i:d4}")));
        for (var i = 0; i < n; i++) Assert.Equal($"value {i}", S(reads[i].Body!.Value));
        var (_, range) = await client.RangeAsync(new RangeRequest { Key = B("many/"), RangeEnd = RangeRequest.Prefix(B("many/")), CountOnly = true });
        Assert.Equal(n, range.Count);
        // All on one connection, and requests queued together left in shared socket writes.
        Assert.Equal(1, client.OpenConnections);
        var (writes, frames) = client.WriteCounters;
        Assert.True(frames >= 3 * n + 100, $"{frames} frames sent");
        Assert.True(writes < frames / 2, $"{frames} frames went out in {writes} socket writes: requests were not coalesced");
    }

    [Fact]
    public async Task Byte_keys_prev_kv_leases_and_ignore_value_round_trip()
    {
        await using var client = member.Cluster.Client();
        byte[] key = [0, 1, 2, 255, 254];
        byte[] value = [.. Enumerable.Range(0, 300_000).Select(i => (byte)(i * 7))];
        var (h1, _) = await client.PutAsync(key, value);
        var (_, got) = await client.GetAsync(key.AsMemory());
        Assert.Equal(value, got!.Value);
        Assert.Equal(h1.Revision, got.ModRevision);
        var lease = (await client.LeaseGrantAsync(30)).Body.Id;
        var (_, put) = await client.PutAsync(new PutRequest { Key = key, IgnoreValue = true, Lease = lease, PrevKv = true });
        Assert.Equal(value, put.PrevKv!.Value);
        var (_, after) = await client.GetAsync(key.AsMemory(), Consistency.Serializable);
        Assert.Equal(value, after!.Value);
        Assert.Equal(lease, after.Lease);
        Assert.Equal(2, after.Version);
        await client.LeaseRevokeAsync(lease);
        Assert.Null((await client.GetAsync(key.AsMemory())).Body);
    }

    [Fact]
    public async Task A_request_over_the_frame_limit_is_refused_before_sending_and_the_connection_carries_on()
    {
        await using var client = member.Cluster.Client();
        var hello = await client.ConnectAsync();
        var e = await Assert.ThrowsAsync<CairnException>(() => client.PutAsync(B("huge"), new byte[hello.MaxFrameBytes + 1]));
        Assert.Equal(ErrorCode.FrameTooLarge, e.Code);
        Assert.Contains("frame limit", e.Message);
        await client.PutAsync("after-huge", "fine");
        Assert.Equal("fine", S((await client.GetAsync("after-huge")).Body!.Value));
        Assert.Equal(1, client.OpenConnections);
    }

    [Fact]
    public async Task Server_refusals_become_typed_exceptions_with_the_members_message()
    {
        await using var client = member.Cluster.Client();
        var notFound = await Assert.ThrowsAsync<CairnLeaseNotFoundException>(() => client.LeaseRevokeAsync(0x1234));
        Assert.Equal(ErrorCode.LeaseNotFound, notFound.Code);
        Assert.Equal(member.Endpoint, notFound.Endpoint);
        var future = await Assert.ThrowsAsync<CairnException>(() => client.RangeAsync(new RangeRequest { Key = B("x"), Revision = 1L << 40 }));
        Assert.Equal(ErrorCode.FutureRevision, future.Code);
        Assert.Contains("future", future.Message);
        var dup = await Assert.ThrowsAsync<CairnException>(() => client.TxnAsync(new TxnRequest
        {
            Success = [new TxnOp { Put = new PutRequest { Key = B("dup") } }, new TxnOp { Put = new PutRequest { Key = B("dup") } }],
        }));
        Assert.Equal(ErrorCode.Conflict, dup.Code);
    }
}
