using System.Text.RegularExpressions;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Methods;

namespace TaskMerge.Engine.Tests.Cli;

public class SlerpFamilyCliTests
{
    private static string Zoo(string m) => Path.Combine(TestPaths.Examples, "zoo", m);

    private static string WriteConfig(string dir, string yaml)
    {
        string p = Path.Combine(dir, "config.yml");
        File.WriteAllText(p, yaml.Replace("ZOO", Path.Combine(TestPaths.Examples, "zoo")));
        return p;
    }

    /// <summary>mergekit ≥ 0.1.2's t: layer i of L at i/(L−1); every tensor outside the stack at 0.</summary>
    private static double MergekitDepth(string name, int layers)
    {
        var m = Regex.Match(name, @"\.layers\.(\d+)\.");
        return m.Success ? int.Parse(m.Groups[1].Value) / (double)(layers - 1) : 0;
    }

    private static double Gradient(double[] v, double t)
    {
        double s = t * (v.Length - 1);
        int i0 = (int)s, i1 = Math.Min(v.Length - 1, i0 + 1);
        return (1 - (s - i0)) * v[i0] + (s - i0) * v[i1];
    }

    [Fact]
    public void Slerp_config_with_filtered_gradients_matches_the_float64_reference_on_every_tensor()
    {
        string dir = TestPaths.NewTempDir(), outDir = Path.Combine(dir, "out");
        string cfg = WriteConfig(dir, """
            models:
              - model: ZOO/base
              - model: ZOO/expert_1
            merge_method: slerp
            base_model: ZOO/base
            parameters:
              t:
                - filter: self_attn
                  value: [0, 0.5, 0.3, 0.7, 1]
                - filter: mlp
                  value: [1, 0.5, 0.7, 0.3, 0]
                - value: [0.2, 0.8]
            dtype: float32
            """);
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using var merged = ModelSource.Open(outDir);
        using var a = ModelSource.Open(Zoo("base"));
        using var b = ModelSource.Open(Zoo("expert_1"));
        int layers = a.Tensors.Select(t => Regex.Match(t.Name, @"\.layers\.(\d+)\.")).Where(m => m.Success).Max(m => int.Parse(m.Groups[1].Value)) + 1;
        int checkedAfterStack = 0;
        foreach (var info in a.Tensors.Where(t => t.DType.IsFloat()))
        {
            double depth = MergekitDepth(info.Name, layers);
            double t = info.Name.Contains("self_attn") ? Gradient([0, 0.5, 0.3, 0.7, 1], depth)
                : info.Name.Contains("mlp") ? Gradient([1, 0.5, 0.7, 0.3, 0], depth) : Gradient([0.2, 0.8], depth);
            var expected = SphericalReference.Slerp(t, SphericalReference.ToDouble(a.ReadFloat32(info.Name)), SphericalReference.ToDouble(b.ReadFloat32(info.Name)));
            Assert.Equal(DType.F32, merged.Tensors.Single(x => x.Name == info.Name).DType);
            MethodParityTests.AssertClose(expected, merged.ReadFloat32(info.Name), 2e-6);
            if (info.Name.Contains("post_layernorm")) checkedAfterStack++;
        }
        Assert.True(checkedAfterStack > 0);
    }

    [Fact]
    public void Dtype_float16_without_out_dtype_writes_float16_tensors_and_torch_dtype()
    {
        string dir = TestPaths.NewTempDir(), outDir = Path.Combine(dir, "out");
        string cfg = WriteConfig(dir, """
            models:
              - model: ZOO/expert_0
              - model: ZOO/expert_1
            merge_method: nuslerp
            base_model: ZOO/base
            parameters:
              weight: 0.5
            dtype: float16
            """);
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using var merged = ModelSource.Open(outDir);
        Assert.All(merged.Tensors.Where(t => t.DType.IsFloat()), t => Assert.Equal(DType.F16, t.DType));
        Assert.Contains("\"torch_dtype\": \"float16\"", File.ReadAllText(Path.Combine(outDir, "config.json")));
    }

    [Theory]
    [InlineData("karcher", "")]
    [InlineData("multislerp", "weight: 1.0")]
    public void Base_model_listed_under_models_is_taken_once(string method, string parameters)
    {
        string dir = TestPaths.NewTempDir(), outDir = Path.Combine(dir, "out");
        string cfg = WriteConfig(dir, $"""
            models:
              - model: ZOO/base
              - model: ZOO/expert_0
              - model: ZOO/expert_2
            merge_method: {method}
            base_model: ZOO/base
            parameters:
              {(parameters.Length == 0 ? "max_iter: 10" : parameters)}
            """);
        var (code, stdout, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using var merged = ModelSource.Open(outDir);
        using var b = ModelSource.Open(Zoo("base"));
        using var e0 = ModelSource.Open(Zoo("expert_0"));
        using var e2 = ModelSource.Open(Zoo("expert_2"));
        const string name = "vision_model.encoder.layers.1.mlp.fc1.weight";
        var (x0, x2, xb) = (SphericalReference.ToDouble(e0.ReadFloat32(name)), SphericalReference.ToDouble(e2.ReadFloat32(name)), SphericalReference.ToDouble(b.ReadFloat32(name)));
        var expected = method == "karcher"
            ? SphericalReference.Karcher([x0, x2, xb], 10, 1e-5)
            : SphericalReference.MultiSlerp(xb, [x0, x2], [1, 1], true);
        MethodParityTests.AssertClose(expected, merged.ReadFloat32(name), 5e-6);
    }
}
