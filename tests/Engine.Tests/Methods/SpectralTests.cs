using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Cli;
using static TaskMerge.Engine.Tests.Methods.SpectralReference;

namespace TaskMerge.Engine.Tests.Methods;

/// <summary>
/// TSV-M, Iso-C and Iso-CTS against the independent float64 reference (<see cref="SpectralReference"/>).
/// The merged tensors are compared, not singular vectors, so the sign and rotation freedom of the
/// SVDs cancels. Test task vectors have well-separated singular values at every truncation point
/// (a decaying head over a sloped floor, plus noise): where two singular values tie, the truncated
/// subspace itself is undefined and no two SVD codes need agree.
/// </summary>
public class SpectralTests
{
    private const double Tolerance = 1e-4;

    public static TheoryData<string, int, int, int, int> Shapes => new()
    {
        // provider, m, n, experts, seed; 24×16 with 6 experts keeps 6·2 of 16 directions (FusionBench's zero padding)
        { "native", 24, 16, 4, 1 },
        { "native", 16, 40, 5, 2 },
        { "native", 32, 32, 8, 3 },
        { "native", 24, 16, 6, 4 },
        { "managed", 24, 16, 6, 4 },
        { "managed", 16, 40, 4, 5 },
        { "managed", 32, 32, 4, 6 },
    };

    private static CpuBackend Backend(string provider)
    {
        if (provider == "native")
            Assert.SkipUnless(CpuLinearAlgebra.NativeAvailable(out _), "no native LAPACK on this machine");
        return new CpuBackend(2, provider == "native" ? LapackProvider.Native : LapackProvider.Managed);
    }

    private static double Gauss(Random r) => Math.Sqrt(-2 * Math.Log(1 - r.NextDouble())) * Math.Cos(2 * Math.PI * r.NextDouble());

    /// <summary>m×k with orthonormal columns, orthogonal to the columns of <paramref name="against"/> when given.</summary>
    private static double[,] RandomOrthonormal(Random r, int m, int k, double[,]? against = null)
    {
        var q = new double[m, k];
        for (int j = 0; j < k; j++)
        {
            var col = Enumerable.Range(0, m).Select(_ => Gauss(r)).ToArray();
            for (int pass = 0; pass < 2; pass++)
            {
                if (against is not null) Orthogonalise(col, against, against.GetLength(1));
                Orthogonalise(col, q, j);
            }
            double norm = Math.Sqrt(col.Sum(x => x * x));
            for (int i = 0; i < m; i++) q[i, j] = col[i] / norm;
        }
        return q;

        static void Orthogonalise(double[] col, double[,] basis, int count)
        {
            for (int b = 0; b < count; b++)
            {
                double dot = 0;
                for (int i = 0; i < col.Length; i++) dot += col[i] * basis[i, b];
                for (int i = 0; i < col.Length; i++) col[i] -= dot * basis[i, b];
            }
        }
    }

    private static double[,] FromFactors(double[,] q, double[] s, double[,] p) => MatMul(ScaleColumns(q, s), Transpose(p));

    /// <summary>
    /// Base θ₀ and experts θᵢ = θ₀ + τᵢ (float32). τᵢ = Qᵢ·diag(σ)·Pᵢᵀ + noise with σⱼ = aᵢ(0.7ʲ + 0.1 + 0.05(k−j)/k):
    /// a low-rank head over a floor, every gap at least 0.05·aᵢ/k. With <paramref name="commonRank"/> c &gt; 0 every
    /// task also carries one shared rank-c component, and its own part lies outside that component's column space,
    /// so Σ τᵢ has a clear gap after c directions (what Iso-CTS's common subspace needs).
    /// </summary>
    private static (float[] Base, float[][] Experts) Zoo(Random r, int m, int n, int experts, int commonRank = 0)
    {
        int k = Math.Min(m, n);
        double[,]? qc = null, common = null;
        if (commonRank > 0)
        {
            qc = RandomOrthonormal(r, m, commonRank);
            var gamma = Enumerable.Range(0, commonRank).Select(j => 2.0 * (1 - 0.3 * j / commonRank)).ToArray();
            common = FromFactors(qc, gamma, RandomOrthonormal(r, n, commonRank));
        }
        var baseV = Enumerable.Range(0, m * n).Select(_ => (float)(0.02 * Gauss(r))).ToArray();
        var result = new float[experts][];
        for (int e = 0; e < experts; e++)
        {
            int rank = k - commonRank;
            double a = 1 + 0.3 * e;
            var sigma = Enumerable.Range(0, rank).Select(j => a * (Math.Pow(0.7, j) + 0.1 + 0.05 * (rank - j) / rank)).ToArray();
            var tau = FromFactors(RandomOrthonormal(r, m, rank, qc), sigma, RandomOrthonormal(r, n, rank));
            result[e] = new float[m * n];
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                    result[e][i * n + j] = (float)(baseV[i * n + j] + tau[i, j] + (common?[i, j] ?? 0) + 1e-3 * Gauss(r));
        }
        return (baseV, result);
    }

