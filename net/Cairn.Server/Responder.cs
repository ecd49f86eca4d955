using Cairn.Kv;
using Cairn.Protocol;

namespace Cairn.Server;

/// <summary>
/// Where a request's answer goes: a client connection, a peer that forwarded the request, or the member itself.
/// Writers take the buffer with <see cref="Begin"/>, write whole frames, and hand it back with <see cref="End"/>.
/// </summary>
internal abstract class Responder
{
    /// <summary>Takes the output buffer (under the responder's lock until <see cref="End"/>).</summary>
    public abstract FrameWriter Begin();

    /// <summary>Releases the buffer and sends what was written (soon, batched with other answers).</summary>
    public abstract void End();

    /// <summary>False once the other side is gone: answers are dropped.</summary>
    public abstract bool IsOpen { get; }

    /// <summary>A read view shared by the single-key reads of one batch of requests, or null to read without one (then the general path serves them).</summary>
    public virtual Kv.KvReadView? BatchView(Kv.KvStateMachine machine) => null;

    /// <summary>
    /// Writes one whole answer to request <paramref name="id"/>: the frame, <paramref name="header"/>, then what
    /// <paramref name="body"/> writes from <paramref name="state"/> (a static lambda: no closure per answer). Read what the
    /// body needs before calling: a damaged page found half way must not leave half a frame.
    /// </summary>
    public void Answer<T>(MessageType type, ulong id, WireHeader header, T state, Action<FrameWriter, T> body)
    {
        var w = Begin();
        try
        {
            w.BeginFrame(type, FrameFlags.Response, id);
            Messages.WriteHeader(w, header);
            try
            {
                body(w, state);
            }
            catch
            {
                w.AbandonFrame();   // no half frame on the wire: the caller answers with an error instead
                throw;
            }
            w.EndFrame();
        }
        finally
        {
            End();
        }
    }

    /// <summary>Writes an answer that is only the header.</summary>
    public void Answer(MessageType type, ulong id, WireHeader header) => Answer(type, id, header, 0, static (_, _) => { });

    /// <summary>Writes an error answer to request <paramref name="id"/>.</summary>
    public void Error(MessageType type, ulong id, ErrorCode code, string message)
    {
        var w = Begin();
        try
        {
            WriteError(w, id, code, message);
        }
        finally
        {
            End();
        }
    }

    public static void WriteError(FrameWriter w, ulong id, ErrorCode code, string message)
    {
        w.BeginFrame(MessageType.Error, FrameFlags.Response, id);
        Messages.WriteError(w, code, message);
        w.EndFrame();
    }

    /// <summary>The code a refused key-value command maps to.</summary>
    public static ErrorCode CodeOf(Exception e) => e switch
    {
        CompactedException => ErrorCode.Compacted,
        FutureRevisionException => ErrorCode.FutureRevision,
        LeaseNotFoundException => ErrorCode.LeaseNotFound,
        LeaseExistsException => ErrorCode.LeaseExists,
        NoSpaceException => ErrorCode.NoSpace,
        DuplicateKeyException => ErrorCode.Conflict,
        TooLargeException or KeyNotFoundForUpdateException or ArgumentException => ErrorCode.InvalidArgument,
        ProtocolException p => p.Code,
        AuthException => ErrorCode.AuthError,
        KvException => ErrorCode.InvalidArgument,
        _ => ErrorCode.Internal,
    };
}
