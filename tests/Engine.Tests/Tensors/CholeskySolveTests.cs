using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Methods;

namespace TaskMerge.Engine.Tests.Tensors;

public class CholeskySolveTests
{
    private static readonly CpuBackend Cpu = new(2);

    [Theory]
    [InlineData(5, 3, 0.0)]
    [InlineData(70, 9, 0.5)]
    [InlineData(300, 4, 1e-3)]
    public void Solves_each_row_against_the_shifted_spd_matrix(int n, int m, double shift)
    {
        var r = new Random(n);
        var f = Enumerable.Range(0, n * n).Select(_ => r.NextDouble() - 0.5).ToArray();
        var a = new float[n * n];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
            {
                double s = i == j ? 0.1 : 0;
                for (int k = 0; k < n; k++) s += f[k * n + i] * f[k * n + j];
                a[i * n + j] = (float)s;
            }
        var b = Enumerable.Range(0, m * n).Select(_ => (float)(r.NextDouble() - 0.5)).ToArray();
        using var at = Cpu.Wrap((float[])a.Clone(), n, n);
        using var bt = Cpu.Wrap((float[])b.Clone(), m, n);
        Assert.True(Cpu.CholeskySolve(at, shift, bt));
        Assert.Equal(a, at.ToArray());
        var x = bt.ToArray();
        for (int row = 0; row < m; row++)
        {
            var ad = a.Select(v => (double)v).ToArray();
            for (int i = 0; i < n; i++) ad[i * n + i] += shift;
            var expected = WudiReference.Solve(ad, b.Skip(row * n).Take(n).Select(v => (double)v).ToArray(), n);
            double scale = expected.Max(Math.Abs);
            for (int i = 0; i < n; i++)
                Assert.True(Math.Abs(expected[i] - x[row * n + i]) <= 1e-6 * scale, $"row {row}, column {i}: {expected[i]} vs {x[row * n + i]}");
        }
    }

    [Fact]
    public void A_matrix_that_is_not_positive_definite_is_reported_and_b_is_left_alone()
    {
        using var a = Cpu.Wrap([1f, 2f, 2f, 1f], 2, 2);
        var b = new[] { 1f, 2f, 3f, 4f };
        using var bt = Cpu.Wrap((float[])b.Clone(), 2, 2);
        Assert.False(Cpu.CholeskySolve(a, 0, bt));
        Assert.Equal(b, bt.ToArray());
    }
}
