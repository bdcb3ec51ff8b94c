using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;

namespace TaskMerge.Engine.Tests.Tensors;

public class BlockDotTests
{
    private static float[] Values(Random r, int n) => Enumerable.Range(0, n).Select(_ => (float)(r.NextDouble() * 2 - 1)).ToArray();

    private static double Exact(float[] a, float[] b, int start, int length)
    {
        double s = 0;
        for (int i = start; i < start + length; i++) s += (double)a[i] * b[i];
        return s;
    }

    [Fact]
    public void Gram_over_a_multi_chunk_tensor_matches_float64_sums_and_ignores_the_thread_count()
    {
        var r = new Random(1);
        const int n = 200_003;
        var arrays = Enumerable.Range(0, 3).Select(_ => Values(r, n)).ToArray();
        var results = new[] { 1, 2 }.Select(threads =>
        {
            var be = new CpuBackend(threads);
            var ts = arrays.Select(a => be.Wrap(a, n)).ToList();
            var dst = new double[9];
            be.BlockDot(ts, ts, n, dst);
            return dst;
        }).ToArray();
        Assert.Equal(results[0], results[1]);
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 3; j++)
            {
                double exact = Exact(arrays[i], arrays[j], 0, n);
                Assert.Equal(exact, results[0][i * 3 + j], Math.Abs(exact) * 1e-12);
            }
    }

    [Fact]
    public void Row_blocks_of_two_different_lists_give_every_pair_per_row()
    {
        var r = new Random(2);
        const int rows = 7, cols = 100;
        var xs = Enumerable.Range(0, 2).Select(_ => Values(r, rows * cols)).ToArray();
        var ys = Enumerable.Range(0, 3).Select(_ => Values(r, rows * cols)).ToArray();
        var be = new CpuBackend(2);
        var dst = new double[rows * 6];
        be.BlockDot(xs.Select(x => be.Wrap(x, rows, cols)).ToList(), ys.Select(y => be.Wrap(y, rows, cols)).ToList(), cols, dst);
        for (int b = 0; b < rows; b++)
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 3; j++)
                    Assert.Equal(Exact(xs[i], ys[j], b * cols, cols), dst[(b * 2 + i) * 3 + j], 1e-12);
    }

    [Fact]
    public void Block_length_that_does_not_divide_the_tensor_is_rejected()
    {
        var be = new CpuBackend(1);
        var t = be.Zeros(10);
        Assert.Throws<ArgumentException>(() => be.BlockDot([t], [t], 3, new double[4]));
    }
}
