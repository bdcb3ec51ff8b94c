using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.Methods;

/// <summary>mergekit-style YAML for breadcrumbs, DELLA and Model Stock through the CLI, against the float64 references.</summary>
public class MergekitYamlTests
{
    [Theory]
    [InlineData("breadcrumbs_ties", "  gamma: 0.05\n  lambda: 0.9\n")]
    [InlineData("breadcrumbs", "  lambda: 1.2\n")]
    [InlineData("della", "  epsilon: 0.1\n  lambda: 1.1\n")]
    [InlineData("della_linear", "  epsilon: 0.2\n")]
    [InlineData("model_stock", "  filter_wise: true\n")]
    [InlineData("model_stock", "")]
    public void Mergekit_yaml_merges_the_zoo_like_the_reference(string method, string globals)
    {
        string zoo = Path.Combine(TestPaths.Examples, "zoo"), dir = TestPaths.NewTempDir(), outDir = Path.Combine(dir, "out");
        double[] weights = [0.5, 0.3, 0.7, 0.4], dens = [0.6, 0.5, 0.6, 0.45];
        bool stock = method == "model_stock";
        var models = string.Concat(Enumerable.Range(0, 4).Select(i => $"  - model: {Path.Combine(zoo, $"expert_{i}")}\n" +
            (stock ? "" : $"    parameters: {{weight: {weights[i]}, density: {dens[i]}}}\n")));
        string config = Path.Combine(dir, "config.yml");
        File.WriteAllText(config, $"merge_method: {method}\nbase_model: {Path.Combine(zoo, "base")}\nmodels:\n{models}" +
            (globals.Length > 0 ? "parameters:\n" + globals : "") + "dtype: float32\n");
        var (code, stdout, stderr) = CliRunner.Run("merge", config, outDir, "--device", "cpu", "--random-seed", "7");
        Assert.True(code == 0, stderr + stdout);

        double P(string name, double def)
        {
            var line = globals.Split('\n').FirstOrDefault(l => l.Trim().StartsWith(name + ":"));
            return line is null ? def : double.Parse(line.Split(':')[1]);
        }
        using var merged = ModelSource.Open(outDir);
        using var baseM = ModelSource.Open(Path.Combine(zoo, "base"));
        var experts = Enumerable.Range(0, 4).Select(i => ModelSource.Open(Path.Combine(zoo, $"expert_{i}"))).ToArray();
        try
        {
            foreach (var t in baseM.Tensors.Where(t => t.DType != DType.I64))
            {
                var b = baseM.ReadFloat32(t.Name);
                var ex = experts.Select(e => e.ReadFloat32(t.Name)).ToArray();
                var shape = t.Shape.Select(d => (int)d).ToArray();
                double[] expected = method switch
                {
                    "model_stock" => ModelStockTests.Reference(b, ex, shape, globals.Contains("filter_wise")),
                    "breadcrumbs" or "breadcrumbs_ties" => GtaReference.Merge(b, ex, weights, dens, "magnitude_outliers",
                        consensus: method == "breadcrumbs_ties", normalize: false, rescale: false, P("lambda", 1),
                        gammas: Enumerable.Repeat(P("gamma", 0.01), 4).ToArray()),
                    _ => DellaReference(b, ex, shape, t.Name, weights, dens, P("epsilon", 0.15), P("lambda", 1), method == "della"),
                };
                var got = merged.ReadFloat32(t.Name);
                double scale = Math.Max(1e-6, expected.Max(Math.Abs));
                for (int i = 0; i < got.Length; i++)
                    Assert.True(Math.Abs(expected[i] - got[i]) <= 2e-6 * scale, $"{t.Name}[{i}]: expected {expected[i]:R}, got {got[i]:R}");
            }
        }
        finally
        {
            foreach (var e in experts) e.Dispose();
        }
    }

    private static double[] DellaReference(float[] b, float[][] ex, int[] shape, string tensor, double[] weights, double[] dens,
        double epsilon, double lambda, bool ties)
    {
        var masks = ex.Select((e, k) => DellaTests.Mask(b, e, shape, dens[k], epsilon, 7, k, tensor)).ToArray();
        return GtaReference.Merge(b, ex, weights, dens, "random", consensus: ties, normalize: ties, rescale: true, lambda, (e, i) => masks[e][i]);
    }
}
