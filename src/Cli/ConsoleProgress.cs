using System.Diagnostics;
using Spectre.Console;
using TaskMerge.Engine.Merge;

namespace TaskMerge.Cli;

/// <summary>
/// Progress for a terminal (Spectre.Console bars with tensors/s and MB/s, one bar per training stage
/// with its loss and images/s) or plain lines otherwise (training steps and notes on stderr, at most
/// every 2 s per stage plus its first and last step); warnings only when quiet.
/// </summary>
internal static class ConsoleProgress
{
    /// <summary>
    /// Runs <paramref name="work"/> with a progress sink; bars are drawn on stdout, or on stderr with
    /// <paramref name="barsOnStderr"/> (when that stream is the terminal).
    /// </summary>
    public static T Run<T>(TextWriter stdout, TextWriter stderr, bool quiet, Func<IMergeProgress, T> work, bool barsOnStderr = false)
    {
        if (quiet) return work(new WarningsOnly(stderr));
        bool terminal = barsOnStderr
            ? !Console.IsErrorRedirected && ReferenceEquals(stderr, Console.Error)
            : !Console.IsOutputRedirected && ReferenceEquals(stdout, Console.Out);
        var console = barsOnStderr ? AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) }) : AnsiConsole.Console;
        if (!terminal || !console.Profile.Capabilities.Interactive) return work(new PlainLines(stdout, stderr));
        T result = default!;
        console.Progress()
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx => result = work(new Bars(ctx, stderr)));
        return result;
    }

    private static string StepText(int step, int steps, double loss, double itemsPerSecond) =>
        FormattableString.Invariant($"step {step}/{steps} · loss {loss:0.000e+00} · {itemsPerSecond:F1} images/s");

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
        private readonly Stopwatch _sinceStepLine = new();
        private string? _trainingStage;
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

        public void TrainingStep(string stage, int step, int steps, double loss, double itemsPerSecond)
        {
            bool first = stage != _trainingStage;
            if (first || step == steps || _sinceStepLine.Elapsed.TotalSeconds >= 2)
            {
                stderr.WriteLine($"[{stage}] {StepText(step, steps, loss, itemsPerSecond)}");
                _sinceStepLine.Restart();
            }
            _trainingStage = stage;
        }

        public void Note(string message) => stderr.WriteLine(message);
    }

    private sealed class Bars(ProgressContext ctx, TextWriter stderr) : IMergeProgress
    {
        private readonly Stopwatch _clock = new();
        private readonly Dictionary<string, ProgressTask> _training = new(StringComparer.Ordinal);
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

        public void TrainingStep(string stage, int step, int steps, double loss, double itemsPerSecond)
        {
            if (!_training.TryGetValue(stage, out var task))
            {
                _training[stage] = task = ctx.AddTask(Markup.Escape(stage), maxValue: Math.Max(1, steps));
            }
            task.Value = step;
            task.Description = $"{Markup.Escape(stage)} {Markup.Escape(StepText(step, steps, loss, itemsPerSecond))}";
            if (step == steps) task.StopTask();
        }

        public void Note(string message) => stderr.WriteLine(message);
    }
}
