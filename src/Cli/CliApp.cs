using System.CommandLine;
using TaskMerge.Engine;

namespace TaskMerge.Cli;

/// <summary>The <c>taskmerge</c> command tree and its exit-code policy: 0 ok, 2 bad input, 1 internal error.</summary>
internal static class CliApp
{
    public static int Run(string[] args, TextWriter? stdout = null, TextWriter? stderr = null)
    {
        stdout ??= Console.Out;
        stderr ??= Console.Error;
        var root = new RootCommand("taskmerge — GPU-native model merging (mergekit-compatible configs)");
        var verbose = new Option<bool>("--verbose", "-v") { Description = "More output; stack traces on errors", Recursive = true };
        root.Options.Add(verbose);
        root.Subcommands.Add(MergeCommand.Create(stdout, stderr));
        root.Subcommands.Add(InspectCommand.Create(stdout, stderr));
        root.Subcommands.Add(ForwardCommand.Create(stdout, stderr));
        root.Subcommands.Add(EvalCommand.Create(stdout, stderr));
        root.Subcommands.Add(RiCommand.Create(stdout, stderr));
        root.Subcommands.Add(HeadsCommand.Create(stdout, stderr));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) stderr.WriteLine($"error: {e.Message}");
            return 2;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false });
        }
        catch (Exception e) when (Unwrap(e) is BadInputException bad)
        {
            stderr.WriteLine($"error: {OneLine(bad.Message)}");
            if (parse.GetValue(verbose)) stderr.WriteLine(bad);
            return 2;
        }
        catch (Exception e)
        {
            var inner = Unwrap(e);
            stderr.WriteLine($"internal error: {OneLine(inner.Message)} ({inner.GetType().Name})");
            if (parse.GetValue(verbose)) stderr.WriteLine(inner);
            return 1;
        }
    }

    private static Exception Unwrap(Exception e)
    {
        while (e is AggregateException { InnerExceptions.Count: 1 } a) e = a.InnerExceptions[0];
        return e;
    }

    private static string OneLine(string s) => s.ReplaceLineEndings(" ");
}
