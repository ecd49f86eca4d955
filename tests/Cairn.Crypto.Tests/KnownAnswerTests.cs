using System.Security.Cryptography;

namespace Cairn.Crypto.Tests;

/// <summary>
/// Known-answer vectors from aws-lc and from McGrew &amp; Viega's GCM specification (TestData/SOURCES.md),
/// run through both the intrinsic path and the forced AesGcm fallback.
/// </summary>
public sealed class KnownAnswerTests
{
    public static TheoryData<string, int, bool> Vectors()
    {
        var data = new TheoryData<string, int, bool>();
        foreach (string file in new[] { GcmVectorFile.AwsLc, GcmVectorFile.McGrewViega })
        {
            for (int i = 0; i < GcmVectorFile.Load(file).Count; i++)
            {
                data.Add(file, i, false);
                data.Add(file, i, true);
            }
        }

        return data;
    }

    [Fact]
    public void Vector_files_hold_every_case()
    {
        IReadOnlyList<GcmVector> awsLc = GcmVectorFile.Load(GcmVectorFile.AwsLc);
        IReadOnlyList<GcmVector> spec = GcmVectorFile.Load(GcmVectorFile.McGrewViega);

        // Counts from SOURCES.md: a parser that drops or merges blocks fails here.
        Assert.Equal(87, awsLc.Count);
        Assert.Equal(66, awsLc.Count(v => v.Nonce.Length == 12));
        Assert.Equal(21, awsLc.Count(v => v.Nonce.Length != 12));
        Assert.Equal(6, spec.Count);
        Assert.Equal([12, 12, 12, 12, 8, 60], spec.Select(v => v.Nonce.Length));

        // Neither file has truncated tags (so none below AesGcm's 12-byte minimum to refuse); the
        // vector test checks 12..15-byte prefixes of each full tag instead.
        Assert.All(awsLc.Concat(spec), v => Assert.Equal(16, v.Tag.Length));
        Assert.All(awsLc.Concat(spec), v => Assert.Equal(32, v.Key.Length));
        Assert.All(awsLc.Concat(spec), v => Assert.Equal(v.Plaintext.Length, v.Ciphertext.Length));
        Assert.Contains(awsLc, v => v.Plaintext.Length == 0);
        Assert.Contains(awsLc, v => v.AssociatedData.Length == 0);
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Vector_round_trips_and_rejects_tampering(string file, int index, bool forceFallback)
    {
        GcmVector v = GcmVectorFile.Load(file)[index];
        using var cipher = new Aes256Gcm(v.Key, forceFallback);
        Assert.Equal(Aes256Gcm.IsHardwareAccelerated && !forceFallback, cipher.UsesIntrinsics);

        // Encrypt, separate buffers and in place.
        byte[] ciphertext = new byte[v.Plaintext.Length];
        byte[] tag = new byte[16];
        cipher.Encrypt(v.Nonce, v.Plaintext, ciphertext, tag, v.AssociatedData);
        AssertBytes(v.Ciphertext, ciphertext, v, "ciphertext");
        AssertBytes(v.Tag, tag, v, "tag");

        byte[] buffer = (byte[])v.Plaintext.Clone();
        cipher.Encrypt(v.Nonce, buffer, buffer, tag, v.AssociatedData);
        AssertBytes(v.Ciphertext, buffer, v, "in-place ciphertext");

        // Decrypt, separate buffers and in place.
        byte[] plaintext = new byte[v.Plaintext.Length];
        cipher.Decrypt(v.Nonce, v.Ciphertext, v.Tag, plaintext, v.AssociatedData);
        AssertBytes(v.Plaintext, plaintext, v, "plaintext");

        cipher.Decrypt(v.Nonce, buffer, v.Tag, buffer, v.AssociatedData);
        AssertBytes(v.Plaintext, buffer, v, "in-place plaintext");

        // Truncated tags are the prefix of the full one (SP 800-38D §5.2.1.2), 12 bytes at least.
        for (int length = Aes256Gcm.MinTagSizeInBytes; length < 16; length++)
        {
            byte[] shortTag = new byte[length];
            cipher.Encrypt(v.Nonce, v.Plaintext, ciphertext, shortTag, v.AssociatedData);
            AssertBytes(v.Tag.AsSpan(0, length).ToArray(), shortTag, v, $"{length}-byte tag");
            cipher.Decrypt(v.Nonce, v.Ciphertext, shortTag, plaintext, v.AssociatedData);
            AssertBytes(v.Plaintext, plaintext, v, $"plaintext under a {length}-byte tag");
        }

        // One flipped bit anywhere is refused, and the plaintext buffer is left zeroed.
        var random = new Random(index);
        if (v.Ciphertext.Length > 0)
        {
            AssertRejected(cipher, v, v.Nonce, FlipBit(v.Ciphertext, random), v.Tag, v.AssociatedData, "ciphertext bit");
        }

        AssertRejected(cipher, v, v.Nonce, v.Ciphertext, FlipBit(v.Tag, random), v.AssociatedData, "tag bit");
        AssertRejected(cipher, v, FlipBit(v.Nonce, random), v.Ciphertext, v.Tag, v.AssociatedData, "nonce bit");

        byte[] associatedData = v.AssociatedData.Length > 0 ? FlipBit(v.AssociatedData, random) : [0];
        AssertRejected(cipher, v, v.Nonce, v.Ciphertext, v.Tag, associatedData, "associated-data bit");
    }

    private static void AssertRejected(
        Aes256Gcm cipher, GcmVector v, byte[] nonce, byte[] ciphertext, byte[] tag, byte[] associatedData, string what)
    {
        byte[] plaintext = new byte[ciphertext.Length];
        plaintext.AsSpan().Fill(0xA5);
        Assert.Throws<AuthenticationTagMismatchException>(
            () => cipher.Decrypt(nonce, ciphertext, tag, plaintext, associatedData));
        Assert.True(plaintext.All(b => b == 0), $"{v}: plaintext not wiped after a flipped {what}");
    }

    private static byte[] FlipBit(byte[] data, Random random)
    {
        byte[] copy = (byte[])data.Clone();
        int bit = random.Next(copy.Length * 8);
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }

    private static void AssertBytes(byte[] expected, byte[] actual, GcmVector v, string what)
    {
        if (!expected.AsSpan().SequenceEqual(actual))
        {
            Assert.Fail($"{v}: {what} differs\n expected {Convert.ToHexString(expected)}\n actual   {Convert.ToHexString(actual)}");
        }
    }
}
