using System.Numerics.Tensors;
using MathNet.Numerics.LinearAlgebra;
using MathNet.Numerics.LinearAlgebra.Factorization;
using TaskMerge.Engine.Native;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>Which implementation runs the CPU backend's SVD and symmetric eigensolver.</summary>
public enum LapackProvider
{
    /// <summary>Native LAPACK when one loads, else managed.</summary>
    Auto,
    /// <summary>Native LAPACK (<c>dgesdd_</c>, <c>dsyevd_</c>); an error when none loads.</summary>
    Native,
    /// <summary>MathNet.Numerics' managed float64 decompositions.</summary>
    Managed,
}

/// <summary>
/// SVD and symmetric eigen-decomposition for the CPU backend. Values come in and go out as float32
/// but every decomposition runs in float64: the spectral merge methods orthogonalise concatenated
/// singular-vector bases whose columns are nearly dependent, and float32 factorisations lose
/// orthogonality there. Native LAPACK (divide and conquer: <c>dgesdd</c>, <c>dsyevd</c>) is used
/// when one loads; otherwise, or when <c>TASKMERGE_LAPACK=managed</c>, MathNet.Numerics' managed
/// float64 Householder QR + Golub–Kahan SVD and tridiagonal QL eigensolver. Should LAPACK report
/// non-convergence for a matrix, that matrix is decomposed by the managed path instead.
/// </summary>
public sealed class CpuLinearAlgebra
{
    /// <summary>Environment variable choosing the provider: <c>auto</c> (default), <c>native</c> or <c>managed</c>.</summary>
    public const string ProviderVariable = "TASKMERGE_LAPACK";

    private CpuLinearAlgebra(LapackProvider provider, string description)
    {
        Provider = provider;
        Description = description;
    }

    /// <summary>The provider in use: <see cref="LapackProvider.Native"/> or <see cref="LapackProvider.Managed"/>.</summary>
    public LapackProvider Provider { get; }

    /// <summary>Human-readable provider, e.g. "native LAPACK (liblapack.so.3), float64".</summary>
    public string Description { get; }

    /// <summary>True when a native LAPACK loads; <paramref name="detail"/> names the library or lists what was tried.</summary>
    public static bool NativeAvailable(out string detail) => Lapack.TryLoad(out detail);

    /// <summary>Resolves <paramref name="requested"/>; <see cref="LapackProvider.Native"/> without a loadable LAPACK is a <see cref="BadInputException"/>.</summary>
    public static CpuLinearAlgebra Create(LapackProvider requested)
    {
        if (requested != LapackProvider.Managed && Lapack.TryLoad(out string detail))
            return new CpuLinearAlgebra(LapackProvider.Native, $"native LAPACK ({detail}), float64");
        if (requested == LapackProvider.Native)
        {
            Lapack.TryLoad(out string why);
            throw new BadInputException($"{ProviderVariable}=native but no LAPACK library loads ({why}); set {Lapack.LibraryVariable} to its path");
        }
        return new CpuLinearAlgebra(LapackProvider.Managed, "managed (MathNet.Numerics), float64");
    }

    /// <summary>The provider requested by <c>TASKMERGE_LAPACK</c> (unset or empty: auto).</summary>
    public static LapackProvider ProviderFromEnvironment(Func<string, string?> environment) =>
        environment(ProviderVariable)?.Trim().ToLowerInvariant() switch
        {
            null or "" or "auto" => LapackProvider.Auto,
            "native" => LapackProvider.Native,
            "managed" => LapackProvider.Managed,
            var v => throw new BadInputException($"{ProviderVariable}='{v}' is not one of auto, native, managed"),
        };

