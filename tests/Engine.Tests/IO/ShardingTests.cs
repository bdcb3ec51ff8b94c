using System.Text.Json;
using System.Text.Json.Nodes;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using Xunit;

namespace TaskMerge.Engine.Tests.IO;

public class ShardingTests
{
    private static TensorSpec U8(string name, long n) => new(name, DType.U8, [n]);

    /// <summary>mergekit's TensorWriter rule, written independently: flush a non-empty shard before a tensor that would overflow it.</summary>
    private static List<List<string>> ReferencePlan(IEnumerable<TensorSpec> specs, long max)
    {
        var shards = new List<List<string>>();
        var cur = new List<string>();
        long size = 0;
        foreach (var s in specs)
        {
            if (size + s.ByteLength > max && cur.Count > 0)
            {
                shards.Add(cur);
                cur = [];
                size = 0;
            }
            cur.Add(s.Name);
            size += s.ByteLength;
        }
        if (cur.Count > 0) shards.Add(cur);
        return shards;
    }

    [Fact]
    public void Plan_MatchesMergekit_BigTensorsAlone_NoEmptyShards()
    {
        using var dir = new TempDir();
        var specs = new[] { U8("t0", 40), U8("t1", 40), U8("t2", 40), U8("t3", 200), U8("t4", 0), U8("t5", 40), U8("t6", 8) };
        using var w = new SafetensorsWriter(dir.Path, specs, 100);
        Assert.Equal(4, w.ShardCount);
        var expected = new[] { new[] { "t0", "t1" }, ["t2"], ["t3"], ["t4", "t5", "t6"] };
        Assert.Equal(expected.Select(x => x.ToList()), ReferencePlan(specs, 100));
        for (int s = 0; s < expected.Length; s++)
            foreach (string n in expected[s])
                Assert.Equal($"model-{s + 1:D5}-of-00004.safetensors", w.ShardFileNameOf(n));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(7)]
    [InlineData(64)]
    [InlineData(100)]
    [InlineData(1000)]
    [InlineData(100000)]
    public void Plan_MatchesReference_ForManyLimits(long max)
    {
        using var dir = new TempDir();
        var rng = new Random(3);
        var specs = Enumerable.Range(0, 40).Select(i => U8($"t{i}", rng.Next(0, 120))).ToArray();
        using var w = new SafetensorsWriter(dir.Path, specs, max);
        var plan = ReferencePlan(specs, max);
        Assert.Equal(plan.Count, w.ShardCount);
        for (int s = 0; s < plan.Count; s++)
            foreach (string n in plan[s])
                Assert.Equal(plan.Count == 1 ? "model.safetensors" : $"model-{s + 1:D5}-of-{plan.Count:D5}.safetensors", w.ShardFileNameOf(n));
    }

    [Fact]
    public void Sharded_RoundTrip_ThroughModelSource_AndIndexIsRight()
    {
        using var dir = new TempDir();
        var specs = new List<TensorSpec>();
        var dtypes = Enum.GetValues<DType>();
        for (int i = 0; i < 30; i++)
        {
            var t = dtypes[i % dtypes.Length];
            long[] shape = (i % 7) switch { 0 => [], 1 => [0, 3], 2 => [5, 6], 3 => [17], _ => [2, 3, i] };
            specs.Add(new TensorSpec($"layer.{i}.w", t, shape));
        }
        var data = IOTestUtil.WriteModel(dir.Path, specs, maxShard: 100);

        string[] files = dir.FileNames();
        Assert.Contains("model.safetensors.index.json", files);
        Assert.DoesNotContain("model.safetensors", files);
        var shardFiles = files.Where(f => f.EndsWith(".safetensors")).ToArray();
        int n = shardFiles.Length;
        Assert.True(n > 3);
        Assert.Equal(Enumerable.Range(1, n).Select(i => $"model-{i:D5}-of-{n:D5}.safetensors"), shardFiles);
        Assert.All(files, f => Assert.False(f.StartsWith('.'), $"temp file left: {f}"));

        var index = JsonNode.Parse(File.ReadAllText(dir["model.safetensors.index.json"]))!.AsObject();
        Assert.Equal(["metadata", "weight_map"], index.Select(kv => kv.Key));
        long total = specs.Sum(s => s.ByteLength);
        Assert.Equal(total, index["metadata"]!["total_size"]!.GetValue<long>());
        var wm = index["weight_map"]!.AsObject();
        Assert.Equal(specs.Select(s => s.Name), wm.Select(kv => kv.Key));
        var plan = ReferencePlan(specs, 100);
        for (int s = 0; s < plan.Count; s++)
            foreach (string name in plan[s])
                Assert.Equal(shardFiles[s], wm[name]!.GetValue<string>());

        // Every shard is a standalone valid safetensors file with format=pt metadata, within the limit unless single-tensor.
        foreach (string sf in shardFiles)
        {
            using var f = SafetensorsFile.Open(dir[sf]);
            Assert.Equal("pt", f.Metadata["format"]);
            Assert.NotEmpty(f.Tensors);
            Assert.True(f.DataLength <= 100 || f.Tensors.Count == 1);
            Assert.Equal(0, (8 + f.HeaderLength) % 8);
        }

        using var src = ModelSource.Open(dir.Path);
        Assert.Equal(dir["model.safetensors.index.json"], src.IndexPath);
        Assert.Equal(n, src.Files.Count);
        Assert.Equal(total, src.TotalBytes);
        Assert.Equal(specs.Select(s => s.Name), src.Tensors.Select(t => t.Name));
        foreach (var s in specs)
        {
            Assert.True(src.TryGet(s.Name, out var info));
            Assert.Equal(s.Shape, info.Shape);
            Assert.Equal(s.DType, info.DType);
            Assert.Equal(data[s.Name], src.GetBytes(s.Name).ToArray());
            if (s.DType.IsFloat())
            {
                var want = new float[s.ElementCount];
                FloatConvert.ToFloat(s.DType, data[s.Name], want);
                Assert.Equal(want, src.ReadFloat32(s.Name));
            }
        }

        // Opening the index file directly works too.
        using var viaIndex = ModelSource.Open(dir["model.safetensors.index.json"]);
        Assert.Equal(src.Tensors, viaIndex.Tensors);
    }

