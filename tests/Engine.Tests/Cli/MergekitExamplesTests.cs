using System.Text.RegularExpressions;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tests.Methods;
using TaskMerge.Engine.Tests.Models;

namespace TaskMerge.Engine.Tests.Cli;

/// <summary>mergekit's own <c>examples/*.yml</c> (data/mergekit-examples, source commit in SOURCE.md) on small synthetic models.</summary>
public class MergekitExamplesTests
{
    private const int Layers = 3, Hidden = 16, Vocab = 24;

    private static string ExampleText(string name) => File.ReadAllText(Path.Combine(TestPaths.Data, "mergekit-examples", name + ".yml"));

    /// <summary>A LLaMA/Mistral-shaped model: embeddings, <see cref="Layers"/> decoder layers, final norm and head.</summary>
    internal static string WriteModel(string dir, string id, string architecture, int seed, int layers = Layers)
    {
        string path = Path.Combine(dir, id.Replace('/', '_'));
        Directory.CreateDirectory(path);
        var r = new Random(seed);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var w = new Weights();
        void Add(string name, params int[] shape) => w.Add(name, Values(shape.Aggregate(1, (x, y) => x * y)), shape);
        Add("model.embed_tokens.weight", Vocab, Hidden);
        for (int i = 0; i < layers; i++)
        {
            foreach (var p in new[] { "q_proj", "k_proj", "v_proj", "o_proj" }) Add($"model.layers.{i}.self_attn.{p}.weight", Hidden, Hidden);
            foreach (var p in new[] { "gate_proj", "up_proj" }) Add($"model.layers.{i}.mlp.{p}.weight", 2 * Hidden, Hidden);
            Add($"model.layers.{i}.mlp.down_proj.weight", Hidden, 2 * Hidden);
            Add($"model.layers.{i}.input_layernorm.weight", Hidden);
            Add($"model.layers.{i}.post_attention_layernorm.weight", Hidden);
        }
        Add("model.norm.weight", Hidden);
        Add("lm_head.weight", Vocab, Hidden);
        w.WriteModel(path);
        string type = architecture.StartsWith("Mistral") ? "mistral" : "llama";
        File.WriteAllText(Path.Combine(path, "config.json"),
            $$"""{"architectures": ["{{architecture}}"], "model_type": "{{type}}", "hidden_size": {{Hidden}}, "num_hidden_layers": {{layers}}, "vocab_size": {{Vocab}}, "torch_dtype": "bfloat16"}""");
        return path;
    }

    /// <summary>Writes the example with every hub id replaced by a synthetic model; returns the config path and the models by id.</summary>
    private static (string Config, Dictionary<string, string> Models) Prepare(string example, string dir, int layers = Layers)
    {
        string text = ExampleText(example);
        var ids = Regex.Matches(text, @"model:\s*([\w.-]+/[\w.-]+)").Select(m => m.Groups[1].Value).Distinct().ToList();
        var models = new Dictionary<string, string>();
        for (int k = 0; k < ids.Count; k++)
        {
            string arch = ids[k].Contains("istral", StringComparison.OrdinalIgnoreCase) ? "MistralForCausalLM" : "LlamaForCausalLM";
            models[ids[k]] = WriteModel(dir, ids[k], arch, 100 + k, layers);
        }
        foreach (var (id, path) in models) text = text.Replace(id, path);
        string config = Path.Combine(dir, example + ".yml");
        File.WriteAllText(config, text);
        return (config, models);
    }

    /// <summary>mergekit ≥ 0.1.2's t: layer i of L at i/(L−1), everything else at 0.</summary>
    private static double Depth(string name)
    {
        var m = Regex.Match(name, @"\.layers\.(\d+)\.");
        return m.Success ? int.Parse(m.Groups[1].Value) / (double)(Layers - 1) : 0;
    }

    private static double Gradient(double[] v, double t)
    {
        double s = t * (v.Length - 1);
        int i0 = (int)s, i1 = Math.Min(v.Length - 1, i0 + 1);
        return (1 - (s - i0)) * v[i0] + (s - i0) * v[i1];
    }

    private static float[] Rounded(float[] v, DType type)
    {
        var c = (float[])v.Clone();
        FloatConvert.RoundTo(type, c);
        return c;
    }

