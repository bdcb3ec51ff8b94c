using System.Diagnostics;
using TaskMerge.Engine.IO;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>Only regular files are opened as inputs: a FIFO or a device is bad input at once, never a read that blocks.</summary>
public class RegularFileTests
{
    private static string Fifo(string dir, string name)
    {
        string p = Path.Combine(dir, name);
        using var mk = Process.Start(new ProcessStartInfo("mkfifo", p) { UseShellExecute = false })!;
        mk.WaitForExit();
        Assert.Equal(0, mk.ExitCode);
        return p;
    }

    private static void Quick(Action a)
    {
        var t = Task.Run(a);
        Assert.True(t.Wait(TimeSpan.FromSeconds(20)), "blocked on a non-regular file");
        t.GetAwaiter().GetResult();
    }

    [Fact]
    public void Fifo_model_is_refused_without_blocking()
    {
        string dir = TestPaths.NewTempDir();
        string fifo = Fifo(dir, "expert.safetensors");
        string cfg = BadInputAssert.Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [{fifo}]\n");
        Quick(() => BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "expert.safetensors", "is a FIFO, not a regular file"));
    }

    [Fact]
    public void Fifo_config_is_refused_without_blocking()
    {
        string dir = TestPaths.NewTempDir();
        string fifo = Fifo(dir, "config.yml");
        Quick(() => BadInputAssert.Merge(fifo, Path.Combine(dir, "out"), "config.yml", "FIFO"));
    }

    [Fact]
    public void Fifo_model_safetensors_inside_a_directory_is_refused()
    {
        string dir = TestPaths.NewTempDir();
        string model = Path.Combine(dir, "expert");
        Directory.CreateDirectory(model);
        Fifo(model, "model.safetensors");
        string cfg = BadInputAssert.Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [{model}]\n");
        Quick(() => BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "model.safetensors", "FIFO"));
    }

    [Fact]
    public void Fifo_config_json_and_index_and_shard_are_refused()
    {
        string dir = TestPaths.NewTempDir();
        string expert = ModelFiles.CopyZoo(dir, "expert_0", "expert");
        File.Delete(Path.Combine(expert, "config.json"));
        Fifo(expert, "config.json");
        string cfg = BadInputAssert.Config(dir, $"merge_method: task_arithmetic\nbase_model: ZOO/base\nmodels: [{expert}]\n");
        Quick(() => BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "config.json", "FIFO"));

        string sharded = Path.Combine(dir, "sharded");
        Directory.CreateDirectory(sharded);
        Fifo(sharded, ModelSource.IndexFileName);
        Quick(() => Assert.Contains("FIFO", Assert.Throws<BadInputException>(() => ModelSource.Open(sharded)).Message));

        string withShard = Path.Combine(dir, "with_shard");
        Directory.CreateDirectory(withShard);
        File.WriteAllText(Path.Combine(withShard, ModelSource.IndexFileName), "{\"weight_map\": {\"a\": \"model-00001-of-00001.safetensors\"}}");
        Fifo(withShard, "model-00001-of-00001.safetensors");
        Quick(() => Assert.Contains("FIFO", Assert.Throws<BadInputException>(() => ModelSource.Open(withShard)).Message));
    }

    [Fact]
    public void Fifo_aux_data_and_head_are_refused()
    {
        string dir = TestPaths.NewTempDir();
        string aux = Fifo(dir, "aux.safetensors");
        string head = Fifo(dir, "head.safetensors");
        string yaml = File.ReadAllText(Path.Combine(TestPaths.Examples, "ri.yml"))
            .Replace("zoo/aux.safetensors", aux).Replace("zoo/", BadInputAssert.Zoo + "/");
        string cfg = Path.Combine(dir, "ri.yml");
        File.WriteAllText(cfg, yaml);
        Quick(() => BadInputAssert.Merge(cfg, Path.Combine(dir, "out"), "aux.safetensors", "FIFO"));
        File.WriteAllText(cfg, yaml.Replace(aux, BadInputAssert.Zoo + "/aux.safetensors").Replace(BadInputAssert.Zoo + "/heads/head_0.safetensors", head));
        Quick(() => BadInputAssert.Merge(cfg, Path.Combine(dir, "out2"), "head.safetensors", "FIFO"));
    }

    [Fact]
    public void Character_device_is_refused()
    {
        var e = Assert.Throws<BadInputException>(() => SafetensorsFile.Open("/dev/zero"));
        Assert.Contains("character device", e.Message);
    }

    [Fact]
    public void Path_with_a_nul_is_bad_input()
    {
        var e = Assert.Throws<BadInputException>(() => RegularFile.OpenRead("a\0b", "a"));
        Assert.Contains("NUL", e.Message);
    }
}