    [Fact]
    public void WrittenFiles_ListsShardsThenIndex()
    {
        using var dir = new TempDir();
        var specs = new[] { U8("a", 10), U8("b", 10), U8("c", 10) };
        using var w = new SafetensorsWriter(dir.Path, specs, 15);
        foreach (var s in specs) w.Write(s.Name, new byte[10]);
        Assert.Empty(w.WrittenFiles);
        w.Commit();
        Assert.Equal(
            [dir["model-00001-of-00003.safetensors"], dir["model-00002-of-00003.safetensors"], dir["model-00003-of-00003.safetensors"], dir["model.safetensors.index.json"]],
            w.WrittenFiles);
    }

    [Theory]
    [InlineData(0, 0)]   // nothing written
    [InlineData(1, 0)]   // first shard started
    [InlineData(3, 0)]   // several shards written
    [InlineData(3, 5)]   // in the middle of a tensor
    [InlineData(6, 0)]   // everything written, not committed
    public void Abort_LeavesNoFiles(int complete, int partialBytes)
    {
        using var dir = new TempDir();
        var specs = Enumerable.Range(0, 6).Select(i => U8($"t{i}", 10)).ToArray();
        using (var w = new SafetensorsWriter(dir.Path, specs, 25))
        {
            for (int i = 0; i < complete; i++) w.Write(specs[i].Name, new byte[10]);
            if (partialBytes > 0) w.WriteChunk(specs[complete].Name, new byte[partialBytes]);
            // Nothing visible under a final name before commit.
            Assert.All(dir.FileNames(), f => Assert.StartsWith(".", f));
        }
        Assert.Empty(dir.FileNames());
    }

    [Fact]
    public void Abort_ByException_LeavesNoModelFile()
    {
        using var dir = new TempDir();
        var specs = new[] { U8("a", 4), U8("b", 4) };
        void Run()
        {
            using var w = new SafetensorsWriter(dir.Path, specs);
            w.Write("a", new byte[4]);
            throw new InvalidOperationException("merge failed");
        }
        Assert.Throws<InvalidOperationException>(Run);
        Assert.Empty(dir.FileNames());
    }

    [Fact]
    public void Commit_ReplacesStaleOutputOfTheOtherLayout()
    {
        using var dir = new TempDir();
        var specs = new[] { U8("a", 10), U8("b", 10), U8("c", 10) };
        IOTestUtil.WriteModel(dir.Path, specs, maxShard: 15);
        Assert.Equal(4, dir.FileNames().Length);
        File.WriteAllText(dir["config.json"], "{}");

        var data = IOTestUtil.WriteModel(dir.Path, specs);
        Assert.Equal(["config.json", "model.safetensors"], dir.FileNames());
        using (var src = ModelSource.Open(dir.Path))
            Assert.Equal(data["b"], src.GetBytes("b").ToArray());

        IOTestUtil.WriteModel(dir.Path, specs, maxShard: 25);
        Assert.Equal(["config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"], dir.FileNames());
    }

    // ---- ModelSource validation of sharded models ----

    private static void MakeSharded(TempDir dir) =>
        IOTestUtil.WriteModel(dir.Path, [U8("a", 10), U8("b", 10), U8("c", 10)], maxShard: 15);

