using System.Text.Json.Nodes;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tests.Cli;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Merge;

/// <summary><c>slices:</c> and <c>modules:</c> merges through the CLI, checked by hand against the source tensors.</summary>
public class SliceMergeTests
{
    private static (int Code, string Out, string Err) Merge(string dir, string yaml)
    {
        string config = Path.Combine(dir, "config.yml");
        File.WriteAllText(config, yaml);
        string outDir = Path.Combine(dir, "out");
        var (code, o, e) = CliRunner.Run("merge", config, outDir, "--device", "cpu");
        return (code, outDir, e + o);
    }

    private static void AssertClose(double[] want, float[] got, string name)
    {
        Assert.Equal(want.Length, got.Length);
        for (int i = 0; i < got.Length; i++)
            Assert.True(Math.Abs(want[i] - got[i]) <= 1e-5 * Math.Max(1, Math.Abs(want[i])), $"{name}[{i}]: expected {want[i]}, got {got[i]}");
    }

    private static double[] Mix(float[] a, double wa, float[] b, double wb, double divide) =>
        a.Select((x, i) => (wa * x + wb * b[i]) / divide).ToArray();

    [Fact]
    public void Linear_slices_use_source_then_slice_parameters_and_gradient_t_within_each_slice()
    {
        string dir = TestPaths.NewTempDir();
        string a = MergekitExamplesTests.WriteModel(dir, "a", "LlamaForCausalLM", 1);
        string b = MergekitExamplesTests.WriteModel(dir, "b", "LlamaForCausalLM", 2);
        var (code, outDir, err) = Merge(dir, $"""
            merge_method: linear
            slices:
              - sources:
                  - model: {a}
                    layer_range: [0, 2]
                    parameters:
                      weight: [0.25, 0.5]
                  - model: {b}
                    layer_range: [1, 3]
                    parameters:
                      weight: 0.75
              - sources:
                  - model: {a}
                    layer_range: [2, 3]
                    parameters:
                      weight: 1.0
                  - model: {b}
                    layer_range: [0, 1]
                parameters:
                  weight: 2.0
            """);
        Assert.True(code == 0, err);
        using var ma = ModelSource.Open(a);
        using var mb = ModelSource.Open(b);
        using var merged = ModelSource.Open(outDir);
        Assert.Equal(3 + 9 * 3, merged.Tensors.Count);
        foreach (var t in merged.Tensors)
        {
            string n = t.Name;
            double[] want;
            if (n.StartsWith("model.layers.", StringComparison.Ordinal))
            {
                int k = int.Parse(n.Split('.')[2]);
                string rest = string.Join('.', n.Split('.')[3..]);
                float[] A(int l) => ma.ReadFloat32($"model.layers.{l}.{rest}");
                float[] B(int l) => mb.ReadFloat32($"model.layers.{l}.{rest}");
                want = k switch
                {
                    0 => Mix(A(0), 0.25, B(1), 0.75, 1.0), // slice 1 at t = 0
                    1 => Mix(A(1), 0.5, B(2), 0.75, 1.25), // slice 1 at t = 1: A's gradient end
                    _ => Mix(A(2), 1.0, B(0), 2.0, 3.0), // slice 2: B takes the slice's weight
                };
            }
            else if (n == "model.embed_tokens.weight") want = Mix(ma.ReadFloat32(n), 0.25, mb.ReadFloat32(n), 0.75, 1.0);
            else want = Mix(ma.ReadFloat32(n), 1.0, mb.ReadFloat32(n), 2.0, 3.0); // after the stack: the last slice, t = 0
            AssertClose(want, merged.ReadFloat32(n), n);
        }
    }