    /// <summary>
    /// Thin SVD of the row-major m×n matrix <paramref name="a"/>: <paramref name="u"/> m×k,
    /// <paramref name="s"/> k descending, <paramref name="vt"/> k×n, k = min(m,n), all row-major.
    /// A non-finite input gives NaN outputs.
    /// </summary>
    public void Svd(ReadOnlySpan<float> a, int m, int n, Span<float> u, Span<float> s, Span<float> vt)
    {
        int k = Math.Min(m, n);
        if (k == 0) return;
        if (!TensorPrimitives.IsFiniteAll(a))
        {
            u.Fill(float.NaN);
            s.Fill(float.NaN);
            vt.Fill(float.NaN);
            return;
        }
        // Row-major A is column-major Aᵀ (n×m). With Aᵀ = W·S·Zᵀ, A = Z·S·Wᵀ, and the column-major
        // storage of W (n×k) and Zᵀ (k×m) is exactly the row-major storage of vt (k×n) and u (m×k).
        var at = new double[(long)m * n];
        Widen(a, at);
        double[] sd = new double[k], w = new double[(long)n * k], zt = new double[(long)k * m];
        if (Provider != LapackProvider.Native || Lapack.Dgesdd(n, m, at, sd, w, zt) != 0)
        {
            if (Provider == LapackProvider.Native) Widen(a, at);
            ManagedSvd(Matrix<double>.Build.Dense(n, m, at), sd, w, zt);
        }
        Narrow(zt, u);
        Narrow(sd, s);
        Narrow(w, vt);
    }

    /// <summary>
    /// Eigen-decomposition of the symmetric n×n matrix <paramref name="a"/>: eigenvalues ascending in
    /// <paramref name="w"/>, row-major <paramref name="v"/> whose column j is the unit eigenvector of w[j].
    /// Only symmetric input is meaningful. A non-finite input gives NaN outputs.
    /// </summary>
    public void SymmetricEigen(ReadOnlySpan<float> a, int n, Span<float> w, Span<float> v)
    {
        if (n == 0) return;
        if (!TensorPrimitives.IsFiniteAll(a))
        {
            w.Fill(float.NaN);
            v.Fill(float.NaN);
            return;
        }
        var ad = new double[(long)n * n];
        Widen(a, ad);
        var wd = new double[n];
        double[] vectors;
        if (Provider == LapackProvider.Native && Lapack.Dsyevd(n, ad, wd) == 0)
        {
            vectors = ad;
        }
        else
        {
            Widen(a, ad);
            vectors = ManagedSymmetricEigen(Matrix<double>.Build.Dense(n, n, ad), wd);
        }
        Narrow(wd, w);
        // vectors is column-major (column j = eigenvector j); v is row-major with the same meaning.
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++)
                v[i * n + j] = (float)vectors[i + (long)j * n];
    }

    private static void Widen(ReadOnlySpan<float> src, Span<double> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = src[i];
    }

    private static void Narrow(ReadOnlySpan<double> src, Span<float> dst)
    {
        for (int i = 0; i < src.Length; i++) dst[i] = (float)src[i];
    }

    /// <summary>Thin SVD of a column-major matrix b (p×q): u (p×k) and vt (k×q) written column-major.</summary>
    private static void ManagedSvd(Matrix<double> b, double[] s, double[] u, double[] vt)
    {
        var (U, S, VT) = b.RowCount >= b.ColumnCount ? ThinSvdTall(b) : Transposed(ThinSvdTall(b.Transpose()));
        S.ToArray().CopyTo(s, 0);
        U.ToColumnMajorArray().CopyTo(u, 0);
        VT.ToColumnMajorArray().CopyTo(vt, 0);

        static (Matrix<double>, Vector<double>, Matrix<double>) Transposed((Matrix<double> U, Vector<double> S, Matrix<double> VT) r) =>
            (r.VT.Transpose(), r.S, r.U.Transpose());
    }

    /// <summary>Thin SVD of a tall matrix through a thin QR: m = Q·R, R = U_R·S·Vᵀ, so U = Q·U_R (MathNet's SVD only builds full U).</summary>
    private static (Matrix<double> U, Vector<double> S, Matrix<double> VT) ThinSvdTall(Matrix<double> m)
    {
        var qr = m.QR(QRMethod.Thin);
        var svd = qr.R.Svd(computeVectors: true);
        return (qr.Q * svd.U, svd.S, svd.VT);
    }

    /// <summary>Eigenvalues ascending into w; returns the eigenvectors column-major in the same order.</summary>
    private static double[] ManagedSymmetricEigen(Matrix<double> a, double[] w)
    {
        var evd = a.Evd(Symmetricity.Symmetric);
        int n = a.RowCount;
        var values = evd.EigenValues.Select(c => c.Real).ToArray();
        var order = Enumerable.Range(0, n).OrderBy(i => values[i]).ToArray();
        var vectors = new double[(long)n * n];
        for (int j = 0; j < n; j++)
        {
            w[j] = values[order[j]];
            for (int i = 0; i < n; i++) vectors[i + (long)j * n] = evd.EigenVectors[i, order[j]];
        }
        return vectors;
    }
}
