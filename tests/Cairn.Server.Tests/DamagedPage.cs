using Cairn.Crypto;
using Cairn.Storage;

namespace Cairn.Server.Tests;

/// <summary>
/// Damages a stopped member's database the way a bad disk does: one flipped byte in one page. With encryption every
/// page carries a GCM tag (without, a checksum), so the flipped page fails authentication when next read.
/// </summary>
internal static class DamagedPage
{
    /// <summary>
    /// Flips a byte in the page of tree <paramref name="tree"/> that holds <paramref name="damaged"/> but not
    /// <paramref name="intact"/> (a leaf, not a branch above both; null: any page the lookup needs), found by trying
    /// each page on a copy of the file through the storage API. Returns the page number.
    /// </summary>
    public static long Flip(string path, IKeyProvider? key, string tree, byte[] damaged, byte[]? intact)
    {
        var original = File.ReadAllBytes(path);
        var pageSize = PageSizeOf(path, key);
        var probe = path + ".probe";
        try
        {
            for (long page = 2; page < original.Length / pageSize; page++)
            {
                var copy = (byte[])original.Clone();
                copy[page * pageSize + pageSize / 2] ^= 0x01;
                File.WriteAllBytes(probe, copy);
                if (Fails(probe, key, tree, damaged) == page && (intact is null || Fails(probe, key, tree, intact) is null))
                {
                    File.WriteAllBytes(path, copy);
                    return page;
                }
            }
        }
        finally
        {
            File.Delete(probe);
        }
        throw new InvalidOperationException($"no page of {path} holds {Convert.ToHexString(damaged)} in tree '{tree}'{(intact is null ? "" : $" without {Convert.ToHexString(intact)}")}; write more data");
    }

    /// <summary>Flips a byte in page <paramref name="page"/>.</summary>
    public static void Flip(string path, IKeyProvider? key, long page)
    {
        var pageSize = PageSizeOf(path, key);
        using var f = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        f.Position = page * pageSize + pageSize / 2;
        var b = f.ReadByte();
        f.Position = page * pageSize + pageSize / 2;
        f.WriteByte((byte)(b ^ 0x01));
    }

    private static int PageSizeOf(string path, IKeyProvider? key)
    {
        using var db = Database.Open(path, new StorageOptions { MasterKey = key, CreateIfMissing = false });
        return db.PageSize;
    }

    /// <summary>The damaged page a lookup of <paramref name="k"/> runs into, or null when it reads fine.</summary>
    private static long? Fails(string path, IKeyProvider? key, string tree, byte[] k)
    {
        try
        {
            using var db = Database.Open(path, new StorageOptions { MasterKey = key, CreateIfMissing = false });
            using var tx = db.BeginRead();
            tx.OpenTree(tree).TryGet(k, out _);
            return null;
        }
        catch (CorruptDatabaseException e)
        {
            return e.PageNumber;
        }
    }
}
