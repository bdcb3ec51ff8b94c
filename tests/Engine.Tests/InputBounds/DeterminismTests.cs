using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Cli;

namespace TaskMerge.Engine.Tests.InputBounds;

/// <summary>
/// Same bytes on any run and any thread count on the CPU backend: every method (each examples/*.yml, plus a
/// zoo config for each method no example covers) merged with <c>-j 1</c> and <c>-j 2</c> gives identical
/// output tensors; the native LAPACK (when one loads) returns bit-identical decompositions from any thread and
/// buffer alignment.
/// </summary>
public class DeterminismTests
{
    private static readonly Dictionary<string, string> MoreMethods = new()
    {
        ["dare_linear"] = "merge_method: dare_linear\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    parameters: {density: 0.5}\n  - model: ZOO/expert_1\n    parameters: {density: 0.7}\n",
        ["breadcrumbs"] = "merge_method: breadcrumbs\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1]\nparameters: {density: 0.8, gamma: 0.05}\n",
        ["breadcrumbs_ties"] = "merge_method: breadcrumbs_ties\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1, ZOO/expert_2]\nparameters: {density: 0.8, gamma: 0.05}\n",
        ["model_stock"] = "merge_method: model_stock\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1, ZOO/expert_2]\n",
        ["della"] = "merge_method: della\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1]\nparameters: {density: 0.5, epsilon: 0.1}\n",
        ["della_linear"] = "merge_method: della_linear\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1]\nparameters: {density: 0.5, epsilon: 0.1}\n",
        ["slerp"] = "merge_method: slerp\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\nparameters: {t: [0, 0.3, 1]}\n",
        ["nuslerp"] = "merge_method: nuslerp\nmodels:\n  - model: ZOO/expert_0\n    parameters: {weight: 0.4}\n  - model: ZOO/expert_1\n    parameters: {weight: 0.6}\n",
        ["multislerp"] = "merge_method: multislerp\nbase_model: ZOO/base\nmodels:\n  - model: ZOO/expert_0\n    parameters: {weight: 1}\n  - model: ZOO/expert_1\n    parameters: {weight: 0.5}\n  - model: ZOO/expert_2\n    parameters: {weight: 0.25}\n",
        ["karcher"] = "merge_method: karcher\nmodels: [ZOO/expert_0, ZOO/expert_1, ZOO/expert_2]\n",
        ["nearswap"] = "merge_method: nearswap\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\nparameters: {t: 0.01}\n",
        ["ram"] = "merge_method: ram\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1, ZOO/expert_2]\n",
        ["ramplus_tl"] = "merge_method: ramplus_tl\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1, ZOO/expert_2]\n",
        ["sce"] = "merge_method: sce\nbase_model: ZOO/base\nmodels: [ZOO/expert_0, ZOO/expert_1, ZOO/expert_2]\nparameters: {select_topk: 0.5}\n",
        ["arcee_fusion"] = "merge_method: arcee_fusion\nbase_model: ZOO/base\nmodels: [ZOO/expert_0]\n",
        ["passthrough"] = "merge_method: passthrough\nmodels:\n  - model: ZOO/expert_0\n    parameters: {scale: 0.5}\n",
    };

    public static TheoryData<string> Configs()
    {
        var data = new TheoryData<string>();
        foreach (var f in Directory.GetFiles(TestPaths.Examples, "*.yml").Order(StringComparer.Ordinal)) data.Add(Path.GetFileName(f));
        foreach (var m in MoreMethods.Keys) data.Add(m);
        return data;
    }

    private static string MethodOf(string configPath) =>
        File.ReadAllLines(configPath).Select(l => l.Trim()).First(l => l.StartsWith("merge_method:"))["merge_method:".Length..].Trim();

    [Fact]
    public void Every_registered_method_is_covered()
    {
        var covered = Directory.GetFiles(TestPaths.Examples, "*.yml").Select(MethodOf).Concat(MoreMethods.Keys).ToHashSet();
        Assert.Equal([], MethodRegistry.Names.Where(n => !covered.Contains(n)).ToArray());
    }

    [Theory]
    [MemberData(nameof(Configs))]
    public void Same_bytes_with_one_and_two_threads(string config)
    {
        string dir = TestPaths.NewTempDir();
        string cfg = config.EndsWith(".yml") ? Path.Combine(TestPaths.Examples, config) : BadInputAssert.Config(dir, MoreMethods[config]);
        byte[] Run(string j, string name)
        {
            string outDir = Path.Combine(dir, name);
            var (code, _, err) = CliRunner.Run("merge", cfg, outDir, "--device", "cpu", "--quiet", "-j", j, "--random-seed", "7");
            Assert.True(code == 0, err);
            return File.ReadAllBytes(Path.Combine(outDir, "model.safetensors"));
        }
        var a = Run("1", "j1");
        var b = Run("2", "j2");
        Assert.True(a.AsSpan().SequenceEqual(b), $"{config}: -j 1 and -j 2 wrote different bytes");
        var c = Run("2", "j2-again");
        Assert.True(b.AsSpan().SequenceEqual(c), $"{config}: two -j 2 runs wrote different bytes");
    }

    [Fact]
    public void Decompositions_are_bit_identical_across_threads_and_alignments()
    {
        var la = CpuLinearAlgebra.Create(CpuLinearAlgebra.ProviderFromEnvironment(Environment.GetEnvironmentVariable));
        const int m = 160, n = 120, k = 120;
        var rng = new Random(11);
        var a = Enumerable.Range(0, m * n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var sym = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double sum = 0;
                for (int r = 0; r < m; r++) sum += a[r * n + i] * a[r * n + j];
                sym[i * n + j] = (float)sum;
            }

        float[] Decompose(int shift)
        {
            var input = new float[m * n + shift];
            a.CopyTo(input, shift);
            var symIn = new float[n * n + shift];
            sym.CopyTo(symIn, shift);
            float[] u = new float[m * k], s = new float[k], vt = new float[k * n], w = new float[n], v = new float[n * n];
            la.Svd(input.AsSpan(shift, m * n), m, n, u, s, vt);
            la.SymmetricEigen(symIn.AsSpan(shift, n * n), n, w, v);
            return [.. u, .. s, .. vt, .. w, .. v];
        }

        var reference = Decompose(0);
        var results = new float[8][];
        Parallel.For(0, results.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => results[i] = Decompose(i % 4));
        foreach (var r in results) Assert.True(reference.AsSpan().SequenceEqual(r), la.Description + " gave different bits");
    }
}
