using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Running;
using TaskMerge.Bench.Device;
using TaskMerge.Bench.EndToEnd;

var endToEnd = new Dictionary<string, Func<string[], int>>
{
    ["e2e-ties"] = TiesThroughput.Run,              // [DIR] [LAYERS] [DEVICE] [METHOD ties|task_arithmetic|wudi]
    ["e2e-zoo"] = ZooMerge.Run,                     // --cli PATH [--dir DIR] [--layers 5] [--methods a,b] [--repeats 3] [--keep]
    ["e2e-awd"] = AwdThroughput.Run,                // [EXPERTS] [ITERATIONS] [OPTIMIZER] [DEVICE] [GRANULARITY]
    ["e2e-spectral"] = SpectralThroughput.Run,      // [options]
    ["e2e-clip-forward"] = ClipForwardThroughput.Run, // [BATCH] [REPEATS] [DEVICE] [THREADS]
    ["e2e-clip-text"] = ClipTextThroughput.Run,     // [BATCH] [TOKENS] [REPEATS] [DEVICE] [THREADS]
    ["e2e-wudi"] = WudiThroughput.Run,              // [options]
    ["e2e-ri-step"] = RiStepThroughput.Run,         // [BATCH] [REPEATS] [DEVICE] [THREADS]
};
if (args.Length > 0 && endToEnd.TryGetValue(args[0], out var run)) return run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(TaskMerge.Bench.Program).Assembly).Run(args, CudaDevice.ExcludeWhenAbsent(DefaultConfig.Instance));
return 0;

namespace TaskMerge.Bench
{
    /// <summary>
    /// Entry point: BenchmarkDotNet suites (the CPU ones, and the device ones of category <c>cuda</c>, which are
    /// left out with a "skipped: no CUDA device" line where there is none), or an end-to-end run named by its
    /// first argument: <c>e2e-ties [DIR] [LAYERS] [DEVICE] [METHOD]</c>, <c>e2e-wudi [--iters 300] [--device cpu] …</c>,
    /// <c>e2e-spectral [--device cpu|cuda] …</c>, <c>e2e-awd</c>, <c>e2e-clip-forward</c>, <c>e2e-ri-step [BATCH] [REPEATS] [DEVICE] [THREADS]</c>.
    /// </summary>
    public partial class Program;
}