    /// <summary>τᵢ as the engine forms it (float32 θᵢ − θ₀), as float64 matrices.</summary>
    private static double[][,] TaskVectors(float[] baseV, float[][] experts, int m, int n, double[]? weights = null) =>
        experts.Select((e, i) => FromRowMajor(e.Select((v, j) => (double)(v - baseV[j]) * (weights?[i] ?? 1.0)).ToArray(), m, n)).ToArray();

    private static float[] Merge(CpuBackend cpu, IMergeMethod method, float[] baseV, float[][] experts, int[] shape,
        Dictionary<string, string>? globals = null, Dictionary<string, string>[]? perModel = null, string name = "layers.0.mlp.fc1.weight",
        Dictionary<string, object>? diagnostics = null)
    {
        perModel ??= experts.Select(_ => new Dictionary<string, string>()).ToArray();
        var (merged, diag) = MethodParityTests.RunMethod(method, baseV, experts, globals ?? [], perModel, 0, name, shape, cpu);
        if (diagnostics is not null) foreach (var (k, v) in diag) diagnostics[k] = v;
        using (merged) return merged.ToArray();
    }

    /// <summary>‖merged − (θ₀ + scale·Δ_ref)‖_F / ‖scale·Δ_ref‖_F: error relative to the merged task vector.</summary>
    private static double RelativeError(float[] merged, float[] baseV, double[,] expectedDelta, double scale)
    {
        int n = expectedDelta.GetLength(1);
        double err = 0, norm = 0;
        for (int i = 0; i < merged.Length; i++)
        {
            double expected = scale * expectedDelta[i / n, i % n];
            double got = merged[i] - (double)baseV[i];
            err += (got - expected) * (got - expected);
            norm += expected * expected;
        }
        return Math.Sqrt(err / norm);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Tsv_m_matches_the_float64_reference(string provider, int m, int n, int experts, int seed)
    {
        var cpu = Backend(provider);
        var (baseV, ex) = Zoo(new Random(seed), m, n, experts);
        var diag = new Dictionary<string, object>();
        var merged = Merge(cpu, new TsvMergeMethod(), baseV, ex, [m, n], new() { ["alpha"] = "0.7" }, diagnostics: diag);
        double err = RelativeError(merged, baseV, TsvM(TaskVectors(baseV, ex, m, n)), 0.7);
        Assert.True(err <= Tolerance, $"relative error {err:E2}");
        Assert.Equal((int)(Math.Min(m, n) * (1.0 / experts)), diag["rank_per_task"]);
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Iso_c_matches_the_float64_reference(string provider, int m, int n, int experts, int seed)
    {
        var cpu = Backend(provider);
        var (baseV, ex) = Zoo(new Random(seed), m, n, experts);
        var merged = Merge(cpu, new IsoCMethod(), baseV, ex, [m, n], new() { ["scaling_factor"] = "1.5" });
        double err = RelativeError(merged, baseV, IsoC(TaskVectors(baseV, ex, m, n)), 1.5);
        Assert.True(err <= Tolerance, $"relative error {err:E2}");
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void Iso_cts_matches_the_float64_reference(string provider, int m, int n, int experts, int seed)
    {
        var cpu = Backend(provider);
        var (c, d) = SubspaceSizes(Math.Min(m, n), experts, 0.8);
        var (baseV, ex) = Zoo(new Random(seed), m, n, experts, commonRank: c);
        var diag = new Dictionary<string, object>();
        var merged = Merge(cpu, new IsoCtsMethod(), baseV, ex, [m, n], new() { ["scaling_factor"] = "1.5" }, diagnostics: diag);
        double err = RelativeError(merged, baseV, IsoCts(TaskVectors(baseV, ex, m, n), 0.8), 1.5);
        Assert.True(err <= Tolerance, $"relative error {err:E2}");
        Assert.Equal(c, diag["common_rank"]);
        Assert.Equal(d, diag["rank_per_task"]);
    }

    [Theory]
    [InlineData("native", 0.5)]
    [InlineData("managed", 0.3)]
    [InlineData("native", 0.0)]
    public void Iso_cts_matches_the_reference_at_other_common_space_fractions(string provider, double fraction)
    {
        var cpu = Backend(provider);
        const int m = 30, n = 20, experts = 4;
        var (c, _) = SubspaceSizes(n, experts, fraction);
        var (baseV, ex) = Zoo(new Random(17), m, n, experts, commonRank: c);
        var merged = Merge(cpu, new IsoCtsMethod(), baseV, ex, [m, n], new() { ["common_space_fraction"] = $"{fraction}" });
        double err = RelativeError(merged, baseV, IsoCts(TaskVectors(baseV, ex, m, n), fraction), 1.0);
        Assert.True(err <= Tolerance, $"relative error {err:E2}");
    }

    [Fact]
    public void Tsv_m_per_model_weight_scales_each_task_vector_before_the_svds()
    {
        var cpu = Backend("managed");
        const int m = 20, n = 24, experts = 4;
        var (baseV, ex) = Zoo(new Random(8), m, n, experts);
        double[] w = [1.0, 0.5, 2.0, 0.25];
        var per = w.Select(x => new Dictionary<string, string> { ["weight"] = $"{x}" }).ToArray();
        var merged = Merge(cpu, new TsvMergeMethod(), baseV, ex, [m, n], perModel: per);
        double err = RelativeError(merged, baseV, TsvM(TaskVectors(baseV, ex, m, n, w)), 1.0);
        Assert.True(err <= Tolerance, $"relative error {err:E2}");
    }

    [Theory]
    [InlineData("tsv_m", "alpha")]
    [InlineData("tsv_m", "scaling_factor")]
    [InlineData("iso_c", "scaling_factor")]
    [InlineData("iso_c", "lambda")]
    [InlineData("iso_cts", "lambda")]
    public void Scale_parameter_and_its_alias_scale_the_merged_task_vector(string method, string parameter)
    {
        var cpu = Backend("managed");
        var (baseV, ex) = Zoo(new Random(9), 12, 10, 3);
        var plain = Merge(cpu, MethodRegistry.Create(method), baseV, ex, [12, 10]);
        var scaled = Merge(cpu, MethodRegistry.Create(method), baseV, ex, [12, 10], new() { [parameter] = "0.25" });
        for (int i = 0; i < plain.Length; i++)
            Assert.Equal(0.25 * (plain[i] - baseV[i]), scaled[i] - baseV[i], 1e-6);
    }

    [Theory]
    [InlineData("tsv_m")]
    [InlineData("iso_c")]
    [InlineData("iso_cts")]
    public void Tensors_that_are_not_matrices_get_the_mean_task_vector_times_the_scale(string method)
    {
        var cpu = Backend("managed");
        var r = new Random(10);
        foreach (int[] shape in new[] { new[] { 37 }, new[] { 4, 3, 2, 2 } })
        {
            int len = shape.Aggregate(1, (a, b) => a * b);
            var baseV = Enumerable.Range(0, len).Select(_ => (float)Gauss(r)).ToArray();
            var ex = Enumerable.Range(0, 3).Select(_ => baseV.Select(b => b + (float)(0.1 * Gauss(r))).ToArray()).ToArray();
            string scaleName = method == "tsv_m" ? "alpha" : "scaling_factor";
            var merged = Merge(cpu, MethodRegistry.Create(method), baseV, ex, shape, new() { [scaleName] = "2" }, name: "layers.0.layer_norm1.weight");
            for (int i = 0; i < len; i++)
            {
                double mean = ex.Average(e => (double)(e[i] - baseV[i]));
                Assert.Equal(baseV[i] + 2 * mean, merged[i], 1e-5);
            }
        }
    }

    [Theory]
    [InlineData("tsv_m", "vision_model.embeddings.position_embedding.weight")]
    [InlineData("iso_c", "position_embedding")]
    [InlineData("iso_cts", "^vision_model\\.embeddings\\.")]
    public void Excluded_keys_get_the_mean_task_vector(string method, string pattern)
    {
        var cpu = Backend("managed");
        var (baseV, ex) = Zoo(new Random(11), 10, 12, 3);
        var globals = new Dictionary<string, string> { ["exclude_keys"] = pattern };
        var merged = Merge(cpu, MethodRegistry.Create(method), baseV, ex, [10, 12], globals, name: "vision_model.embeddings.position_embedding.weight");
        for (int i = 0; i < baseV.Length; i++)
            Assert.Equal(baseV[i] + ex.Average(e => (double)(e[i] - baseV[i])), merged[i], 1e-5);

        var other = Merge(cpu, MethodRegistry.Create(method), baseV, ex, [10, 12], globals, name: "vision_model.encoder.layers.0.mlp.fc1.weight");
        Assert.True(other.Where((v, i) => Math.Abs(v - merged[i]) > 1e-3).Any(), "a key the patterns do not match is merged spectrally");
    }

    [Fact]
    public void Invalid_exclude_keys_regex_is_bad_input()
    {
        var (baseV, ex) = Zoo(new Random(12), 6, 6, 2);
        var e = Assert.Throws<BadInputException>(() =>
            Merge(Backend("managed"), new IsoCMethod(), baseV, ex, [6, 6], new() { ["exclude_keys"] = "fc1[" }));
        Assert.Contains("exclude_keys", e.Message);
    }

    [Fact]
    public void Tsv_m_with_one_expert_returns_that_expert()
    {
        var (baseV, ex) = Zoo(new Random(13), 14, 9, 1);
        var merged = Merge(Backend("managed"), new TsvMergeMethod(), baseV, ex, [14, 9]);
        for (int i = 0; i < merged.Length; i++) Assert.Equal(ex[0][i], merged[i], 1e-5);
    }

    [Fact]
    public void Tsv_m_with_more_experts_than_the_smaller_dimension_keeps_the_base_as_fusion_bench_does()
    {
        var (baseV, ex) = Zoo(new Random(14), 3, 8, 4);
        var diag = new Dictionary<string, object>();
        var merged = Merge(Backend("managed"), new TsvMergeMethod(), baseV, ex, [3, 8], diagnostics: diag);
        Assert.Equal(0, diag["rank_per_task"]);
        Assert.Equal(baseV, merged);
    }

    [Fact]
    public void Iso_cts_with_the_whole_space_common_equals_iso_c()
    {
        var cpu = Backend("managed");
        var (baseV, ex) = Zoo(new Random(15), 18, 12, 3);
        var cts = Merge(cpu, new IsoCtsMethod(), baseV, ex, [18, 12], new() { ["common_space_fraction"] = "1" });
        var c = Merge(cpu, new IsoCMethod(), baseV, ex, [18, 12]);
        for (int i = 0; i < c.Length; i++) Assert.Equal(c[i], cts[i], 1e-5);
    }

    [Theory]
    [InlineData(768, 8, 0.8, 616, 19)]
    [InlineData(16, 5, 0.8, 11, 1)]
    [InlineData(10, 4, 0.8, 10, 0)]
    [InlineData(30, 4, 0.8, 22, 2)]
    [InlineData(64, 4, 0.8, 52, 3)]
    [InlineData(20, 4, 0.0, 0, 5)]
    public void Iso_cts_splits_directions_as_fusion_bench_does(int k, int tasks, double fraction, int common, int perTask)
    {
        Assert.Equal((common, perTask), IsoCtsMethod.SubspaceSizes(k, tasks, fraction));
        Assert.Equal((common, perTask), SubspaceSizes(k, tasks, fraction));
    }

    [Theory]
    [InlineData("1.5")]
    [InlineData("-0.1")]
    public void Iso_cts_common_space_fraction_outside_0_1_is_bad_input(string fraction)
    {
        var (baseV, ex) = Zoo(new Random(16), 6, 6, 2);
        var e = Assert.Throws<BadInputException>(() =>
            Merge(Backend("managed"), new IsoCtsMethod(), baseV, ex, [6, 6], new() { ["common_space_fraction"] = fraction }));
        Assert.Contains("common_space_fraction", e.Message);
    }

    [Fact]
    public void Iso_cts_common_subspace_that_would_be_negative_is_bad_input()
    {
        var (baseV, ex) = Zoo(new Random(18), 11, 14, 2);
        var e = Assert.Throws<BadInputException>(() =>
            Merge(Backend("managed"), new IsoCtsMethod(), baseV, ex, [11, 14], new() { ["common_space_fraction"] = "0" }));
        Assert.Contains("negative common subspace", e.Message);
    }

    [Fact]
    public void Reference_jacobi_svd_is_orthonormal_and_exact_in_float64()
    {
        var r = new Random(19);
        foreach (var (m, n) in new[] { (9, 5), (5, 9), (7, 7) })
        {
            var a = new double[m, n];
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) a[i, j] = Gauss(r);
            var (u, s, vt) = JacobiSvd(a);
            var back = MatMul(ScaleColumns(u, s), vt);
            for (int i = 0; i < m; i++) for (int j = 0; j < n; j++) Assert.Equal(a[i, j], back[i, j], 1e-12);
            var utu = MatMul(Transpose(u), u);
            var vvt = MatMul(vt, Transpose(vt));
            for (int i = 0; i < s.Length; i++)
                for (int j = 0; j < s.Length; j++)
                {
                    Assert.Equal(i == j ? 1 : 0, utu[i, j], 1e-12);
                    Assert.Equal(i == j ? 1 : 0, vvt[i, j], 1e-12);
                }
            Assert.True(s.Zip(s.Skip(1)).All(p => p.First >= p.Second));
        }
    }

    [Theory]
    [InlineData("tsv_m")]
    [InlineData("iso_c")]
    [InlineData("iso_cts")]
    public void Example_config_merges_the_zoo_and_matches_the_reference_per_tensor(string method)
    {
        string outDir = TestPaths.NewTempDir();
        var (code, stdout, stderr) = CliRunner.Run("merge", Path.Combine(TestPaths.Examples, method + ".yml"), outDir, "--device", "cpu");
        Assert.True(code == 0, stderr + stdout);
        using var merged = ModelSource.Open(outDir);
        using var baseM = ModelSource.Open(Path.Combine(TestPaths.Examples, "zoo/base"));
        var experts = Enumerable.Range(0, 4).Select(i => ModelSource.Open(Path.Combine(TestPaths.Examples, $"zoo/expert_{i}"))).ToArray();
        try
        {
            Assert.Equal(baseM.Tensors.Select(t => t.Name), merged.Tensors.Select(t => t.Name));
            var config = File.ReadAllText(Path.Combine(TestPaths.Examples, method + ".yml"));
            double scale = method == "tsv_m" ? 1.0 : 1.5;
            foreach (var t in baseM.Tensors.Where(t => t.DType != DType.I64))
            {
                var b = baseM.ReadFloat32(t.Name);
                var ex = experts.Select(e => e.ReadFloat32(t.Name)).ToArray();
                var got = merged.ReadFloat32(t.Name);
                bool matrix = t.Shape.Length == 2 && !(config.Contains("position_embedding") && t.Name.Contains("position_embedding"));
                if (!matrix)
                {
                    for (int i = 0; i < got.Length; i++)
                        Assert.Equal(b[i] + scale * ex.Average(e => (double)(e[i] - b[i])), got[i], 1e-5);
                    continue;
                }
                int m = (int)t.Shape[0], n = (int)t.Shape[1];
                var taus = TaskVectors(b, ex, m, n);
                var delta = method switch { "tsv_m" => TsvM(taus), "iso_c" => IsoC(taus), _ => IsoCts(taus, 0.8) };
                double err = RelativeError(got, b, delta, scale);
                Assert.True(err <= Tolerance, $"{t.Name}: relative error {err:E2}");
            }
        }
        finally
        {
            foreach (var e in experts) e.Dispose();
        }
    }
}
