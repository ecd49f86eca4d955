namespace Cairn.Storage;

/// <summary>
/// Named places on the commit path where a test can make the process stop dead, to prove recovery from exactly that
/// moment. Armed by the environment variable <c>CAIRN_FAILPOINT=name</c> (the process exits with code 137, like
/// SIGKILL) or by <see cref="Arm"/>; disarmed, each costs one static read.
/// </summary>
public static class Failpoints
{
    /// <summary>Creating a file: after the new file is written and synced under its temporary name, before the rename.</summary>
    public const string BeforeCreateRename = "create.before-rename";

    /// <summary>After the transaction's pages are written, before they are synced.</summary>
    public const string BeforeDataSync = "commit.before-data-sync";

    /// <summary>After the pages are synced, before the meta page is written.</summary>
    public const string BeforeMetaWrite = "commit.before-meta-write";

    /// <summary>After the meta page is written, before it is synced.</summary>
    public const string BeforeMetaSync = "commit.before-meta-sync";

    /// <summary>After the meta page is synced, before the commit returns.</summary>
    public const string AfterMetaSync = "commit.after-meta-sync";

    private static volatile string? s_armed = Environment.GetEnvironmentVariable("CAIRN_FAILPOINT");
    private static Action<string>? s_action;

    /// <summary>Arms <paramref name="name"/>: when reached, <paramref name="action"/> runs (default: exit the process with code 137).</summary>
    public static void Arm(string name, Action<string>? action = null)
    {
        s_action = action;
        s_armed = name;
    }

    /// <summary>Disarms every failpoint.</summary>
    public static void Disarm()
    {
        s_armed = null;
        s_action = null;
    }

    internal static void Hit(string name)
    {
        var armed = s_armed;
        if (armed is null || !string.Equals(armed, name, StringComparison.Ordinal)) return;
        var action = s_action;
        if (action is not null) action(name);
        else Environment.Exit(137);
    }
}
