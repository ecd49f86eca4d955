namespace Cairn.Load;

/// <summary>
/// What one invocation of a scenario's step came to, as NBomber's <c>Response.Ok()</c> / <c>Response.Fail()</c>:
/// success, or a failure of a named kind (the report counts failures by kind). Exceptions thrown by a step are
/// turned into a kind by the target (<see cref="Targets.ILoadTarget.Classify"/>).
/// </summary>
internal readonly record struct Response(string? ErrorKind)
{
    public static Response Ok => default;

    public static Response Fail(string kind) => new(kind);

    public bool IsOk => ErrorKind is null;
}
