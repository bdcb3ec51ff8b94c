using System.Diagnostics;
using Spectre.Console;
using TaskMerge.Engine.Merge;

namespace TaskMerge.Cli;

/// <summary>Progress for a terminal (Spectre.Console bars with tensors/s and MB/s) or plain lines otherwise.</summary>
internal static class ConsoleProgress
{
    public static T Run<T>(TextWriter stdout, TextWriter stderr, bool quiet, Func<IMergeProgress, T> work)
    {
        if (quiet) return work(new WarningsOnly(stderr));
        bool terminal = !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out) && AnsiConsole.Profile.Capabilities.Interactive;
        if (!terminal) return work(new PlainLines(stdout, stderr));
        T result = default!;
        AnsiConsole.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx => result = work(new Bars(ctx, stderr)));
        return result;
    }

    private sealed class WarningsOnly(TextWriter stderr) : IMergeProgress
    {
        public void StageStarted(string stage, long total) { }
        public void Advance(string item, long bytes) { }
        public void Warn(string message) => stderr.WriteLine($"warning: {message}");
    }

    private sealed class PlainLines(TextWriter stdout, TextWriter stderr) : IMergeProgress
    {
        private readonly Stopwatch _clock = new();
        private readonly Stopwatch _sinceLine = new();
        private string _stage = "";
        private long _total, _done, _bytes;

        public void StageStarted(string stage, long total)
        {
            (_stage, _total, _done, _bytes) = (stage, total, 0, 0);
            _clock.Restart();
            _sinceLine.Restart();
        }

        public void Advance(string item, long bytes)
        {
            _done++;
            _bytes += bytes;
            if (_done == _total || _sinceLine.Elapsed.TotalSeconds >= 2)
            {
                double s = Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
                stdout.WriteLine($"[{_stage}] {_done}/{_total} tensors · {_done / s:F1} tensors/s · {_bytes / s / (1 << 20):F1} MB/s");
                _sinceLine.Restart();
            }
        }

        public void Warn(string message) => stderr.WriteLine($"warning: {message}");
    }

    private sealed class Bars(ProgressContext ctx, TextWriter stderr) : IMergeProgress
    {
        private readonly Stopwatch _clock = new();
        private ProgressTask? _task;
        private string _stage = "";
        private long _bytes, _done;

        public void StageStarted(string stage, long total)
        {
            _task?.StopTask();
            (_stage, _bytes, _done) = (stage, 0, 0);
            _task = ctx.AddTask(stage, maxValue: Math.Max(1, total));
            _clock.Restart();
        }

        public void Advance(string item, long bytes)
        {
            _done++;
            _bytes += bytes;
            double s = Math.Max(_clock.Elapsed.TotalSeconds, 1e-9);
            _task!.Description = $"{_stage} {_done / s:F0} tensors/s {_bytes / s / (1 << 20):F0} MB/s";
            _task.Increment(1);
        }

        public void Warn(string message) => stderr.WriteLine($"warning: {Markup.Escape(message)}");
    }
}
