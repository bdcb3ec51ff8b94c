using BenchmarkDotNet.Running;
using TaskMerge.Bench;
using TaskMerge.Bench.EndToEnd;

if (args.Length > 0 && args[0] == "e2e-ties") return TiesThroughput.Run(args[1..]);
if (args.Length > 0 && args[0] == "e2e-clip-forward") return ClipForwardThroughput.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

namespace TaskMerge.Bench
{
    /// <summary>Entry point: BenchmarkDotNet suites, <c>e2e-ties [DIR] [LAYERS] [DEVICE]</c> or <c>e2e-clip-forward [BATCH] [REPEATS] [DEVICE] [THREADS]</c>.</summary>
    public partial class Program;
}
