using System.Globalization;
using Cairn.Protocol;

namespace Cairn.Client;

/// <summary>How a <see cref="CairnClient"/> reaches the cluster and how long it waits. <see cref="Validate"/> names the setting to fix.</summary>
public sealed record CairnClientOptions
{
    /// <summary>Members to try, HOST:PORT (HOST an IP address or a DNS name); the first reachable one serves requests.</summary>
    public IReadOnlyList<string> Endpoints { get; init; } = ["127.0.0.1:9379"];

    /// <summary>Longest a TCP connect plus the hello exchange may take, per endpoint.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Longest one call may take, retries included (streams — watches, snapshots — only for their first answer).
    /// Keep it above the members' own request timeout (7 s by default) so that a slow write is reported by the member.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>After connecting, ask for the member list and add every member's client address to <see cref="Endpoints"/>.</summary>
    public bool DiscoverEndpoints { get; init; } = true;

    /// <summary>First pause before a retry; it doubles up to <see cref="MaxRetryBackoff"/>.</summary>
    public TimeSpan RetryBackoff { get; init; } = TimeSpan.FromMilliseconds(20);

    /// <summary>Longest pause between retries.</summary>
    public TimeSpan MaxRetryBackoff { get; init; } = TimeSpan.FromMilliseconds(500);

    /// <summary>Largest response frame accepted from a member; a bigger one closes the connection as a protocol error.</summary>
    public int MaxResponseFrameBytes { get; init; } = 64 << 20;

    /// <summary>
    /// A user name and password for a cluster with auth enabled: each connection authenticates when it opens (the
    /// first with the password, the others with the token it got), and again with the password when a token expires.
    /// Null: no auth (a cluster with auth enabled then refuses requests with <see cref="CairnAuthException"/>).
    /// </summary>
    public CairnCredentials? Credentials { get; init; }

    /// <summary>
    /// A token from <see cref="CairnClient.AuthenticateAsync"/> (on any member of the cluster), used when there are no
    /// <see cref="Credentials"/>: a process given only a token never sees the password. When it expires, requests fail
    /// with <see cref="CairnAuthException"/> (InvalidAuthToken).
    /// </summary>
    public string? Token { get; init; }

    /// <summary>
    /// Seals every value before it is sent and opens every value that comes back (docs/client.md, "Value protection"),
    /// so the members store only ciphertext. Null (the default): values travel and are stored as given. The client does
    /// not own it: dispose it after the clients that use it.
    /// </summary>
    public ValueProtector? ValueProtector { get; init; }

    /// <summary>TLS to the members (their client ports run with --cert/--key); null: plaintext.</summary>
    public CairnTlsOptions? Tls { get; init; }

    /// <summary>Refuses settings that cannot work.</summary>
    public void Validate()
    {
        Tls?.Validate();
        if (Endpoints is null || Endpoints.Count == 0) throw new ArgumentException("Endpoints is empty; give at least one HOST:PORT (e.g. 127.0.0.1:9379).", nameof(Endpoints));
        foreach (var e in Endpoints) Endpoint.Parse(e);
        if (ConnectTimeout <= TimeSpan.Zero) throw new ArgumentException("ConnectTimeout must be positive.", nameof(ConnectTimeout));
        if (RequestTimeout <= TimeSpan.Zero) throw new ArgumentException("RequestTimeout must be positive.", nameof(RequestTimeout));
        if (RetryBackoff <= TimeSpan.Zero || MaxRetryBackoff < RetryBackoff) throw new ArgumentException("RetryBackoff must be positive and at most MaxRetryBackoff.", nameof(RetryBackoff));
        if (Credentials is { } c && string.IsNullOrEmpty(c.User)) throw new ArgumentException("Credentials has no user name.", nameof(Credentials));
        if (MaxResponseFrameBytes < Frame.DefaultMaxFrameBytes) throw new ArgumentException($"MaxResponseFrameBytes must be at least {Frame.DefaultMaxFrameBytes} (a member's default frame limit).", nameof(MaxResponseFrameBytes));
    }
}

/// <summary>A user name and password (the password never appears in <see cref="ToString"/>).</summary>
public sealed class CairnCredentials(string user, string password)
{
    /// <summary>The user name.</summary>
    public string User { get; } = user ?? throw new ArgumentNullException(nameof(user));

    /// <summary>The password.</summary>
    public string Password { get; } = password ?? throw new ArgumentNullException(nameof(password));

    /// <summary>The user name only.</summary>
    public override string ToString() => $"CairnCredentials {{ User = {User} }}";
}

/// <summary>HOST:PORT parsing shared by the client and the `cairn` verbs.</summary>
public static class Endpoint
{
    /// <summary>Splits HOST:PORT (IPv6 in brackets); throws <see cref="ArgumentException"/> naming the bad text.</summary>
    public static (string Host, int Port) Parse(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1
            || !int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) || port is 0 or > 65535)
        {
            throw new ArgumentException($"endpoint '{text}' is not HOST:PORT (e.g. 127.0.0.1:9379).", nameof(text));
        }
        var host = text[..colon];
        if (host.StartsWith('[') && host.EndsWith(']')) host = host[1..^1];
        if (host.Length == 0) throw new ArgumentException($"endpoint '{text}' has no host.", nameof(text));
        return (host, port);
    }

    /// <summary>Whether a published address can be dialed (not 0.0.0.0 or [::], which only say "every interface").</summary>
    public static bool IsDialable(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return false;
        try
        {
            var (host, _) = Parse(text);
            return host is not ("0.0.0.0" or "::");
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
