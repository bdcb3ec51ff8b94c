using BenchmarkDotNet.Running;
using TaskMerge.Bench.EndToEnd;

var endToEnd = new Dictionary<string, Func<string[], int>>
{
    ["e2e-ties"] = TiesThroughput.Run,              // [DIR] [LAYERS] [DEVICE]
    ["e2e-awd"] = AwdThroughput.Run,                // [EXPERTS] [ITERATIONS] [OPTIMIZER] [DEVICE] [GRANULARITY]
    ["e2e-spectral"] = SpectralThroughput.Run,      // [options]
    ["e2e-clip-forward"] = ClipForwardThroughput.Run, // [BATCH] [REPEATS] [DEVICE] [THREADS]
    ["e2e-wudi"] = WudiThroughput.Run,              // [options]
    ["e2e-ri-step"] = RiStepThroughput.Run,         // [BATCH] [REPEATS] [DEVICE] [THREADS]
};
if (args.Length > 0 && endToEnd.TryGetValue(args[0], out var run)) return run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(TaskMerge.Bench.Program).Assembly).Run(args);
return 0;

namespace TaskMerge.Bench
{
    /// <summary>Entry point: BenchmarkDotNet suites, or an end-to-end run named by its first argument (e2e-ties, e2e-awd, e2e-spectral, e2e-clip-forward, e2e-wudi, e2e-ri-step).</summary>
    /// <summary>Entry point: BenchmarkDotNet suites, or <c>e2e-ties [DIR] [LAYERS] [DEVICE]</c> / <c>e2e-wudi [--iters 300] [--measure-iters K] [--blocks 12] [--experts 8] [--device cpu]</c> for the end-to-end runs.</summary>
    public partial class Program;
}
