using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Methods;

public class SceTests
{
    /// <summary>
    /// mergekit's sce_merge in float64: population variance of the τᵢ over experts, the int(nonzero·topk)
    /// largest variances kept (ties: lower index first), weights mean(τᵢ²)/Σ (uniform below 1e-6), erase
    /// entries whose sign differs from sign(Σ τᵢ) (≥ 0 → +), Σ wᵢτᵢ·maskᵢ / clamp(Σ wᵢ·maskᵢ, 1e-6).
    /// </summary>
    private static double[] Reference(float[] baseV, float[][] experts, double topk)
    {
        int n = baseV.Length, k = experts.Length;
        var tv = experts.Select(e => e.Select((v, i) => (double)(float)(v - baseV[i])).ToArray()).ToArray();
        if (topk < 1)
        {
            var keep = new bool[n];
            if (topk > 0)
            {
                var variance = Enumerable.Range(0, n).Select(i =>
                {
                    double mean = tv.Average(t => t[i]);
                    return tv.Average(t => (t[i] - mean) * (t[i] - mean));
                }).ToArray();
                int nonzero = variance.Count(v => v != 0);
                int count = (int)(nonzero * topk);
                foreach (int i in Enumerable.Range(0, n).OrderByDescending(i => variance[i]).ThenBy(i => i).Take(count)) keep[i] = true;
            }
            foreach (var t in tv) for (int i = 0; i < n; i++) if (!keep[i]) t[i] = 0;
        }
        var w = tv.Select(t => t.Average(v => v * v)).ToArray();
        double sum = w.Sum();
        w = w.Select(x => Math.Abs(sum) < 1e-6 ? 1.0 / k : x / sum).ToArray();
        var result = new double[n];
        for (int i = 0; i < n; i++)
        {
            double total = tv.Sum(t => t[i]);
            int majority = total >= 0 ? 1 : -1;
            double num = 0, den = 0;
            for (int j = 0; j < k; j++)
            {
                if (Math.Sign(tv[j][i]) != majority) continue;
                num += tv[j][i] * w[j];
                den += w[j];
            }
            result[i] = baseV[i] + num / Math.Max(den, 1e-6);
        }
        return result;
    }

    private static float[][] Experts(float[] baseV, int k, int seed)
    {
        var r = new Random(seed);
        return Enumerable.Range(0, k).Select(j => baseV.Select(b => r.NextDouble() < 0.2 ? b : b + (float)((r.NextDouble() - 0.45) * (1 + j))).ToArray()).ToArray();
    }

    [Theory]
    [InlineData(3, 1.0)]
    [InlineData(3, 0.5)]
    [InlineData(2, 0.1)]
    [InlineData(4, 0.9)]
    [InlineData(3, 0.0)]
    public void Sce_matches_float64_mergekit_formula(int k, double topk)
    {
        var baseV = Enumerable.Range(0, 600).Select(i => (float)Math.Cos(i * 0.11)).ToArray();
        var ex = Experts(baseV, k, k + (int)(topk * 10));
        var (merged, diag) = MethodParityTests.RunMethod(new SceMethod(), baseV, ex,
            new() { ["select_topk"] = topk.ToString("R", System.Globalization.CultureInfo.InvariantCulture) }, ex.Select(_ => new Dictionary<string, string>()).ToArray());
        MethodParityTests.AssertClose(Reference(baseV, ex, topk), merged.ToArray(), 2e-6);
        Assert.Equal(k, ((double[])diag["sce_weights"]).Length);
    }

    [Fact]
    public void Zero_task_vectors_give_the_base()
    {
        float[] baseV = [1, 2, 3];
        var (merged, _) = MethodParityTests.RunMethod(new SceMethod(), baseV, [[1, 2, 3], [1, 2, 3]], new() { ["select_topk"] = "0.5" }, [new(), new()]);
        Assert.Equal(baseV, merged.ToArray());
    }
}
