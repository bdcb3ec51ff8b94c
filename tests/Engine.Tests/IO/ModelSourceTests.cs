using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using Xunit;

namespace TaskMerge.Engine.Tests.IO;

public class ModelSourceTests
{
    [Fact]
    public void MissingPath_IsBadInput_NamingIt()
    {
        using var dir = new TempDir();
        string p = dir["nope"];
        var ex = Assert.Throws<BadInputException>(() => ModelSource.Open(p));
        Assert.StartsWith(p, ex.Message);
        var ex2 = Assert.Throws<BadInputException>(() => SafetensorsFile.Open(p));
        Assert.StartsWith(p, ex2.Message);
    }

    [Fact]
    public void PickleOnlyDirectory_IsBadInput_SafetensorsOnly()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir["pytorch_model.bin"], [0x80, 0x02, 0x7d]);
        File.WriteAllText(dir["config.json"], "{}");
        var ex = Assert.Throws<BadInputException>(() => ModelSource.Open(dir.Path));
        Assert.StartsWith(dir.Path, ex.Message);
        Assert.Contains("only safetensors is supported", ex.Message);
        Assert.Contains("convert", ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Theory]
    [InlineData("pytorch_model.bin")]
    [InlineData("model.pt")]
    [InlineData("weights.pth")]
    public void PickleFile_IsBadInput_SafetensorsOnly(string name)
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir[name], [0x80, 0x02, 0x7d, 0, 0, 0, 0, 0, 0, 0]);
        var ex = Assert.Throws<BadInputException>(() => ModelSource.Open(dir[name]));
        Assert.Contains(name, ex.Message);
        Assert.Contains("only safetensors is supported", ex.Message);
        Assert.Throws<BadInputException>(() => SafetensorsFile.Open(dir[name]));
    }

    [Fact]
    public void EmptyDirectory_IsBadInput()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<BadInputException>(() => ModelSource.Open(dir.Path));
        Assert.Contains("model.safetensors", ex.Message);
    }

    [Fact]
    public void HfDirectory_FindsConfig_SingleFile_HasNoConfig()
    {
        using var dir = new TempDir();
        IOTestUtil.WriteModel(dir.Path, [new TensorSpec("w", DType.F32, [2])]);
        File.WriteAllText(dir["config.json"], "{\"model_type\":\"roberta\"}");
        using (var src = ModelSource.Open(dir.Path))
        {
            Assert.Equal(dir["config.json"], src.ConfigJsonPath);
            Assert.Equal(dir.Path, src.Directory);
            Assert.Equal(dir.Path, src.Path);
            Assert.Equal(8, src.TotalBytes);
            Assert.Single(src.Files);
            Assert.Same(src.Files[0], src.GetFile("w"));
        }
        using (var src = ModelSource.Open(dir["model.safetensors"]))
        {
            Assert.Null(src.ConfigJsonPath);
            Assert.Null(src.Directory);
            Assert.Equal(dir["model.safetensors"], src.Path);
        }
    }

    [Fact]
    public void DirectoryPrefersSingleFileOverIndex()
    {
        using var dir = new TempDir();
        IOTestUtil.WriteModel(dir.Path, [new TensorSpec("w", DType.F32, [2])]);
        File.WriteAllText(dir["model.safetensors.index.json"], "garbage");
        using var src = ModelSource.Open(dir.Path);
        Assert.Null(src.IndexPath);
        Assert.True(src.Contains("w"));
    }
}
