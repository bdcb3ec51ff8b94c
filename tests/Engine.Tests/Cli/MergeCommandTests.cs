using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Methods;

namespace TaskMerge.Engine.Tests.Cli;

public class MergeCommandTests
{
    private static string Example(string name) => Path.Combine(TestPaths.Examples, name);

    private static string WriteConfig(string dir, string yaml)
    {
        string p = Path.Combine(dir, "config.yml");
        File.WriteAllText(p, yaml.Replace("ZOO", Path.Combine(TestPaths.Examples, "zoo")));
        return p;
    }

    [Fact]
    public void Ties_example_merges_and_matches_the_float64_reference_after_bf16_rounding()
    {
        string outDir = TestPaths.NewTempDir();
        var (code, stdout, stderr) = CliRunner.Run("merge", Example("ties.yml"), outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        Assert.True(File.Exists(Path.Combine(outDir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(outDir, "merge_report.json")));
        Assert.True(File.Exists(Path.Combine(outDir, "taskmerge_config.yml")));
        Assert.Contains("\"torch_dtype\": \"bfloat16\"", File.ReadAllText(Path.Combine(outDir, "config.json")));

        using var merged = ModelSource.Open(outDir);
        using var baseM = ModelSource.Open(Example("zoo/base"));
        var experts = Enumerable.Range(0, 4).Select(i => ModelSource.Open(Example($"zoo/expert_{i}"))).ToArray();
        Assert.Equal(baseM.Tensors.Select(t => t.Name), merged.Tensors.Select(t => t.Name));
        var depth = new TaskMerge.Engine.Merge.LayerDepth(baseM.Tensors.Select(t => t.Name));
        foreach (var t in baseM.Tensors)
        {
            var mt = merged.Tensors.Single(x => x.Name == t.Name);
            if (t.DType == DType.I64)
            {
                Assert.Equal(DType.I64, mt.DType);
                Assert.Equal(baseM.GetBytes(t.Name).ToArray(), merged.GetBytes(t.Name).ToArray());
                continue;
            }
            Assert.Equal(DType.BF16, mt.DType);
            var b = baseM.ReadFloat32(t.Name);
            var ex = experts.Select(e => e.ReadFloat32(t.Name)).ToArray();
            double d = depth.Of(t.Name);
            double density0 = Gradient([1, 0.7, 0.3], d);
            double w2 = t.Name.Contains("mlp") ? 0.5 : 1.0;
            var expected = GtaReference.Merge(b, ex, [1.0, 0.8, w2, 1.0], [density0, 0.5, 0.5, 0.5], "magnitude", true, true, false, 1.0);
            var got = merged.ReadFloat32(t.Name);
            for (int i = 0; i < got.Length; i++)
            {
                float bf = FloatConvert.FromBFloat16(FloatConvert.ToBFloat16((float)expected[i]));
                Assert.True(Math.Abs(bf - got[i]) <= Math.Abs(bf) * (1.0 / 128), $"{t.Name}[{i}]: expected {bf}, got {got[i]}");
            }
        }
        foreach (var e in experts) e.Dispose();
    }

    private static double Gradient(double[] v, double t)
    {
        double s = t * (v.Length - 1);
        int i0 = (int)s, i1 = Math.Min(v.Length - 1, i0 + 1);
        return (1 - (s - i0)) * v[i0] + (s - i0) * v[i1];
    }

    [Theory]
    [InlineData("task_arithmetic.yml")]
    [InlineData("dare_ties.yml")]
    [InlineData("linear.yml")]
    public void Every_example_config_merges_to_the_float64_reference(string config)
    {
        string outDir = TestPaths.NewTempDir();
        var (code, stdout, stderr) = CliRunner.Run("merge", Example(config), outDir, "--device", "cpu", "--random-seed", "1");
        Assert.True(code == 0, stderr + stdout);
        using var m = ModelSource.Open(outDir);
        Assert.Equal(41, m.Tensors.Count);
        var report = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "merge_report.json")))!;
        Assert.Equal((long)report["bytes_to_read_planned"]!, (long)report["bytes_read"]!);
        Assert.Equal(m.Tensors.Sum(t => t.ByteLength), (long)report["bytes_written"]!);

