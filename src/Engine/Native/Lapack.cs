using System.Runtime.InteropServices;

namespace TaskMerge.Engine.Native;

/// <summary>
/// Double-precision LAPACK (<c>dgesdd_</c>, <c>dsyevd_</c>) from a native library found at run time:
/// the path in <c>TASKMERGE_LAPACK_LIBRARY</c> if set, else OpenBLAS, the system <c>liblapack</c>,
/// or Accelerate on macOS. Any LP64 LAPACK with Fortran symbol names works (netlib, OpenBLAS, MKL's
/// <c>mkl_rt</c>).
/// </summary>
/// <remarks>
/// The entry points are bound as unmanaged function pointers from <see cref="NativeLibrary.GetExport"/>
/// rather than <c>[LibraryImport]</c>: the library is one of several candidates known only at run time,
/// and an assembly has a single DllImport resolver, which the CUDA bindings own. Matrices are
/// column-major, as LAPACK expects. The Fortran hidden length arguments of the CHARACTER*1 options
/// are passed explicitly (gfortran ABI); LAPACKs built without them ignore the extra arguments.
/// </remarks>
internal static unsafe class Lapack
{
    /// <summary>Environment variable naming a LAPACK shared library to load instead of probing.</summary>
    public const string LibraryVariable = "TASKMERGE_LAPACK_LIBRARY";

    private static readonly string[] Candidates =
    [
        "libopenblas.so.0", "liblapack.so.3", "liblapack.so", "libopenblas.so",
        "/System/Library/Frameworks/Accelerate.framework/Accelerate", "liblapack.dylib", "libopenblas.dylib",
        "libopenblas.dll", "liblapack.dll", "mkl_rt.2.dll",
    ];

    /// <summary>A loaded library and its entry points.</summary>
    internal sealed class Binding(string library, IntPtr dgesdd, IntPtr dsyevd)
    {
        public string Library { get; } = library;

        public readonly delegate* unmanaged<byte*, int*, int*, double*, int*, double*, double*, int*, double*, int*,
            double*, int*, int*, int*, nuint, void> Dgesdd = (delegate* unmanaged<byte*, int*, int*, double*, int*, double*,
                double*, int*, double*, int*, double*, int*, int*, int*, nuint, void>)dgesdd;

        public readonly delegate* unmanaged<byte*, byte*, int*, double*, int*, double*, double*, int*, int*, int*,
            int*, nuint, nuint, void> Dsyevd = (delegate* unmanaged<byte*, byte*, int*, double*, int*, double*, double*,
                int*, int*, int*, int*, nuint, nuint, void>)dsyevd;
    }

    private static readonly Lazy<(Binding? Binding, string Detail)> Loaded = new(() => Load(Environment.GetEnvironmentVariable));

    /// <summary>True when a native LAPACK with both entry points loaded; <paramref name="detail"/> names it, or says what was tried.</summary>
    public static bool TryLoad(out string detail)
    {
        detail = Loaded.Value.Detail;
        return Loaded.Value.Binding is not null;
    }

    private static Binding Bound => Loaded.Value.Binding ?? throw new InvalidOperationException("native LAPACK is not loaded: " + Loaded.Value.Detail);

    /// <summary>
    /// Thin SVD (jobz = 'S') of the column-major m×n matrix <paramref name="a"/> (destroyed):
    /// <paramref name="u"/> m×k (ld m), <paramref name="s"/> k descending, <paramref name="vt"/> k×n (ld k), k = min(m,n).
    /// Returns LAPACK's info: 0 on success, &gt; 0 when the divide-and-conquer iteration did not converge.
    /// </summary>
    public static int Dgesdd(int m, int n, double[] a, double[] s, double[] u, double[] vt)
    {
        var f = Bound.Dgesdd;
        int k = Math.Min(m, n), lda = Math.Max(1, m), ldu = Math.Max(1, m), ldvt = Math.Max(1, k), info = 0, lwork = -1;
        byte jobz = (byte)'S';
        double query = 0;
        using var pa = new Aligned<double>(a);
        using var ps = new Aligned<double>(s.Length);
        using var pu = new Aligned<double>(u.Length);
        using var pvt = new Aligned<double>(vt.Length);
        using var piw = new Aligned<int>(8 * Math.Max(1, k));
        f(&jobz, &m, &n, pa.P, &lda, ps.P, pu.P, &ldu, pvt.P, &ldvt, &query, &lwork, piw.P, &info, 1);
        Check("dgesdd_", info);
        lwork = checked((int)query);
        using (var work = new Aligned<double>(Math.Max(1, lwork)))
            f(&jobz, &m, &n, pa.P, &lda, ps.P, pu.P, &ldu, pvt.P, &ldvt, work.P, &lwork, piw.P, &info, 1);
        Check("dgesdd_", info);
        pa.CopyTo(a);
        ps.CopyTo(s);
        pu.CopyTo(u);
        pvt.CopyTo(vt);
        return info;
    }

