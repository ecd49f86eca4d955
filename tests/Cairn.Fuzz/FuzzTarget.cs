namespace Cairn.Fuzz;

/// <summary>
/// One decoder under fuzzing: the valid inputs it starts from (made by the real encoders), how one input is run, and
/// which exceptions count as a clean, typed refusal. Anything else that comes out of <see cref="Run"/> is a bug, and
/// so is a property violation (<see cref="FuzzPropertyException"/>), a hang or an allocation past
/// <see cref="AllocationBound"/>.
/// </summary>
public abstract class FuzzTarget : IDisposable
{
    /// <summary>Name used on the command line and in failure messages.</summary>
    public abstract string Name { get; }

    /// <summary>Valid inputs produced by the real encoders; each must run without any exception.</summary>
    public abstract IReadOnlyList<byte[]> Seeds { get; }

    /// <summary>Largest input the mutator produces.</summary>
    public virtual int MaxInputBytes => 1 << 16;

    /// <summary>Runs one input through the decoder; throws what the decoder throws.</summary>
    public abstract void Run(byte[] input);

    /// <summary>Runs a seed: like <see cref="Run"/>, but a refusal the stream would survive (a malformed frame answered with an error) also fails.</summary>
    public virtual void RunSeed(byte[] input) => Run(input);

    /// <summary>True for the typed exceptions the decoder may raise on bad input.</summary>
    public abstract bool IsClean(Exception e);

    /// <summary>The clean exception types, for messages and docs.</summary>
    public abstract string CleanExceptions { get; }

    /// <summary>
    /// Bytes the run of one input may allocate on its thread: a fixed allowance for the decoder's own bookkeeping plus a
    /// multiple of the input's length. A length field read from the input must never size an allocation beyond it.
    /// </summary>
    public virtual long AllocationBound(int inputLength) => (256L << 10) + 64L * inputLength;

    /// <summary>One mutated input from <paramref name="seed"/> (and <paramref name="other"/>, for splicing).</summary>
    public virtual byte[] Mutate(Mutator m, byte[] seed, byte[] other) => m.Mutate(seed, other, MaxInputBytes);

    /// <summary>Releases files and sockets the target keeps.</summary>
    public virtual void Dispose() => GC.SuppressFinalize(this);
}

/// <summary>A decoder accepted an input but what it produced breaks a property it promises (e.g. a WAL recovered out of order).</summary>
public sealed class FuzzPropertyException(string message) : Exception(message);

/// <summary>A fuzz failure: the message names the target, seed, iteration, what went wrong, and the input in hex.</summary>
public sealed class FuzzFailureException(string message, Exception? inner = null) : Exception(message, inner);
