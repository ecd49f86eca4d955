using System.Net;

namespace Cairn.Server;

/// <summary>
/// Owner: its front door (a raw TCP <see cref="ClientSession"/>, or one call or stream of etcd's gRPC API).
/// A client's end of a front door, as the request router sees it: where answers go, who the client is (auth), the
/// watches it holds, and when it goes away. Requests from peers and from the member itself come through other responders.
/// </summary>
internal abstract class ClientResponder : Responder
{
    private SessionAuth? _auth;
    private SessionWatches? _watches;

    /// <summary>Who this client acts as once it authenticated (null: nobody yet); replaced whole, read without a lock.</summary>
    public SessionAuth? Auth
    {
        get => Volatile.Read(ref _auth);
        set => Volatile.Write(ref _auth, value);
    }

    /// <summary>
    /// The user named by the client's certificate (its subject's common name) when the member requires client
    /// certificates (--client-cert-auth), as etcd does; null otherwise. Set before the first request is handled.
    /// </summary>
    public string? CertificateUser { get; protected set; }

    /// <summary>The client's address (failed logins are slowed down per user and address).</summary>
    public abstract IPAddress? RemoteAddress { get; }

    /// <summary>Canceled when the client goes away.</summary>
    public abstract CancellationToken Closed { get; }

    /// <summary>This client's watches (made on first use).</summary>
    public SessionWatches Watches => _watches ?? Interlocked.CompareExchange(ref _watches, new SessionWatches(this), null) ?? _watches;

    /// <summary>Completes once what was written so far has left (paces a snapshot stream to its reader).</summary>
    public abstract Task DrainAsync(CancellationToken cancellationToken);
}
