using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;
using TaskMerge.Engine.Tensors.Ilgpu;

namespace TaskMerge.Engine.Tests.Kernels;

/// <summary>
/// An <see cref="IDeviceSolver"/> with cuSOLVER's contract (column-major float64, leading dimension = rows,
/// syevd reading the lower triangle and returning ascending eigenvalues with the vectors in place of A,
/// gesvdj economy mode returning V rather than Vᵀ, potrf/potrs on the upper triangle, info &gt; 0 for
/// failure) computed in managed code on the memory of ILGPU's CPU accelerator, whose buffer pointers are
/// host addresses. It lets the device backend's layout and conversion code run without a GPU. Like a
/// library that does not test for NaN, its potrf only fails on a pivot ≤ 0, so a NaN pivot reaches the
/// backend's own check.
/// </summary>
internal sealed unsafe class ManagedDeviceSolver : IDeviceSolver
{
    /// <summary>The next factorisation reports non-convergence (info 1) without touching its outputs.</summary>
    public bool FailNext { get; set; }

    /// <summary>Calls made, by name.</summary>
    public List<string> Calls { get; } = [];

    public string Description => "managed column-major float64 (test)";

    public int Syevd(int n, IntPtr a, IntPtr w)
    {
        Calls.Add(nameof(Syevd));
        if (TakeFailure()) return 1;
        var am = Doubles(a, n * n);
        var lower = am.ToArray();
        var full = Matrix<double>.Build.Dense(n, n, (i, j) => i >= j ? lower[i + j * n] : lower[j + i * n]);
        var evd = full.Evd(Symmetricity.Symmetric);
        var values = evd.EigenValues.Select(c => c.Real).ToArray();
        var order = Enumerable.Range(0, n).OrderBy(i => values[i]).ToArray();
        var wm = Doubles(w, n);
        for (int j = 0; j < n; j++)
        {
            wm[j] = values[order[j]];
            for (int i = 0; i < n; i++) am[i + j * n] = evd.EigenVectors[i, order[j]];
        }
        return 0;
    }

    public int Gesvdj(int m, int n, IntPtr a, IntPtr s, IntPtr u, IntPtr v)
    {
        Calls.Add(nameof(Gesvdj));
        if (m < n) throw new ArgumentException($"gesvdj here needs m ≥ n, got {m}x{n}");
        if (TakeFailure()) return n + 1;
        var am = Doubles(a, m * n);
        var svd = Matrix<double>.Build.Dense(m, n, am.ToArray()).Svd(computeVectors: true);
        var sm = Doubles(s, n);
        var um = Doubles(u, m * n);
        var vm = Doubles(v, n * n);
        for (int j = 0; j < n; j++)
        {
            sm[j] = svd.S[j];
            for (int i = 0; i < m; i++) um[i + j * m] = svd.U[i, j];
            for (int i = 0; i < n; i++) vm[i + j * n] = svd.VT[j, i];
        }
        am.Fill(double.NaN);
        return 0;
    }

    public int Potrf(int n, IntPtr a)
    {
        Calls.Add(nameof(Potrf));
        if (TakeFailure()) return 1;
        var am = Doubles(a, n * n);
        for (int j = 0; j < n; j++)
        {
            double d = am[j + j * n];
            for (int k = 0; k < j; k++) d -= am[k + j * n] * am[k + j * n];
            if (d <= 0) return j + 1;
            double pivot = Math.Sqrt(d);
            am[j + j * n] = pivot;
            for (int i = j + 1; i < n; i++)
            {
                double x = am[j + i * n];
                for (int k = 0; k < j; k++) x -= am[k + j * n] * am[k + i * n];
                am[j + i * n] = x / pivot;
            }
        }
        return 0;
    }

    public void Potrs(int n, int nrhs, IntPtr a, IntPtr b)
    {
        Calls.Add(nameof(Potrs));
        var am = Doubles(a, n * n);
        var bm = Doubles(b, n * nrhs);
        for (int r = 0; r < nrhs; r++)
        {
            var y = bm.Slice(r * n, n);
            for (int i = 0; i < n; i++)
            {
                double x = y[i];
                for (int k = 0; k < i; k++) x -= am[k + i * n] * y[k];
                y[i] = x / am[i + i * n];
            }
            for (int i = n - 1; i >= 0; i--)
            {
                double x = y[i];
                for (int k = i + 1; k < n; k++) x -= am[i + k * n] * y[k];
                y[i] = x / am[i + i * n];
            }
        }
    }

    public void Dispose() { }

    private bool TakeFailure()
    {
        bool fail = FailNext;
        FailNext = false;
        return fail;
    }

    private static Span<double> Doubles(IntPtr p, int length) => new((void*)p, length);
}
