using System.Diagnostics;
using Spectre.Console;

namespace TaskMerge.Cli;

/// <summary>
/// Progress over counted items (images, sequences) for <c>forward</c> and <c>eval</c>: a Spectre.Console
/// bar with items/s on a terminal, plain lines at most every 2 s otherwise, nothing when quiet.
/// The work receives a reporter taking (label, done, total).
/// </summary>
internal static class ItemProgress
{
    public static T Run<T>(TextWriter stdout, bool quiet, string unit, Func<Action<string, int, int>, T> work)
    {
        if (quiet) return work((_, _, _) => { });
        bool terminal = !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out) && AnsiConsole.Profile.Capabilities.Interactive;
        var clock = Stopwatch.StartNew();
        if (!terminal)
        {
            var sinceLine = Stopwatch.StartNew();
            string last = "";
            return work((label, done, total) =>
            {
                if (label != last) clock.Restart();
                if (done == total || sinceLine.Elapsed.TotalSeconds >= 2)
                {
                    stdout.WriteLine($"[{label}] {done}/{total} {unit} · {done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):F1} {unit}/s");
                    sinceLine.Restart();
                }
                last = label;
            });
        }
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var tasks = new Dictionary<string, ProgressTask>();
                result = work((label, done, total) =>
                {
                    if (!tasks.TryGetValue(label, out var task))
                    {
                        clock.Restart();
                        tasks[label] = task = ctx.AddTask(Markup.Escape(label), maxValue: Math.Max(1, total));
                    }
                    task.Value = done;
                    task.Description = $"{Markup.Escape(label)} {done / Math.Max(clock.Elapsed.TotalSeconds, 1e-9):F1} {unit}/s";
                });
            });
        return result;
    }
}
