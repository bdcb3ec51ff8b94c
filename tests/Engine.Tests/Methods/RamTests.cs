using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Methods;

public class RamTests
{
    /// <summary>
    /// mergekit's ram_merge / ramplus_tl_merge in float64 with its masks: nonzero = |τ| > ε, counts over
    /// experts, unique = counts == 1, overlap = counts > 1; merged = Σₖ τₖ·nzₖ·(uniqueₖ·λₖ + overlap/max(counts, 1)).
    /// </summary>
    private static double[] Reference(float[] baseV, float[][] experts, double epsilon, double? r = null, double alpha = 0)
    {
        int n = baseV.Length, k = experts.Length;
        var tv = experts.Select(e => e.Select((v, i) => (double)(float)(v - baseV[i])).ToArray()).ToArray();
        var nz = tv.Select(t => t.Select(v => Math.Abs(v) > epsilon).ToArray()).ToArray();
        var counts = Enumerable.Range(0, n).Select(i => nz.Count(m => m[i])).ToArray();
        var lambda = new double[k];
        for (int j = 0; j < k; j++)
        {
            if (r is null) { lambda[j] = 1; continue; }
            int shared = Enumerable.Range(0, n).Count(i => nz[j][i] && counts[i] > 1);
            int unique = Enumerable.Range(0, n).Count(i => nz[j][i] && counts[i] == 1);
            double rho = shared / Math.Max(unique, epsilon);
            lambda[j] = 1 + r.Value * Math.Min(Math.Max(rho, 0), alpha);
        }
        var result = new double[n];
        for (int i = 0; i < n; i++)
        {
            double sum = 0;
            for (int j = 0; j < k; j++)
            {
                double z = nz[j][i] ? tv[j][i] : 0;
                sum += z * (counts[i] == 1 ? 1 : 0) * lambda[j] + z * (counts[i] > 1 ? 1 : 0) / Math.Max(counts[i], 1);
            }
            result[i] = baseV[i] + sum;
        }
        return result;
    }

    /// <summary>Sparse task vectors (so entries are unique, shared or absent), some below ε.</summary>
    private static float[][] Experts(float[] baseV, int k, int seed)
    {
        var rnd = new Random(seed);
        return Enumerable.Range(0, k).Select(_ => baseV.Select(b =>
        {
            double u = rnd.NextDouble();
            return u < 0.5 ? b : u < 0.55 ? b + 1e-6f : b + (float)(rnd.NextDouble() - 0.5);
        }).ToArray()).ToArray();
    }

    private static float[] Base(int n) => Enumerable.Range(0, n).Select(i => (float)Math.Sin(i * 0.37)).ToArray();

    [Theory]
    [InlineData(2, 1e-5)]
    [InlineData(3, 1e-5)]
    [InlineData(5, 0.1)]
    public void Ram_matches_float64_mergekit_formula(int k, double epsilon)
    {
        var baseV = Base(400);
        var ex = Experts(baseV, k, k);
        var (merged, _) = MethodParityTests.RunMethod(new RamMethod(), baseV, ex, new() { ["epsilon"] = epsilon.ToString("R", System.Globalization.CultureInfo.InvariantCulture) },
            ex.Select(_ => new Dictionary<string, string>()).ToArray());
        MethodParityTests.AssertClose(Reference(baseV, ex, epsilon), merged.ToArray(), 1e-6);
    }

    [Theory]
    [InlineData(2, 0.1, 0.2)]
    [InlineData(3, 0.5, 2.0)]
    [InlineData(4, 1.0, -0.5)]
    public void RamPlusTl_matches_float64_mergekit_formula(int k, double r, double alpha)
    {
        var baseV = Base(500);
        var ex = Experts(baseV, k, 10 + k);
        string F(double v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
        var (merged, diag) = MethodParityTests.RunMethod(new RamPlusTlMethod(), baseV, ex, new() { ["r"] = F(r), ["alpha"] = F(alpha) },
            ex.Select(_ => new Dictionary<string, string>()).ToArray());
        MethodParityTests.AssertClose(Reference(baseV, ex, 1e-5, r, alpha), merged.ToArray(), 1e-6);
        Assert.Equal(k, ((double[])diag["ramplus_lambda"]).Length);
    }

    [Fact]
    public void An_entry_one_expert_has_is_kept_whole_and_a_shared_one_is_averaged()
    {
        float[] baseV = [0, 0, 0, 0];
        float[][] ex = [[1, 2, 0, 1e-6f], [0, 4, 0, 0]];
        var (merged, _) = MethodParityTests.RunMethod(new RamMethod(), baseV, ex, new(), [new(), new()]);
        Assert.Equal([1f, 3f, 0f, 0f], merged.ToArray());
    }
}
