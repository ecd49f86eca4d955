using Cairn.Storage;

namespace Cairn.Kv;

public sealed partial class KvStateMachine
{
    /// <summary>
    /// One step of a background scrub of the store's file (<see cref="Scrubber.Step"/>): verifies about
    /// <paramref name="maxPages"/> more pages straight from the file, through a read transaction of its own, so it
    /// never blocks apply. Taken through the reader gate, so a defragmentation or snapshot install waits for the step
    /// rather than unmapping the file under it; the scrubber resumes in the new file by tree and key.
    /// </summary>
    public ScrubStep Scrub(Scrubber scrubber, int maxPages)
    {
        ArgumentNullException.ThrowIfNull(scrubber);
        var db = EnterRead(latest: false); // the file as committed is what is checked: no commit just for it
        try
        {
            return scrubber.Step(db, maxPages);
        }
        finally
        {
            ExitRead();
        }
    }
}
