namespace TaskMerge.Engine;

/// <summary>
/// Raised for anything the user can fix: a bad config, a missing or corrupt file, a tensor whose
/// shape does not match. The CLI maps it to exit code 2 and prints <see cref="Exception.Message"/>
/// as one line; the message names the file or tensor and the problem.
/// </summary>
public sealed class BadInputException : Exception
{
    public BadInputException(string message) : base(message) { }
    public BadInputException(string message, Exception inner) : base(message, inner) { }
}
