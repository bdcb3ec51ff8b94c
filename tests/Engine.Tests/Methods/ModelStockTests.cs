using TaskMerge.Engine.Methods;

namespace TaskMerge.Engine.Tests.Methods;

public class ModelStockTests
{
    /// <summary>
    /// Float64 restatement of the Model Stock rule as mergekit documents it: offsets from the base (formed
    /// in float32), per row of the last dimension when filter-wise (a 1-D tensor is one row), else over the
    /// whole tensor; c = mean over pairs of clamp(dot / max(‖a‖‖b‖, 1e-6), −1, 1); t = N·c / (1 + (N−1)·c);
    /// θ = t·mean(θᵢ) + (1 − t)·θ₀.
    /// </summary>
    internal static double[] Reference(float[] baseV, float[][] experts, int[] shape, bool filterWise)
    {
        int len = baseV.Length, n = experts.Length;
        int row = filterWise && shape.Length >= 2 ? shape[^1] : len;
        var offsets = experts.Select(e => e.Select((v, i) => (double)(float)(v - baseV[i])).ToArray()).ToArray();
        var result = new double[len];
        for (int start = 0; start < len; start += row)
        {
            double Dot(int a, int b)
            {
                double s = 0;
                for (int i = start; i < start + row; i++) s += offsets[a][i] * offsets[b][i];
                return s;
            }
            double sum = 0;
            int pairs = 0;
            for (int a = 0; a < n; a++)
                for (int b = a + 1; b < n; b++)
                {
                    double norm = Math.Sqrt(Dot(a, a)) * Math.Sqrt(Dot(b, b));
                    sum += Math.Min(1, Math.Max(-1, Dot(a, b) / Math.Max(norm, 1e-6)));
                    pairs++;
                }
            double c = sum / pairs, t = n * c / (1 + (n - 1) * c);
            for (int i = start; i < start + row; i++)
            {
                double avg = experts.Sum(e => (double)e[i]) / n;
                result[i] = t * avg + (1 - t) * baseV[i];
            }
        }
        return result;
    }

    private static float[] Correlated(Random r, float[] common, float[] baseV, double noise) =>
        baseV.Select((b, i) => (float)(b + common[i] + noise * (r.NextDouble() - 0.5))).ToArray();

    private static void AssertClose(double[] expected, float[] actual, double tol = 2e-6)
    {
        double scale = Math.Max(1e-12, expected.Max(Math.Abs));
        for (int i = 0; i < expected.Length; i++)
            Assert.True(Math.Abs(expected[i] - actual[i]) <= tol * scale, $"element {i}: expected {expected[i]:R}, got {actual[i]:R}");
    }

    [Theory]
    [InlineData(new[] { 1000 }, false, 3)]
    [InlineData(new[] { 1000 }, true, 3)]
    [InlineData(new[] { 24, 40 }, false, 4)]
    [InlineData(new[] { 24, 40 }, true, 4)]
    [InlineData(new[] { 2, 3, 17 }, true, 3)]
    [InlineData(new[] { 30, 7 }, true, 2)]
    public void Model_stock_matches_float64_reference(int[] shape, bool filterWise, int experts)
    {
        var r = new Random(shape.Sum() + experts);
        int len = shape.Aggregate(1, (a, b) => a * b);
        var baseV = Enumerable.Range(0, len).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        var common = Enumerable.Range(0, len).Select(_ => (float)((r.NextDouble() - 0.5) * 0.1)).ToArray();
        var ex = Enumerable.Range(0, experts).Select(k => Correlated(r, common, baseV, 0.05 + 0.05 * k)).ToArray();
        var (merged, diag) = MethodParityTests.RunMethod(new ModelStockMethod(), baseV, ex,
            new() { ["filter_wise"] = filterWise ? "true" : "false" }, ex.Select(_ => new Dictionary<string, string>()).ToArray(), shape: shape);
        AssertClose(Reference(baseV, ex, shape, filterWise), merged.ToArray());
        Assert.True(diag.ContainsKey(filterWise && shape.Length >= 2 ? "model_stock_t_mean" : "model_stock_t"));
    }

    [Fact]
    public void Two_orthogonal_task_vectors_give_the_base_and_two_equal_ones_give_their_mean()
    {
        float[] baseV = [1, 2, 3, 4];
        var (orth, diag) = MethodParityTests.RunMethod(new ModelStockMethod(), baseV, [[2, 2, 3, 4], [1, 3, 3, 4]], new(), [new(), new()]);
        Assert.Equal(baseV, orth.ToArray());
        Assert.Equal(0.0, (double)diag["model_stock_t"]);
        var (same, _) = MethodParityTests.RunMethod(new ModelStockMethod(), baseV, [[2, 4, 3, 4], [2, 4, 3, 4]], new(), [new(), new()]);
        Assert.Equal(new float[] { 2, 4, 3, 4 }, same.ToArray());
    }

    [Fact]
    public void Zero_task_vectors_give_the_base()
    {
        float[] baseV = [1, 2, 3];
        var (merged, _) = MethodParityTests.RunMethod(new ModelStockMethod(), baseV, [baseV, baseV], new(), [new(), new()]);
        Assert.Equal(baseV, merged.ToArray());
    }

    [Fact]
    public void One_expert_is_bad_input_naming_the_tensor()
    {
        var e = Assert.Throws<BadInputException>(() => MethodParityTests.RunMethod(new ModelStockMethod(), [0f, 1f], [[1f, 2f]],
            new(), [new()], name: "blocks.0.w"));
        Assert.Contains("blocks.0.w", e.Message);
        Assert.Contains("at least 2", e.Message);
    }

    [Fact]
    public void Filter_wise_defaults_to_false_as_in_mergekit()
    {
        var p = Assert.Single(new ModelStockMethod().Parameters);
        Assert.Equal("filter_wise", p.Name);
        Assert.Equal(false, p.Default);
    }
}