        using var baseM = ModelSource.Open(Example("zoo/base"));
        var experts = Enumerable.Range(0, 4).Select(i => ModelSource.Open(Example($"zoo/expert_{i}"))).ToArray();
        Assert.Equal(baseM.Tensors.Select(t => t.Name), m.Tensors.Select(t => t.Name));
        foreach (var t in baseM.Tensors)
        {
            if (t.DType == DType.I64)
            {
                Assert.Equal(baseM.GetBytes(t.Name).ToArray(), m.GetBytes(t.Name).ToArray());
                continue;
            }
            Assert.Equal(DType.F32, m.Tensors.Single(x => x.Name == t.Name).DType);
            var b = baseM.ReadFloat32(t.Name);
            var ex = experts.Select(e => e.ReadFloat32(t.Name)).ToArray();
            double[] expected = config switch
            {
                "task_arithmetic.yml" => GtaReference.Merge(b, ex, [1, 1, 1, 1], [1, 1, 1, 1], "none", false, false, false, 0.3),
                "dare_ties.yml" => GtaReference.Merge(b, ex, [0.5, 0.5, 0.5, 0.5], [0.6, 0.6, 0.6, 0.6], "random",
                    consensus: true, normalize: false, rescale: true, 1.0, (e, i) => GtaReference.DareKeep(1, t.Name, e, i, 0.6)),
                _ => GtaReference.Linear(ex, [1.0, 1.0, 0.5, 0.5], normalize: true),
            };
            var got = m.ReadFloat32(t.Name);
            double scale = Math.Max(1e-30, expected.Max(Math.Abs));
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-5 * scale, $"{t.Name}[{i}]: expected {expected[i]}, got {got[i]}");
        }
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Same_seed_gives_the_same_bytes_and_sharded_output_loads_back_identically()
    {
        string a = TestPaths.NewTempDir(), b = TestPaths.NewTempDir();
        Assert.Equal(0, CliRunner.Run("merge", Example("dare_ties.yml"), a, "--device", "cpu", "--random-seed", "7", "--quiet").Exit);
        Assert.Equal(0, CliRunner.Run("merge", Example("dare_ties.yml"), b, "--device", "cpu", "--random-seed", "7", "--quiet", "--out-shard-size", "100K", "-j", "1").Exit);
        Assert.True(File.Exists(Path.Combine(b, "model.safetensors.index.json")));
        Assert.False(File.Exists(Path.Combine(b, "model.safetensors")));
        using var ma = ModelSource.Open(a);
        using var mb = ModelSource.Open(b);
        Assert.Equal(ma.Tensors.Select(t => t.Name), mb.Tensors.Select(t => t.Name));
        foreach (var t in ma.Tensors) Assert.Equal(ma.GetBytes(t.Name).ToArray(), mb.GetBytes(t.Name).ToArray());
    }

    [Fact]
    public void Missing_expert_tensor_is_treated_as_unchanged_with_a_warning()
    {
        string dir = TestPaths.NewTempDir();
        var cfg = WriteConfig(dir, "merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n  - model: PARTIAL\n");
        string partial = Path.Combine(dir, "partial.safetensors");
        using (var src = ModelSource.Open(Example("zoo/expert_1")))
        {
            var keep = src.Tensors.Where(t => !t.Name.Contains("fc1")).ToList();
            using var w = new SafetensorsWriter(dir, keep.Select(TensorSpec.From), long.MaxValue);
            foreach (var t in keep) w.Write(t.Name, src.GetBytes(t.Name));
            w.Commit();
        }
        File.Move(Path.Combine(dir, "model.safetensors"), partial);
        File.WriteAllText(cfg, File.ReadAllText(cfg).Replace("PARTIAL", partial));
        string outDir = Path.Combine(dir, "out");
        var (code, _, stderr) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu");
        Assert.Equal(0, code);
        Assert.Contains("fc1", stderr);
        using var m = ModelSource.Open(outDir);
        using var b = ModelSource.Open(Example("zoo/base"));
        using var e0 = ModelSource.Open(Example("zoo/expert_0"));
        const string name = "vision_model.encoder.layers.0.mlp.fc1.weight";
        var got = m.ReadFloat32(name);
        var expected = b.ReadFloat32(name).Zip(e0.ReadFloat32(name), (x, y) => x + (y - x)).ToArray();
        Assert.Equal(expected, got);
    }
}
