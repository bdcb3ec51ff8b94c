using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Cli;
using TaskMerge.Engine.Tests.Methods;

namespace TaskMerge.Engine.Tests.Merge;

/// <summary>
/// Tensors large enough for <see cref="HostArrayPool"/> (≥ 64 Ki elements) and of one shape, so the
/// pipeline recycles arrays between groups: every output must still equal its own reference.
/// </summary>
public class PooledPipelineTests
{
    [Fact]
    public void Recycled_host_arrays_never_leak_values_between_tensors()
    {
        string dir = TestPaths.NewTempDir();
        const int rows = 300, cols = 300, tensors = 6;
        var names = Enumerable.Range(0, tensors).Select(i => $"layers.{i}.w").ToArray();
        var values = new Dictionary<(int Model, string Name), float[]>();
        var rng = new Random(17);
        for (int m = 0; m < 3; m++)
        {
            string md = Path.Combine(dir, $"m{m}");
            using var w = new SafetensorsWriter(md, names.Select(n => new TensorSpec(n, DType.F32, [rows, cols])), long.MaxValue);
            foreach (var n in names)
            {
                var v = Enumerable.Range(0, rows * cols).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
                values[(m, n)] = v;
                w.WriteFloat32(n, v);
            }
            w.Commit();
        }
        string cfg = Path.Combine(dir, "c.yml");
        File.WriteAllText(cfg, $"merge_method: ties\nbase_model: {dir}/m0\nmodels:\n  - model: {dir}/m1\n    parameters: {{density: 0.3}}\n  - model: {dir}/m2\n    parameters: {{density: 0.6, weight: 0.5}}\n");
        string outDir = Path.Combine(dir, "out");
        var (code, _, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--quiet");
        Assert.True(code == 0, stderr);
        using var merged = ModelSource.Open(outDir);
        foreach (var n in names)
        {
            var expected = GtaReference.Merge(values[(0, n)], [values[(1, n)], values[(2, n)]], [1.0, 0.5], [0.3, 0.6],
                "magnitude", consensus: true, normalize: true, rescale: false, 1.0);
            var got = merged.ReadFloat32(n);
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(expected[i] - got[i]) <= 1e-6, $"{n}[{i}]: expected {expected[i]}, got {got[i]}");
        }
    }
}
