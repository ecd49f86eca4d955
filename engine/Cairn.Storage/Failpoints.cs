namespace Cairn.Storage;

/// <summary>
/// Named places on the commit path where a test can make the process stop dead, to prove recovery from exactly that
/// moment: <see cref="StorageOptions.Failpoint"/> is called with the name at each. Only a test sets it (the crash
/// tests' child process exits there, like SIGKILL); the engine reads no environment for it and never exits the
/// process itself, and unset, each costs one null check.
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
}
