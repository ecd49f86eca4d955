using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Cairn.Server;

/// <summary>
/// A small HTTP/1.1 responder for operators and scrapers: GET /metrics (Prometheus text format) and GET /health
/// (200 when a leader is known, 503 otherwise). One request per connection; anything else is 404.
/// </summary>
internal sealed class MetricsServer(Member member, Socket listener) : IDisposable
{
    private readonly Socket _listener = listener; // bound and listening (MemberListeners)
    private readonly CancellationTokenSource _stop = new();

    public void Start()
    {
        _ = AcceptAsync();
    }

    public IPEndPoint Endpoint => (IPEndPoint)_listener.LocalEndPoint!;

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var socket = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
                _ = ServeAsync(socket);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
            }
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        try
        {
            using (socket)
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
                var buffer = new byte[4096];
                var n = 0;
                while (n < buffer.Length)
                {
                    var read = await socket.ReceiveAsync(buffer.AsMemory(n), SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (read == 0) break;
                    n += read;
                    if (buffer.AsSpan(0, n).IndexOf("\r\n\r\n"u8) >= 0) break;
                }
                var line = Encoding.ASCII.GetString(buffer, 0, n).Split("\r\n")[0].Split(' ');
                var path = line.Length >= 2 && line[0] == "GET" ? line[1] : "";
                var (status, body, type) = path switch
                {
                    "/metrics" => ("200 OK", member.MetricsText(), "text/plain; version=0.0.4"),
                    "/health" => member.Leader != 0 ? ("200 OK", "{\"health\":\"true\"}\n", "application/json") : ("503 Service Unavailable", "{\"health\":\"false\",\"reason\":\"no leader\"}\n", "application/json"),
                    _ => ("404 Not Found", "try /metrics or /health\n", "text/plain"),
                };
                var bytes = Encoding.UTF8.GetBytes(body);
                var head = Encoding.ASCII.GetBytes($"HTTP/1.1 {status}\r\nContent-Type: {type}\r\nContent-Length: {bytes.Length}\r\nConnection: close\r\n\r\n");
                await socket.SendAsync(head, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                await socket.SendAsync(bytes, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                socket.Shutdown(SocketShutdown.Both);
            }
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Dispose();
    }
}