    private static void EditIndex(TempDir dir, Action<JsonObject> edit)
    {
        var root = JsonNode.Parse(File.ReadAllText(dir["model.safetensors.index.json"]))!.AsObject();
        edit(root);
        File.WriteAllText(dir["model.safetensors.index.json"], root.ToJsonString());
    }

    private static BadInputException OpenFails(TempDir dir, params string[] mentions)
    {
        var ex = Assert.Throws<BadInputException>(() => ModelSource.Open(dir.Path));
        Assert.DoesNotContain('\n', ex.Message);
        foreach (string m in mentions) Assert.Contains(m, ex.Message);
        return ex;
    }

    [Fact]
    public void Index_MissingShard()
    {
        using var dir = new TempDir();
        MakeSharded(dir);
        File.Delete(dir["model-00002-of-00003.safetensors"]);
        OpenFails(dir, "model.safetensors.index.json", "model-00002-of-00003.safetensors", "does not exist");
    }

    [Fact]
    public void Index_EntryNotInItsShard()
    {
        using var dir = new TempDir();
        MakeSharded(dir);
        EditIndex(dir, r => r["weight_map"]!["ghost"] = "model-00001-of-00003.safetensors");
        OpenFails(dir, "'ghost'", "model-00001-of-00003.safetensors");
    }

    [Fact]
    public void Index_ShardTensorMissingFromWeightMap()
    {
        using var dir = new TempDir();
        IOTestUtil.WriteModel(dir.Path, [U8("a", 5), U8("b", 5), U8("c", 5)], maxShard: 10); // [a, b], [c]
        EditIndex(dir, r => r["weight_map"]!.AsObject().Remove("b"));
        OpenFails(dir, "'b'", "missing from weight_map");
    }

    [Fact]
    public void Index_ShardFileNotReferenced()
    {
        using var dir = new TempDir();
        MakeSharded(dir);
        EditIndex(dir, r => r["weight_map"]!.AsObject().Remove("b"));
        OpenFails(dir, "model-00002-of-00003.safetensors", "does not list");
    }

    [Fact]
    public void Index_PointsAtWrongShard()
    {
        using var dir = new TempDir();
        IOTestUtil.WriteModel(dir.Path, [U8("a", 5), U8("b", 5), U8("c", 5)], maxShard: 10); // [a, b], [c]
        EditIndex(dir, r => r["weight_map"]!["b"] = "model-00002-of-00002.safetensors");
        OpenFails(dir, "'b'", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors");
    }

    [Fact]
    public void Index_NameInTwoShards()
    {
        using var dir = new TempDir();
        using (var tmp = new TempDir())
        {
            IOTestUtil.WriteModel(tmp.Path, [U8("x", 2), U8("y", 2)]);
            File.Copy(tmp["model.safetensors"], dir["s1.safetensors"]);
            IOTestUtil.WriteModel(tmp.Path, [U8("x", 2), U8("z", 2)]);
            File.Copy(tmp["model.safetensors"], dir["s2.safetensors"]);
        }
        File.WriteAllText(dir["model.safetensors.index.json"],
            """{"metadata":{},"weight_map":{"x":"s1.safetensors","y":"s1.safetensors","z":"s2.safetensors"}}""");
        OpenFails(dir, "'x'", "two shards");
    }

    [Fact]
    public void Index_NotJson_NoWeightMap_BadShardName_DuplicateKey()
    {
        using var dir = new TempDir();
        MakeSharded(dir);
        File.WriteAllText(dir["model.safetensors.index.json"], "{\"weight_map\": ");
        OpenFails(dir, "model.safetensors.index.json", "JSON");
        File.WriteAllText(dir["model.safetensors.index.json"], "{\"metadata\": {}}");
        OpenFails(dir, "weight_map");
        File.WriteAllText(dir["model.safetensors.index.json"], "{\"weight_map\": {\"a\": \"../model-00001-of-00003.safetensors\"}}");
        OpenFails(dir, "plain file name");
        File.WriteAllText(dir["model.safetensors.index.json"], "{\"weight_map\": {\"a\": 3}}");
        OpenFails(dir, "'a'");
        File.WriteAllText(dir["model.safetensors.index.json"],
            "{\"weight_map\": {\"a\": \"model-00001-of-00003.safetensors\", \"a\": \"model-00001-of-00003.safetensors\"}}");
        OpenFails(dir, "duplicate", "'a'");
    }

    [Fact]
    public void Index_CorruptShard_NamesTheShard()
    {
        using var dir = new TempDir();
        MakeSharded(dir);
        using (var fs = new FileStream(dir["model-00003-of-00003.safetensors"], FileMode.Open))
            fs.SetLength(fs.Length - 3);
        OpenFails(dir, "model-00003-of-00003.safetensors");
    }
}
