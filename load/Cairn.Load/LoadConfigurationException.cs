namespace Cairn.Load;

/// <summary>
/// The run cannot start as configured: an unknown scenario or target, a bad flag value, endpoints nobody answers on.
/// The message is one line that names what to fix; the tool prints it without a stack trace and exits with 2.
/// </summary>
internal sealed class LoadConfigurationException : Exception
{
    public LoadConfigurationException(string message) : base(message) { }

    public LoadConfigurationException(string message, Exception inner) : base(message, inner) { }

    public LoadConfigurationException() : base("bad configuration") { }
}