    private static void AssertMatches(string outDir, DType stored, Func<string, double[]> expected, int layers = Layers)
    {
        using var merged = ModelSource.Open(outDir);
        Assert.Equal(3 + 9 * layers, merged.Tensors.Count);
        foreach (var t in merged.Tensors)
        {
            Assert.Equal(stored, t.DType);
            var want = Rounded(expected(t.Name).Select(x => (float)x).ToArray(), stored);
            var got = merged.ReadFloat32(t.Name);
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(want[i] - got[i]) <= 2e-3 * Math.Max(1, Math.Abs(want[i])), $"{t.Name}[{i}]: expected {want[i]}, got {got[i]}");
        }
    }

    private static (int Code, string OutDir, string Err) Run(string config, string dir)
    {
        string outDir = Path.Combine(dir, "out");
        var (code, stdout, stderr) = CliRunner.Run("merge", config, outDir, "--device", "cpu");
        return (code, outDir, stderr + stdout);
    }

    [Fact]
    public void Ties_example_with_density_and_weight_gradients_matches_the_float64_reference()
    {
        string dir = TestPaths.NewTempDir();
        var (config, models) = Prepare("ties", dir);
        var (code, outDir, err) = Run(config, dir);
        Assert.True(code == 0, err);
        Assert.Contains("\"torch_dtype\": \"float16\"", File.ReadAllText(Path.Combine(outDir, "config.json")));
        Assert.True(File.Exists(Path.Combine(outDir, "README.md")));
        using var b = ModelSource.Open(models["TheBloke/Llama-2-13B-fp16"]);
        var experts = new[] { "psmathur/orca_mini_v3_13b", "garage-bAInd/Platypus2-13B", "WizardLM/WizardMath-13B-V1.0" }.Select(id => ModelSource.Open(models[id])).ToArray();
        AssertMatches(outDir, DType.F16, name =>
        {
            double t = Depth(name);
            var ex = experts.Select(e => Rounded(e.ReadFloat32(name), DType.F16)).ToArray();
            return GtaReference.Merge(Rounded(b.ReadFloat32(name), DType.F16), ex,
                [1.0, Gradient([0, 0.3, 0.7, 1], t), name.Contains("mlp") ? 0.5 : 0],
                [Gradient([1, 0.7, 0.1], t), 0.5, 0.33], "magnitude", true, true, false, 1.0);
        });
        foreach (var e in experts) e.Dispose();
    }

    [Fact]
    public void Bio_merge_example_on_mistral_shaped_models_matches_the_float64_reference()
    {
        string dir = TestPaths.NewTempDir();
        var (config, models) = Prepare("bio-merge", dir);
        var (code, outDir, err) = Run(config, dir);
        Assert.True(code == 0, err);
        using var b = ModelSource.Open(models["mistralai/Mistral-7B-v0.1"]);
        using var e0 = ModelSource.Open(models["mistralai/Mistral-7B-Instruct-v0.2"]);
        using var e1 = ModelSource.Open(models["BioMistral/BioMistral-7B"]);
        AssertMatches(outDir, DType.F16, name => GtaReference.Merge(Rounded(b.ReadFloat32(name), DType.F16),
            [Rounded(e0.ReadFloat32(name), DType.F16), Rounded(e1.ReadFloat32(name), DType.F16)], [0.5, 0.5], [0.5, 0.5], "magnitude", true, false, false, 1.0));
    }

    [Fact]
    public void Linear_example_without_a_base_matches_the_float64_reference()
    {
        string dir = TestPaths.NewTempDir();
        var (config, models) = Prepare("linear", dir);
        var (code, outDir, err) = Run(config, dir);
        Assert.True(code == 0, err);
        var ms = new[] { "psmathur/orca_mini_v3_13b", "WizardLM/WizardLM-13B-V1.2", "garage-bAInd/Platypus2-13B" }.Select(id => ModelSource.Open(models[id])).ToArray();
        AssertMatches(outDir, DType.F16, name => GtaReference.Linear(ms.Select(m => Rounded(m.ReadFloat32(name), DType.F16)).ToArray(), [1.0, 0.3, 0.5], true));
        foreach (var m in ms) m.Dispose();
    }

    [Fact]
    public void Arcee_fusion_example_matches_the_float64_reference()
    {
        string dir = TestPaths.NewTempDir();
        string text = ExampleText("arcee_fusion");
        string a = WriteModel(dir, "model_a", "LlamaForCausalLM", 1), bPath = WriteModel(dir, "model_b", "LlamaForCausalLM", 2);
        string config = Path.Combine(dir, "arcee_fusion.yml");
        File.WriteAllText(config, text.Replace("model_a", a).Replace("model_b", bPath));
        var (code, outDir, err) = Run(config, dir);
        Assert.True(code == 0, err);
        using var ma = ModelSource.Open(a);
        using var mb = ModelSource.Open(bPath);
        using var merged = ModelSource.Open(outDir);
        AssertMatches(outDir, DType.BF16, name =>
        {
            int row = merged.Tensors.Single(t => t.Name == name).Shape[^1] is var last ? (int)last : 1;
            return ArceeFusionTests.Reference(Rounded(ma.ReadFloat32(name), DType.BF16), Rounded(mb.ReadFloat32(name), DType.BF16), row);
        });
    }

    [Fact]
    public void Gradient_slerp_slices_example_matches_the_float64_slerp_per_filter_gradient()
    {
        const int layers = 40;
        string dir = TestPaths.NewTempDir();
        var (config, models) = Prepare("gradient-slerp", dir, layers);
        var (code, outDir, err) = Run(config, dir);
        Assert.True(code == 0, err);
        using var a = ModelSource.Open(models["psmathur/orca_mini_v3_13b"]);
        using var b = ModelSource.Open(models["garage-bAInd/Platypus2-13B"]);
        AssertMatches(outDir, DType.F16, name =>
        {
            var m = Regex.Match(name, @"\.layers\.(\d+)\.");
            double depth = m.Success ? int.Parse(m.Groups[1].Value) / (double)(layers - 1) : 0;
            double t = name.Contains("self_attn") ? Gradient([0, 0.5, 0.3, 0.7, 1], depth)
                : name.Contains("mlp") ? Gradient([1, 0.5, 0.7, 0.3, 0], depth) : 0.5;
            double[] D(float[] v) => Rounded(v, DType.F16).Select(x => (double)x).ToArray();
            return SphericalReference.Slerp(t, D(a.ReadFloat32(name)), D(b.ReadFloat32(name)));
        }, layers);
    }

    [Fact]
    public void Orcamini_platy_passthrough_stacks_44_layers_renumbered_from_both_models()
    {
        string dir = TestPaths.NewTempDir();
        var (config, models) = Prepare("orcamini-platy-44layer", dir, 40);
        var (code, outDir, err) = Run(config, dir);
        Assert.True(code == 0, err);
        var cfg = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "config.json")))!;
        Assert.Equal(44, (int)cfg["num_hidden_layers"]!);
        Assert.Equal("float16", (string)cfg["torch_dtype"]!);
        using var orca = ModelSource.Open(models["psmathur/orca_mini_v3_13b"]);
        using var platy = ModelSource.Open(models["garage-bAInd/Platypus2-13B"]);
        AssertMatches(outDir, DType.F16, name =>
        {
            var m = Regex.Match(name, @"^model\.layers\.(\d+)\.(.*)$");
            float[] v;
            if (!m.Success) v = (name == "model.embed_tokens.weight" ? orca : platy).ReadFloat32(name);
            else
            {
                int k = int.Parse(m.Groups[1].Value);
                v = k < 24 ? orca.ReadFloat32(name) : platy.ReadFloat32($"model.layers.{k - 24 + 20}.{m.Groups[2].Value}");
            }
            return v.Select(x => (double)x).ToArray();
        }, 44);
        using var merged = ModelSource.Open(outDir);
        Assert.Equal(Enumerable.Range(0, 44).Select(i => $"model.layers.{i}.mlp.down_proj.weight"),
            merged.Tensors.Select(t => t.Name).Where(n => n.EndsWith("mlp.down_proj.weight")).OrderBy(n => int.Parse(n.Split('.')[2])));
    }
}