    /// <summary>
    /// Eigen-decomposition (jobz = 'V', lower triangle) of the symmetric n×n matrix <paramref name="a"/>,
    /// which is overwritten by the eigenvectors (column j belongs to <paramref name="w"/>[j]); eigenvalues ascending.
    /// Returns LAPACK's info: 0 on success, &gt; 0 when the iteration did not converge.
    /// </summary>
    public static int Dsyevd(int n, double[] a, double[] w)
    {
        var f = Bound.Dsyevd;
        int lda = Math.Max(1, n), info = 0, lwork = -1, liwork = -1, iquery = 0;
        byte jobz = (byte)'V', uplo = (byte)'L';
        double query = 0;
        using var pa = new Aligned<double>(a);
        using var pw = new Aligned<double>(w.Length);
        f(&jobz, &uplo, &n, pa.P, &lda, pw.P, &query, &lwork, &iquery, &liwork, &info, 1, 1);
        Check("dsyevd_", info);
        lwork = checked((int)query);
        liwork = Math.Max(1, iquery);
        using (var work = new Aligned<double>(Math.Max(1, lwork)))
        using (var iwork = new Aligned<int>(liwork))
            f(&jobz, &uplo, &n, pa.P, &lda, pw.P, work.P, &lwork, iwork.P, &liwork, &info, 1, 1);
        Check("dsyevd_", info);
        pa.CopyTo(a);
        pw.CopyTo(w);
        return info;
    }

    /// <summary>
    /// A 64-byte-aligned native copy of an array. Every buffer LAPACK sees starts on the same alignment on every
    /// run: vectorised BLAS kernels split their loops by the address's alignment, and a managed array's address
    /// (hence the summation order, hence the last bit) would otherwise change from run to run.
    /// </summary>
    private readonly struct Aligned<T> : IDisposable where T : unmanaged
    {
        private readonly int _length;

        public Aligned(int length)
        {
            _length = length;
            P = (T*)NativeMemory.AlignedAlloc((nuint)Math.Max(1, length) * (nuint)sizeof(T), 64);
            new Span<T>(P, length).Clear();
        }

        public Aligned(T[] source) : this(source.Length) => source.CopyTo(new Span<T>(P, _length));

        public T* P { get; }

        public void CopyTo(T[] destination) => new ReadOnlySpan<T>(P, _length).CopyTo(destination);

        public void Dispose() => NativeMemory.AlignedFree(P);
    }

    private static void Check(string call, int info)
    {
        if (info < 0) throw new InvalidOperationException($"{call}: argument {-info} had an illegal value");
    }

    /// <summary>
    /// Makes a threaded BLAS/LAPACK run every call on the calling thread: OpenBLAS, MKL and BLIS split work among
    /// their own threads by the load of the moment, which changes the summation order and so the last bit of the
    /// result from run to run. The engine already runs one decomposition per worker thread, so nothing is lost.
    /// </summary>
    private static void PinOneThread(IntPtr handle)
    {
        foreach (string setter in (string[])["openblas_set_num_threads", "goto_set_num_threads", "MKL_Set_Num_Threads"])
            if (NativeLibrary.TryGetExport(handle, setter, out IntPtr f)) ((delegate* unmanaged<int, void>)f)(1);
        if (NativeLibrary.TryGetExport(handle, "bli_thread_set_num_threads", out IntPtr blis)) ((delegate* unmanaged<long, void>)blis)(1);
        if (NativeLibrary.TryGetExport(handle, "MKL_CBWR_Set", out IntPtr cbwr)) ((delegate* unmanaged<int, int>)cbwr)(2); // MKL_CBWR_COMPATIBLE
    }

    /// <summary>Loads the first candidate library exporting both entry points.</summary>
    internal static (Binding? Binding, string Detail) Load(Func<string, string?> environment)
    {
        string? explicitPath = environment(LibraryVariable);
        var names = string.IsNullOrWhiteSpace(explicitPath) ? Candidates : [explicitPath];
        var tried = new List<string>();
        foreach (string name in names)
        {
            if (!NativeLibrary.TryLoad(name, out IntPtr handle))
            {
                tried.Add($"{name}: not found");
                continue;
            }
            if (NativeLibrary.TryGetExport(handle, "dgesdd_", out IntPtr gesdd) && NativeLibrary.TryGetExport(handle, "dsyevd_", out IntPtr syevd))
            {
                PinOneThread(handle);
                return (new Binding(name, gesdd, syevd), name);
            }
            NativeLibrary.Free(handle);
            tried.Add($"{name}: no dgesdd_/dsyevd_ export");
        }
        return (null, (explicitPath is null ? "" : $"{LibraryVariable}={explicitPath}; ") + "tried " + string.Join("; ", tried));
    }
}
