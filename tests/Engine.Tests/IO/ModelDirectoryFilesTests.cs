using System.Text.Json.Nodes;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using Xunit;

namespace TaskMerge.Engine.Tests.IO;

public class ModelDirectoryFilesTests
{
    private const string Config = """
        {
          "architectures": ["RobertaForSequenceClassification"],
          "hidden_size": 768,
          "torch_dtype": "float32",
          "text_config": {"torch_dtype": "float32"},
          "label2id": {"a": 0, "b": 1},
          "layer_norm_eps": 1e-05,
          "name": "ünïcode"
        }
        """;

    [Fact]
    public void CopiesAndRewritesTorchDtype_PreservingTheRest()
    {
        using var src = new TempDir();
        using var dst = new TempDir();
        File.WriteAllText(src["config.json"], Config);
        string? written = ModelDirectoryFiles.CopyConfig(src["config.json"], Path.Combine(dst.Path, "out"), DType.BF16);
        Assert.Equal(Path.Combine(dst.Path, "out", "config.json"), written);
        Assert.Equal(["config.json"], Directory.GetFiles(Path.Combine(dst.Path, "out")).Select(Path.GetFileName));

        string text = File.ReadAllText(written!);
        Assert.Contains("\n  \"hidden_size\"", text); // indented
        var o = JsonNode.Parse(text)!.AsObject();
        Assert.Equal("bfloat16", o["torch_dtype"]!.GetValue<string>());
        Assert.False(o.ContainsKey("dtype"));
        Assert.Equal("float32", o["text_config"]!["torch_dtype"]!.GetValue<string>()); // only top level
        var orig = JsonNode.Parse(Config)!.AsObject();
        orig["torch_dtype"] = "bfloat16";
        Assert.True(JsonNode.DeepEquals(orig, o));
        Assert.Equal(["architectures", "hidden_size", "torch_dtype", "text_config", "label2id", "layer_norm_eps", "name"], o.Select(kv => kv.Key));
    }

    [Fact]
    public void NullDtype_CopiesUnchanged_NullSource_DoesNothing()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["config.json"], Config);
        string? written = ModelDirectoryFiles.CopyConfig(dir["config.json"], dir["out"], null);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(Config), JsonNode.Parse(File.ReadAllText(written!))));
        Assert.Null(ModelDirectoryFiles.CopyConfig(null, dir["out2"], DType.F16));
        Assert.False(Directory.Exists(dir["out2"]));
    }

    [Fact]
    public void DtypeKey_IsRewritten_AndTorchDtypeAddedWhenAbsent()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["a.json"], """{"dtype": "float32", "x": 1}""");
        var a = JsonNode.Parse(File.ReadAllText(ModelDirectoryFiles.CopyConfig(dir["a.json"], dir["oa"], DType.F16)!))!.AsObject();
        Assert.Equal("float16", a["dtype"]!.GetValue<string>());
        Assert.False(a.ContainsKey("torch_dtype"));

        File.WriteAllText(dir["b.json"], """{"x": 1}""");
        var b = JsonNode.Parse(File.ReadAllText(ModelDirectoryFiles.CopyConfig(dir["b.json"], dir["ob"], DType.F32)!))!.AsObject();
        Assert.Equal("float32", b["torch_dtype"]!.GetValue<string>());

        File.WriteAllText(dir["c.json"], """{"torch_dtype": "float32", "dtype": "float32"}""");
        var c = JsonNode.Parse(File.ReadAllText(ModelDirectoryFiles.CopyConfig(dir["c.json"], dir["oc"], DType.BF16)!))!.AsObject();
        Assert.Equal("bfloat16", c["torch_dtype"]!.GetValue<string>());
        Assert.Equal("bfloat16", c["dtype"]!.GetValue<string>());
    }

    [Fact]
    public void BadConfig_IsBadInput()
    {
        using var dir = new TempDir();
        File.WriteAllText(dir["config.json"], "{ not json");
        var ex = Assert.Throws<BadInputException>(() => ModelDirectoryFiles.CopyConfig(dir["config.json"], dir["out"], DType.F16));
        Assert.StartsWith(dir["config.json"], ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
        File.WriteAllText(dir["config.json"], "[1]");
        Assert.Throws<BadInputException>(() => ModelDirectoryFiles.CopyConfig(dir["config.json"], dir["out"], DType.F16));
        Assert.Throws<BadInputException>(() => ModelDirectoryFiles.CopyConfig(dir["missing.json"], dir["out"], DType.F16));
        Assert.False(File.Exists(Path.Combine(dir["out"], "config.json")));
    }
}
