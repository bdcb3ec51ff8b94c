using System.Text;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.IO;

/// <summary>Hub ids resolved from the cache layout huggingface_hub writes, and downloaded from a fake hub on 127.0.0.1.</summary>
public class HuggingFaceHubTests
{
    private static readonly byte[] Weights = Enumerable.Range(0, 5000).Select(i => (byte)(i * 7)).ToArray();

    private static Dictionary<string, byte[]> TinyRepo() => new()
    {
        ["config.json"] = Encoding.UTF8.GetBytes("""{"model_type": "llama"}"""),
        ["model.safetensors"] = Weights,
        ["tokenizer.json"] = Encoding.UTF8.GetBytes("""{"model": {}}"""),
        ["pytorch_model.bin"] = [1, 2, 3],
        ["README.md"] = Encoding.UTF8.GetBytes("# card"),
    };

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static HuggingFaceHub Client(FakeHub server, string cache, string? token = null, bool offline = false) =>
        new(new HubSettings { CacheDirectory = cache, Endpoint = server.Endpoint, Token = token, Offline = offline });

    [Fact]
    public void Download_follows_the_redirect_resumes_a_cut_transfer_and_writes_the_shared_cache_layout()
    {
        using var server = new FakeHub();
        string commit = server.Add("models/org/tiny", "main", TinyRepo());
        server.CutOnce("model.safetensors");
        string cache = TestPaths.NewTempDir();
        using var hub = Client(server, cache, token: "hf_secret");

        string snap = hub.Resolve("org/tiny", ct: Ct);

        string repo = Path.Combine(cache, "models--org--tiny");
        Assert.Equal(Path.Combine(repo, "snapshots", commit), snap);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(repo, "refs", "main")));
        Assert.Equal(Weights, File.ReadAllBytes(Path.Combine(snap, "model.safetensors")));
        string sha256 = FakeHub.ETag("model.safetensors", Weights);
        Assert.Equal(Path.Combine("..", "..", "blobs", sha256), new FileInfo(Path.Combine(snap, "model.safetensors")).LinkTarget);
        Assert.True(File.Exists(Path.Combine(repo, "blobs", sha256)));
        Assert.False(File.Exists(Path.Combine(repo, "blobs", sha256 + ".incomplete")));
        Assert.Equal("""{"model_type": "llama"}""", File.ReadAllText(Path.Combine(snap, "config.json")));
        Assert.True(File.Exists(Path.Combine(snap, "tokenizer.json")));
        Assert.False(File.Exists(Path.Combine(snap, "pytorch_model.bin")));
        Assert.False(File.Exists(Path.Combine(snap, "README.md")));
        Assert.Equal("Bearer hf_secret", server.LastAuthorization);
        lock (server.Requests)
        {
            Assert.Contains("GET /api/models/org/tiny/revision/main", server.Requests);
            Assert.Contains($"GET /cdn/model.safetensors bytes={Weights.Length / 2}-", server.Requests);
            Assert.DoesNotContain(server.Requests, r => r.Contains("pytorch_model.bin"));
        }

        int before = server.Requests.Count;
        Assert.Equal(snap, hub.Resolve("org/tiny", ct: Ct));
        Assert.Equal(before, server.Requests.Count);
    }

    [Fact]
    public void A_revision_after_the_at_sign_is_asked_for_and_recorded_under_refs()
    {
        using var server = new FakeHub();
        string commit = server.Add("models/org/tiny", "v1.0", TinyRepo());
        string cache = TestPaths.NewTempDir();
        using var hub = Client(server, cache);
        string snap = hub.Resolve("org/tiny@v1.0", ct: Ct);
        Assert.EndsWith(commit, snap);
        Assert.Equal(commit, File.ReadAllText(Path.Combine(cache, "models--org--tiny", "refs", "v1.0")));
        Assert.Equal(snap, hub.CachedSnapshot("org/tiny", commit));
    }

    [Fact]
    public void Dataset_repositories_use_their_own_cache_folder_and_urls()
    {
        using var server = new FakeHub();
        var files = new Dictionary<string, byte[]> { ["data/train-00000-of-00001.parquet"] = [9, 8, 7], ["README.md"] = [1] };
        string commit = server.Add("datasets/org/images", "main", files);
        string cache = TestPaths.NewTempDir();
        using var hub = Client(server, cache);
        string snap = hub.Resolve("org/images", HubRepoType.Dataset, include: f => f.EndsWith(".parquet", StringComparison.Ordinal), ct: Ct);
        Assert.Equal(Path.Combine(cache, "datasets--org--images", "snapshots", commit), snap);
        Assert.Equal([9, 8, 7], File.ReadAllBytes(Path.Combine(snap, "data", "train-00000-of-00001.parquet")));
        Assert.Equal(Path.Combine("..", "..", "..", "blobs", FakeHub.ETag("x.parquet", [9, 8, 7])),
            new FileInfo(Path.Combine(snap, "data", "train-00000-of-00001.parquet")).LinkTarget);
        Assert.Contains($"GET /datasets/org/images/resolve/{commit}/data/train-00000-of-00001.parquet", server.Requests);
    }

    [Fact]
    public void Gated_missing_and_unreachable_repositories_are_bad_input_naming_the_id()
    {
        using var server = new FakeHub();
        server.Add("models/org/gated", "main", TinyRepo());
        server.Gated.Add("gated");
        using var hub = Client(server, TestPaths.NewTempDir());
        var gated = Assert.Throws<BadInputException>(() => hub.Resolve("org/gated", ct: Ct));
        Assert.Contains("org/gated", gated.Message);
        Assert.Contains("HF_TOKEN", gated.Message);
        var missing = Assert.Throws<BadInputException>(() => hub.Resolve("org/nothing", ct: Ct));
        Assert.Contains("org/nothing", missing.Message);
        Assert.Contains("404", missing.Message);

        string endpoint = server.Endpoint;
        server.Dispose();
        using var down = new HuggingFaceHub(new HubSettings { CacheDirectory = TestPaths.NewTempDir(), Endpoint = endpoint });
        var net = Assert.Throws<BadInputException>(() => down.Resolve("org/tiny", ct: Ct));
        Assert.Contains("org/tiny", net.Message);
        Assert.Contains("could not be reached", net.Message);
    }

    [Fact]
    public void Offline_uses_the_cache_only()
    {
        using var server = new FakeHub();
        server.Add("models/org/tiny", "main", TinyRepo());
        string cache = TestPaths.NewTempDir();
        using (var offline = Client(server, cache, offline: true))
        {
            var e = Assert.Throws<BadInputException>(() => offline.Resolve("org/tiny", ct: Ct));
            Assert.Contains("HF_HUB_OFFLINE", e.Message);
            Assert.Empty(server.Requests);
        }
        using (var online = Client(server, cache)) online.Resolve("org/tiny", ct: Ct);
        using (var offline = Client(server, cache, offline: true)) Assert.True(File.Exists(Path.Combine(offline.Resolve("org/tiny", ct: Ct), "model.safetensors")));
    }

    [Theory]
    [InlineData("mistralai/Mistral-7B-v0.1", true)]
    [InlineData("gpt2", true)]
    [InlineData("org/name@refs/pr/1", true)]
    [InlineData("model.safetensors", false)]
    [InlineData("./local/dir", false)]
    [InlineData("/abs/path", false)]
    [InlineData("a/b/c", false)]
    public void Repo_id_shape(string reference, bool expected) => Assert.Equal(expected, HuggingFaceHub.LooksLikeRepoId(reference));

    [Fact]
    public void Merge_config_with_hub_ids_runs_from_the_cache_offline_including_an_id_at_a_revision()
    {
        string dir = TestPaths.NewTempDir();
        string model = MergekitExamplesTests.WriteModel(dir, "src", "LlamaForCausalLM", 5);
        string id = $"hubtest/tiny-{Guid.NewGuid():N}";
        string repo = Path.Combine(HubIsolation.Cache, "models--" + id.Replace("/", "--"));
        string commit = FakeHub.Commit(id);
        string snap = Path.Combine(repo, "snapshots", commit);
        Directory.CreateDirectory(Path.Combine(repo, "blobs"));
        Directory.CreateDirectory(snap);
        foreach (var f in Directory.GetFiles(model))
        {
            string blob = Path.Combine(repo, "blobs", Path.GetFileName(f) + "-blob");
            File.Copy(f, blob);
            File.CreateSymbolicLink(Path.Combine(snap, Path.GetFileName(f)), Path.Combine("..", "..", "blobs", Path.GetFileName(blob)));
        }
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), commit);
        string config = Path.Combine(dir, "c.yml");
        File.WriteAllText(config, $"merge_method: linear\nmodels:\n  - model: {id}\n    parameters: {{weight: 1.0}}\n  - model: {id}@{commit}\n    parameters: {{weight: 1.0}}\n");
        var (code, o, e) = CliRunner.Run("merge", config, Path.Combine(dir, "out"), "--device", "cpu", "--offline");
        Assert.True(code == 0, e + o);
        using var a = ModelSource.Open(model);
        using var merged = ModelSource.Open(Path.Combine(dir, "out"));
        Assert.Equal(a.ReadFloat32("model.norm.weight"), merged.ReadFloat32("model.norm.weight"));
        Assert.Contains(id, File.ReadAllText(Path.Combine(dir, "out", "README.md")));

        File.WriteAllText(config, "merge_method: linear\nmodels:\n  - model: hubtest/not-cached\n");
        var (code2, _, e2) = CliRunner.Run("merge", config, Path.Combine(dir, "out2"), "--device", "cpu");
        Assert.Equal(2, code2);
        Assert.Contains("hubtest/not-cached", e2);
    }
}