    [Fact]
    public void Passthrough_frankenmerge_rebuilds_num_hidden_layers_and_layer_types()
    {
        string dir = TestPaths.NewTempDir();
        string a = MergekitExamplesTests.WriteModel(dir, "a", "LlamaForCausalLM", 1);
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(a, "config.json")))!.AsObject();
        cfg["layer_types"] = new JsonArray("sliding_attention", "full_attention", "sliding_attention");
        File.WriteAllText(Path.Combine(a, "config.json"), cfg.ToJsonString());
        var (code, outDir, err) = Merge(dir, $"""
            merge_method: passthrough
            slices:
              - sources: [{"{"}model: {a}, layer_range: [0, 2]{"}"}]
              - sources: [{"{"}model: {a}, layer_range: [1, 3]{"}"}]
            """);
        Assert.True(code == 0, err);
        var outCfg = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.Equal(4, (int)outCfg["num_hidden_layers"]!);
        Assert.Equal(["sliding_attention", "full_attention", "full_attention", "sliding_attention"],
            outCfg["layer_types"]!.AsArray().Select(x => (string)x!));
        using var ma = ModelSource.Open(a);
        using var merged = ModelSource.Open(outDir);
        Assert.Equal(3 + 9 * 4, merged.Tensors.Count);
        int[] from = [0, 1, 1, 2];
        for (int k = 0; k < 4; k++)
            Assert.Equal(ma.ReadFloat32($"model.layers.{from[k]}.self_attn.q_proj.weight"), merged.ReadFloat32($"model.layers.{k}.self_attn.q_proj.weight"));
    }

    /// <summary>A CLIPModel-shaped checkpoint (HF names) with two text and two vision layers.</summary>
    private static string WriteClip(string dir, string id, int seed)
    {
        string path = Path.Combine(dir, id);
        Directory.CreateDirectory(path);
        var r = new Random(seed);
        var w = new Weights();
        void Add(string name, params int[] shape) => w.Add(name, Enumerable.Range(0, shape.Aggregate(1, (x, y) => x * y)).Select(_ => (float)r.NextDouble()).ToArray(), shape);
        const int H = 8;
        Add("text_model.embeddings.token_embedding.weight", 10, H);
        Add("text_model.embeddings.position_embedding.weight", 4, H);
        Add("vision_model.embeddings.class_embedding", H);
        Add("vision_model.embeddings.patch_embedding.weight", H, 3, 2, 2);
        Add("vision_model.embeddings.position_embedding.weight", 5, H);
        Add("vision_model.pre_layrnorm.weight", H);
        Add("vision_model.pre_layrnorm.bias", H);
        foreach (var tower in new[] { "text_model", "vision_model" })
            for (int l = 0; l < 2; l++)
            {
                string p = $"{tower}.encoder.layers.{l}.";
                foreach (var lin in new[] { "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj" }) { Add(p + lin + ".weight", H, H); Add(p + lin + ".bias", H); }
                foreach (var ln in new[] { "layer_norm1", "layer_norm2" }) { Add(p + ln + ".weight", H); Add(p + ln + ".bias", H); }
                Add(p + "mlp.fc1.weight", 2 * H, H); Add(p + "mlp.fc1.bias", 2 * H);
                Add(p + "mlp.fc2.weight", H, 2 * H); Add(p + "mlp.fc2.bias", H);
            }
        Add("text_model.final_layer_norm.weight", H);
        Add("text_model.final_layer_norm.bias", H);
        Add("vision_model.post_layernorm.weight", H);
        Add("vision_model.post_layernorm.bias", H);
        Add("text_projection.weight", 4, H);
        Add("visual_projection.weight", 4, H);
        Add("logit_scale");
        w.WriteModel(path);
        File.WriteAllText(Path.Combine(path, "config.json"),
            """{"architectures": ["CLIPModel"], "model_type": "clip", "text_config": {"num_hidden_layers": 2}, "vision_config": {"num_hidden_layers": 2}}""");
        return path;
    }

    [Fact]
    public void Modules_merge_each_clip_tower_with_its_own_slices_and_layer_count()
    {
        string dir = TestPaths.NewTempDir();
        string a = WriteClip(dir, "a", 1), b = WriteClip(dir, "b", 2);
        var (code, outDir, err) = Merge(dir, $"""
            merge_method: passthrough
            modules:
              text_model:
                slices:
                  - sources: [{"{"}model: {a}, layer_range: [0, 2]{"}"}]
                  - sources: [{"{"}model: {b}, layer_range: [1, 2]{"}"}]
              vision_model:
                slices:
                  - sources: [{"{"}model: {b}, layer_range: [1, 2]{"}"}]
            """);
        Assert.True(code == 0, err);
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.Equal(3, (int)cfg["text_config"]!["num_hidden_layers"]!);
        Assert.Equal(1, (int)cfg["vision_config"]!["num_hidden_layers"]!);
        using var ma = ModelSource.Open(a);
        using var mb = ModelSource.Open(b);
        using var merged = ModelSource.Open(outDir);
        Assert.Equal(2 + 16 * 3 + 4 + 5 + 16 * 1 + 3, merged.Tensors.Count);
        Assert.Equal(mb.ReadFloat32("text_model.encoder.layers.1.mlp.fc1.weight"), merged.ReadFloat32("text_model.encoder.layers.2.mlp.fc1.weight"));
        Assert.Equal(ma.ReadFloat32("text_model.encoder.layers.1.mlp.fc1.weight"), merged.ReadFloat32("text_model.encoder.layers.1.mlp.fc1.weight"));
        Assert.Equal(mb.ReadFloat32("vision_model.encoder.layers.1.mlp.fc2.bias"), merged.ReadFloat32("vision_model.encoder.layers.0.mlp.fc2.bias"));
        Assert.Equal(ma.ReadFloat32("text_model.embeddings.token_embedding.weight"), merged.ReadFloat32("text_model.embeddings.token_embedding.weight"));
        Assert.Equal(mb.ReadFloat32("logit_scale"), merged.ReadFloat32("logit_scale"));
        Assert.Equal(mb.ReadFloat32("visual_projection.weight"), merged.ReadFloat32("visual_projection.weight"));
        Assert.False(merged.Contains("vision_model.encoder.layers.1.mlp.fc2.bias"));
    }

    [Theory]
    [InlineData("arch", "FooForCausalLM")]
    [InlineData("range", "has 3 layers")]
    [InlineData("lengths", "same number")]
    [InlineData("clip-slices", "use 'modules:'")]
    [InlineData("base", "among the slice's sources")]
    public void Bad_slice_configs_exit_2_naming_the_problem(string kind, string expected)
    {
        string dir = TestPaths.NewTempDir();
        string a = MergekitExamplesTests.WriteModel(dir, "a", "LlamaForCausalLM", 1);
        string b = MergekitExamplesTests.WriteModel(dir, "b", "LlamaForCausalLM", 2);
        if (kind == "arch") File.WriteAllText(Path.Combine(a, "config.json"), """{"architectures": ["FooForCausalLM"], "num_hidden_layers": 3}""");
        if (kind == "clip-slices") a = WriteClip(dir, "clip", 3);
        string yaml = kind switch
        {
            "range" => $"merge_method: passthrough\nslices:\n  - sources: [{{model: {a}, layer_range: [0, 4]}}]\n",
            "lengths" => $"merge_method: linear\nslices:\n  - sources: [{{model: {a}, layer_range: [0, 2]}}, {{model: {b}, layer_range: [0, 3]}}]\n",
            "base" => $"merge_method: ties\nbase_model: {b}\nslices:\n  - sources: [{{model: {a}, layer_range: [0, 2]}}]\n",
            _ => $"merge_method: passthrough\nslices:\n  - sources: [{{model: {a}, layer_range: [0, 2]}}]\n",
        };
        var (code, outDir, err) = Merge(dir, yaml);
        Assert.True(code == 2, err);
        Assert.Contains(expected, err);
        Assert.False(File.Exists(Path.Combine(outDir, "model.safetensors")));
    }
}
