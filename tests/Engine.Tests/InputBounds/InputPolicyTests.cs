using System.Text.Json.Nodes;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>Regex timeouts, surrogate escapes, the non-finite policy and the missing-tensor policy, through the CLI.</summary>
public class InputPolicyTests
{
    private const string Fc1 = "vision_model.encoder.layers.0.mlp.fc1.weight";

    [Theory]
    [InlineData("wudi")]
    [InlineData("awd")]
    [InlineData("iso_c")]
    [InlineData("tsv_m")]
    public void Catastrophic_exclude_keys_regex_times_out_as_bad_input(string method)
    {
        string dir = TestPaths.NewTempDir();
        const string pattern = "^(([a-z_.0-9]+)*)+\\\\$";
        string cfg = BadInputAssert.Config(dir, $"merge_method: {method}\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1]\nparameters:\n  exclude_keys: [\"{pattern}\"]\n");
        var sw = System.Diagnostics.Stopwatch.StartNew();
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "exclude_keys", "took longer than", @"^(([a-z_.0-9]+)*)+\$");
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(30), $"took {sw.Elapsed}");
    }

    [Fact]
    public void Invalid_exclude_keys_regex_is_bad_input()
    {
        string dir = TestPaths.NewTempDir();
        string cfg = BadInputAssert.Config(dir, "merge_method: wudi\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\nparameters:\n  exclude_keys: [\"(unclosed\"]\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "exclude_keys", "(unclosed", "not a valid regular expression");
    }

    [Theory]
    [InlineData("\\ud800")]
    [InlineData("\\udc00")]
    [InlineData("x\\ud800\\u0041")]
    [InlineData("\\udbff\\udbff")]
    public void Unpaired_surrogate_in_a_safetensors_header_is_bad_input(string escape)
    {
        string dir = TestPaths.NewTempDir();
        string expert = ModelFiles.CopyZoo(dir, "expert_0", "expert");
        string file = Path.Combine(expert, "model.safetensors");
        var (header, data) = ModelFiles.Split(File.ReadAllBytes(file));
        foreach (var where in new[] { "metadata-value", "metadata-key", "tensor-name", "dtype" })
        {
            var h = JsonNode.Parse(header.ToJsonString())!.AsObject();
            string marker = "SURROGATE_MARK";
            switch (where)
            {
                case "metadata-value": h["__metadata__"] = new JsonObject { ["format"] = marker }; break;
                case "metadata-key": h["__metadata__"] = new JsonObject { [marker] = "pt" }; break;
                case "tensor-name": { var e = h[Fc1]!; h.Remove(Fc1); h[marker] = e; break; }
                case "dtype": h[Fc1]!["dtype"] = marker; break;
            }
            string text = h.ToJsonString().Replace(marker, escape);
            File.WriteAllBytes(file, ModelFiles.Join(text, data));
            var e2 = Assert.Throws<BadInputException>(() => SafetensorsFile.Open(file));
            Assert.Contains("surrogate", e2.Message);
            string cfg = BadInputAssert.Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [{expert}]\n");
            BadInputAssert.Merge(cfg, Path.Combine(dir, "out-" + where), "model.safetensors", "unpaired UTF-16 surrogate");
        }
    }

    [Fact]
    public void Paired_surrogates_are_accepted()
    {
        Assert.Equal(-1, JsonSurrogates.FindUnpaired("{\"a\\ud83d\\ude00\": \"\\\\ud800\", \"b\": \"\\u0041\"}"u8));
        Assert.Equal(2, JsonSurrogates.FindUnpaired("{\"\\ud83d\\u0041\": 1}"u8));
    }

    [Fact]
    public void Unpaired_surrogate_in_an_index_or_config_json_is_bad_input()
    {
        string dir = TestPaths.NewTempDir();
        string sharded = Path.Combine(dir, "sharded");
        Directory.CreateDirectory(sharded);
        File.WriteAllText(Path.Combine(sharded, ModelSource.IndexFileName), "{\"weight_map\": {\"\\ud800\": \"model-00001-of-00001.safetensors\"}}");
        Assert.Contains("surrogate", Assert.Throws<BadInputException>(() => ModelSource.Open(sharded)).Message);

        string expert = ModelFiles.CopyZoo(dir, "expert_0", "expert");
        File.WriteAllText(Path.Combine(expert, "config.json"), "{\"model_type\": \"clip\\udfff\"}");
        string cfg = BadInputAssert.Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [{expert}]\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "config.json", "surrogate");
    }

    public static TheoryData<string, float> NonFiniteCases => new()
    {
        { "ties", float.NaN }, { "task_arithmetic", float.PositiveInfinity }, { "tsv_m", float.NaN }, { "iso_c", float.NegativeInfinity },
        { "model_stock", float.NaN }, { "awd", float.NaN }, { "wudi", float.PositiveInfinity }, { "linear", float.NaN },
    };

    [Theory]
    [MemberData(nameof(NonFiniteCases))]
    public void Non_finite_expert_value_is_exit_2_naming_model_tensor_and_index(string method, float value)
    {
        string dir = TestPaths.NewTempDir();
        string expert = ModelFiles.CopyZoo(dir, "expert_1", "bad_expert");
        ModelFiles.PokeFloat(expert, Fc1, 70, value);
        string cfg = BadInputAssert.Config(dir, $"merge_method: {method}\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, {expert}]\n");
        string what = float.IsNaN(value) ? "NaN" : value > 0 ? "+Inf" : "-Inf";
        using var m = ModelSource.Open(expert);
        long cols = m.Get(Fc1).Shape[1];
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "bad_expert", Fc1, what, "index 70", $"[{70 / cols}, {70 % cols}]", "--allow-nonfinite");
    }

    [Fact]
    public void Non_finite_value_in_bf16_base_is_found_too()
    {
        string dir = TestPaths.NewTempDir();
        string baseDir = Path.Combine(dir, "base");
        Directory.CreateDirectory(baseDir);
        using (var src = ModelSource.Open(Path.Combine(BadInputAssert.Zoo, "base")))
        {
            var specs = src.Tensors.Select(t => t.DType == DType.F32 ? new TensorSpec(t.Name, DType.BF16, t.Shape) : TensorSpec.From(t)).ToList();
            using var w = new SafetensorsWriter(baseDir, specs, long.MaxValue);
            foreach (var t in src.Tensors)
            {
                if (t.DType != DType.F32) { w.Write(t.Name, src.GetBytes(t.Name)); continue; }
                var v = src.ReadFloat32(t.Name);
                if (t.Name == Fc1) v[v.Length - 1] = float.NaN;
                w.WriteFloat32(t.Name, v);
            }
            w.Commit();
        }
        string cfg = BadInputAssert.Config(dir, "merge_method: task_arithmetic\nbase_model: " + baseDir + "\nmodels: [ZOO/expert_0]\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), baseDir, Fc1, "NaN");
    }

    [Theory]
    [InlineData("task_arithmetic")]
    [InlineData("awd")]
    public void Allow_nonfinite_propagates(string method)
    {
        string dir = TestPaths.NewTempDir();
        string expert = ModelFiles.CopyZoo(dir, "expert_1", "bad_expert");
        ModelFiles.PokeFloat(expert, Fc1, 3, float.NaN);
        string cfg = BadInputAssert.Config(dir, $"merge_method: {method}\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, {expert}]\n");
        string outDir = Path.Combine(dir, "out");
        var (code, _, err) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--quiet", "--allow-nonfinite");
        Assert.True(code == 0, err);
        using var m = ModelSource.Open(outDir);
        Assert.True(float.IsNaN(m.ReadFloat32(Fc1)[3]));
    }

    [Fact]
    public void Index_scan_agrees_with_a_scalar_scan_for_every_dtype_and_position()
    {
        var rng = new Random(5);
        foreach (var dtype in new[] { DType.F32, DType.F16, DType.BF16, DType.F64 })
            foreach (int n in new[] { 1, 7, 8, 9, 4095, 4096, 4097, 10_000 })
                foreach (int pos in new[] { -1, 0, n / 2, n - 1 })
                    foreach (float bad in new[] { float.NaN, float.PositiveInfinity, float.NegativeInfinity })
                    {
                        var v = Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
                        if (pos >= 0) v[pos] = bad;
                        var bytes = new byte[n * dtype.Size()];
                        FloatConvert.FromFloat(dtype, v, bytes);
                        var dst = new float[n];
                        int expected = Array.FindIndex(v, x => !float.IsFinite(x));
                        Assert.Equal(expected, FloatConvert.ToFloatFindNonFinite(dtype, bytes, dst));
                        if (expected < 0)
                        {
                            var plain = new float[n];
                            FloatConvert.ToFloat(dtype, bytes, plain);
                            Assert.Equal(plain, dst);
                        }
                    }
    }

    [Fact]
    public void Expert_with_corrupted_names_is_exit_2()
    {
        string dir = TestPaths.NewTempDir();
        string expert = ModelFiles.CopyZoo(dir, "expert_0", "renamed");
        string file = Path.Combine(expert, "model.safetensors");
        var (header, data) = ModelFiles.Split(File.ReadAllBytes(file));
        var renamed = new JsonObject();
        foreach (var (k, v) in header) renamed[k == "__metadata__" ? k : "module." + k] = v!.DeepClone();
        File.WriteAllBytes(file, ModelFiles.Join(renamed.ToJsonString(), data));
        string cfg = BadInputAssert.Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_1, {expert}]\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "renamed", "lacks", "more than half missing");
        var (code, _, err) = CliRunner.Run("merge", cfg, Path.Combine(dir, "out2"), "--device", "cpu", "--quiet", "--allow-crimes");
        Assert.True(code == 0, err);
        Assert.Contains("merged anyway", err);
    }

    [Fact]
    public void Index_with_an_empty_weight_map_is_exit_2()
    {
        string dir = TestPaths.NewTempDir();
        string expert = Path.Combine(dir, "empty_index");
        Directory.CreateDirectory(expert);
        File.WriteAllText(Path.Combine(expert, ModelSource.IndexFileName), "{\"metadata\": {}, \"weight_map\": {}}");
        string cfg = BadInputAssert.Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [ZOO/expert_1, {expert}]\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), ModelSource.IndexFileName, "weight_map", "empty");
    }

    [Fact]
    public void Model_path_with_a_nul_is_exit_2()
    {
        string dir = TestPaths.NewTempDir();
        string cfg = BadInputAssert.Config(dir, "merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [\"ZOO/expert_0\\0x\"]\n");
        BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "NUL");
    }
}
