using System.Diagnostics;
using System.Net;

namespace Cairn.Server.Tests;

/// <summary>
/// The batched backend across a kill -9: writes acknowledged while their batches waited in the open storage
/// transaction (never committed to the database file) are replayed from the log at the next start.
/// </summary>
public sealed class BatchedBackendTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("cairn-backend-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    private Process Serve(int client, int peer)
    {
        var p = Process.Start(CairnProcess.StartInfo(_root, _root,
        [
            "serve", "--listen-grpc", "", "--name", "m1", "--data-dir", Path.Combine(_root, "m1"), "--plain",
            "--listen-client", $"127.0.0.1:{client}", "--listen-peer", $"127.0.0.1:{peer}", "--listen-metrics", "",
            "--initial-cluster", $"m1=127.0.0.1:{peer}", "--heartbeat-interval", "50", "--election-timeout", "500",
            // Nothing reaches the database file but through a read or the entry limit: only the log holds the writes.
            "--backend-batch-interval", "10m", "--backend-batch-limit", "1000000",
        ]))!;
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        return p;
    }

    [Fact]
    public async Task A_kill_9_before_the_backend_commit_loses_no_acknowledged_write()
    {
        var (client, peer) = (TestCluster.FreePort(), TestCluster.FreePort());
        var endpoint = new IPEndPoint(IPAddress.Loopback, client);
        using (var first = Serve(client, peer))
        {
            await using var c = await ConnectAsync(endpoint);
            for (var i = 0; i < 500; i++) await c.PutAsync($"k{i:D3}", $"v{i}");
            first.Kill();                                   // SIGKILL: no stop, no commit, no sync of the database
            await first.WaitForExitAsync();
        }
        // The database file alone lacks the writes: the restart must take them from the log.
        var kv = Path.Combine(_root, "m1", "member", "kv.db");
        using (var file = Kv.KvStateMachine.Open(kv, new Kv.KvOptions { BackendCommitInterval = TimeSpan.Zero }))
        {
            var held = file.Range(new Kv.RangeRequest { Key = "k"u8.ToArray(), RangeEnd = Kv.RangeRequest.Prefix("k"u8.ToArray()), CountOnly = true }).Count;
            Assert.True(held < 500, $"the database file already held {held} of the 500 writes: nothing was left to replay");
        }
        using (var second = Serve(client, peer))
        {
            try
            {
                await using var c = await ConnectAsync(endpoint);
                for (var i = 0; i < 500; i++) Assert.Equal($"v{i}", await c.GetAsync($"k{i:D3}", Protocol.Consistency.Serializable));
            }
            finally
            {
                second.Kill();
                await second.WaitForExitAsync();
            }
        }
    }

    private static async Task<TestClient> ConnectAsync(IPEndPoint endpoint)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                var c = await TestClient.ConnectAsync(endpoint);
                await c.PutAsync("ready", "1");
                return c;
            }
            catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ServerError && deadline.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(100);
            }
        }
    }
}
