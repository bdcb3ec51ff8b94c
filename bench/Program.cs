using BenchmarkDotNet.Running;
using TaskMerge.Bench;
using TaskMerge.Bench.EndToEnd;

if (args.Length > 0 && args[0] == "e2e-ties") return TiesThroughput.Run(args[1..]);
if (args.Length > 0 && args[0] == "e2e-awd") return AwdThroughput.Run(args[1..]);
if (args.Length > 0 && args[0] == "e2e-spectral") return SpectralThroughput.Run(args[1..]);
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;

namespace TaskMerge.Bench
{
    /// <summary>
    /// Entry point: BenchmarkDotNet suites, or an end-to-end run: <c>e2e-ties [DIR] [LAYERS] [DEVICE]</c>,
    /// <c>e2e-awd [EXPERTS] [ITERATIONS] [OPTIMIZER] [DEVICE]</c>, <c>e2e-spectral [options]</c>.
    /// </summary>
    public partial class Program;
}
