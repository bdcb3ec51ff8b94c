using BenchmarkDotNet.Running;
using TaskMerge.Bench;
using TaskMerge.Bench.EndToEnd;

if (args.Length > 0 && args[0] == "e2e-ties") return TiesThroughput.Run(args[1..]);
if (args.Length > 0 && args[0] == "e2e-wudi") return WudiThroughput.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

namespace TaskMerge.Bench
{
    /// <summary>Entry point: BenchmarkDotNet suites, or <c>e2e-ties [DIR] [LAYERS] [DEVICE]</c> / <c>e2e-wudi [--iters 300] [--measure-iters K] [--blocks 12] [--experts 8] [--device cpu]</c> for the end-to-end runs.</summary>
    public partial class Program;
}
