using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace TaskMerge.Engine.Tensors.Cpu;

/// <summary>
/// Row-major single-precision BLAS-3/2 routines for the CPU backend.
/// </summary>
/// <remarks>
/// <para>
/// GEMM follows the Goto/BLIS scheme: op(B) is packed into KC×NC slabs of NR-wide column panels
/// (shared by all threads), each task packs an MC×KC block of op(A) into MR-tall row panels, and a
/// register-blocked MR×NR micro-kernel streams the packed panels. Packing absorbs all four
/// transpose combinations, so the micro-kernel only ever sees one layout.
/// </para>
/// <para>
/// Determinism: work is split over tiles of C only, never over k. Every element of C is produced by
/// the same sequence of float operations (the k-blocking depends only on k, edge tiles run the same
/// kernel on zero-padded panels), so results are bitwise reproducible for a given shape and do not
/// depend on the thread count.
/// </para>
/// <para>
/// Shortcuts: a C with one row or one column runs as a GEMV; products of at most 512 multiply-adds run
/// as a plain loop; below 2^20 multiply-adds everything stays on the calling thread.
/// </para>
/// </remarks>
internal static unsafe class CpuBlas
{
    /// <summary>The micro-kernel families; <see cref="Preferred"/> is the fastest one the CPU runs.</summary>
    internal enum MicroKernel
    {
        /// <summary><see cref="Vector{T}"/> multiply-add, any hardware.</summary>
        Portable,
        /// <summary>AVX2 + FMA3, 6×16 register tile.</summary>
        Avx2,
        /// <summary>AVX-512F, 12×32 register tile (32 vector registers).</summary>
        Avx512,
    }

    /// <summary>The kernel used by <see cref="Sgemm"/> and <see cref="Ssyrk"/> on this machine.</summary>
    internal static readonly MicroKernel Preferred =
        IsSupported(MicroKernel.Avx512) ? MicroKernel.Avx512 :
        IsSupported(MicroKernel.Avx2) ? MicroKernel.Avx2 : MicroKernel.Portable;

    /// <summary>Whether <paramref name="kernel"/> can run on this CPU.</summary>
    internal static bool IsSupported(MicroKernel kernel) => kernel switch
    {
        MicroKernel.Avx512 => Avx512F.IsSupported && Vector512.IsHardwareAccelerated,
        MicroKernel.Avx2 => Avx2.IsSupported && Fma.IsSupported,
        _ => true,
    };

    /// <summary>Up to this many multiply-adds (m·n·k, about 8×8×8) GEMM skips packing and runs a plain loop.</summary>
    internal const long SmallGemm = 512;

    /// <summary>Below this many multiply-adds a call runs on the calling thread only.</summary>
    private const long SerialGemm = 1L << 20;

    /// <summary>C[m×n] ← alpha·op(A)·op(B) + beta·C; lda/ldb/ldc are row strides of the stored matrices.</summary>
    public static void Sgemm(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc, int threads) =>
        Gemm(Preferred, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, lower: false);

    /// <summary>C[n×n] ← alpha·op(A)·op(A)ᵀ + beta·C, op(A) = Aᵀ when transA; full matrix written.</summary>
    /// <remarks>Only the lower triangle's tiles are computed; the upper triangle is its mirror.</remarks>
    public static void Ssyrk(bool transA, int n, int k, float alpha, float[] a, int lda, float beta, float[] c, int ldc, int threads) =>
        SsyrkWith(Preferred, transA, n, k, alpha, a, lda, beta, c, ldc, threads);

    /// <summary>
    /// Single-threaded packed <see cref="Sgemm"/> on matrices that start at element offsets of their
    /// arrays (one product of a batch); the caller has checked the shapes, m, n &gt; 1 and k &gt; 0.
    /// </summary>
    internal static void SgemmSerialAt(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int aOffset, int lda, float[] b, int bOffset, int ldb, float beta, float[] c, int cOffset, int ldc)
    {
        fixed (float* pa = a, pb = b, pc = c)
        {
            new GemmJob(Preferred, GeometryOf(Preferred), transA, transB, false, m, n, k, alpha, beta,
                pa + aOffset, lda, pb + bOffset, ldb, pc + cOffset, ldc, 1).Run();
        }
    }

    /// <summary><see cref="Sgemm"/> with an explicit micro-kernel (tests, benchmarks).</summary>
    internal static void SgemmWith(MicroKernel kernel, bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc, int threads) =>
        Gemm(kernel, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads, lower: false);

    /// <summary><see cref="Ssyrk"/> with an explicit micro-kernel (tests, benchmarks).</summary>
    internal static void SsyrkWith(MicroKernel kernel, bool transA, int n, int k, float alpha, float[] a, int lda,
        float beta, float[] c, int ldc, int threads)
    {
        // op(A)·op(A)ᵀ = gemm(transA, !transA) with B = A; lower-triangle tiles only, then mirrored.
        if (beta == 0f)
        {
            Gemm(kernel, transA, !transA, n, n, k, alpha, a, lda, a, lda, 0f, c, ldc, threads, lower: true);
            return;
        }
        // The mirror would copy β·C's lower triangle over the upper one; form the product apart so
        // every element gets its own β·C[i, j], as the contract says for a non-symmetric C.
        var product = new float[(long)n * n];
        Gemm(kernel, transA, !transA, n, n, k, alpha, a, lda, a, lda, 0f, product, n, threads, lower: true);
        for (int i = 0; i < n; i++)
            for (int j = 0; j < n; j++) c[(long)i * ldc + j] = product[(long)i * n + j] + beta * c[(long)i * ldc + j];
    }

    // ───────────────────────────── GEMM driver ─────────────────────────────

    /// <summary>Register tile MR×NR, k-block KC (KC·NR floats of packed B stay in L1), row block MC (MC·KC floats of packed A in L2).</summary>
    private readonly record struct Geometry(int MR, int NR, int KC, int MC);

    private static Geometry GeometryOf(MicroKernel kernel) => kernel switch
    {
        MicroKernel.Avx512 => new Geometry(12, 32, 256, 192),
        MicroKernel.Avx2 => new Geometry(6, 16, 256, 192),
        _ => new Geometry(4, 2 * Vector<float>.Count, 256, 128),
    };

    /// <summary>Packed op(B) is limited to about this many floats (16 MB): one column block for n·k up to 4M, so op(A) is packed once.</summary>
    internal const long PackedBLimit = 4L << 20;

    private static void Gemm(MicroKernel kernel, bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc, int threads, bool lower)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        if (!IsSupported(kernel)) throw new PlatformNotSupportedException($"{kernel} micro-kernel is not supported on this CPU");
        CheckMatrix(c, m, n, ldc, nameof(c));
        if (m == 0 || n == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(c, m, n, ldc, beta, lower);
            return;
        }
        CheckMatrix(a, transA ? k : m, transA ? m : k, lda, nameof(a));
        CheckMatrix(b, transB ? n : k, transB ? k : n, ldb, nameof(b));

        if (m == 1 || n == 1)
        {
            // A row or column of C: a matrix-vector product, no padded register tiles.
            GemmAsGemv(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, threads);
            return;
        }
        long work = (long)m * n * k;
        if (work <= SmallGemm)
        {
            SmallGemmLoop(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, lower);
            return;
        }
        int workers = work <= SerialGemm ? 1 : Math.Max(1, threads);

        fixed (float* pa = a, pb = b, pc = c)
        {
            new GemmJob(kernel, GeometryOf(kernel), transA, transB, lower, m, n, k, alpha, beta,
                pa, lda, pb, ldb, pc, ldc, workers).Run();
        }
    }

    private static void CheckMatrix(float[] x, int rows, int cols, int ld, string name)
    {
        ArgumentNullException.ThrowIfNull(x, name);
        if (rows == 0 || cols == 0) return;
        if (ld < cols) throw new ArgumentException($"row stride {ld} is less than the {cols} columns", name);
        if ((long)(rows - 1) * ld + cols > x.Length)
            throw new ArgumentException($"array of {x.Length} floats is too short for a {rows}×{cols} matrix with stride {ld}", name);
    }

    /// <summary>C ← beta·C (beta == 0 clears, NaN included); <paramref name="symmetric"/> mirrors the lower triangle.</summary>
    private static void ScaleC(float[] c, int m, int n, int ldc, float beta, bool symmetric)
    {
        for (int i = 0; i < m; i++)
        {
            var row = c.AsSpan(i * ldc, n);
            if (beta == 0f) row.Clear();
            else if (beta != 1f) for (int j = 0; j < row.Length; j++) row[j] *= beta;
        }
        if (symmetric && beta != 0f) MirrorLower(c, m, ldc);
    }

    /// <summary>C[i, j] ← C[j, i] for j &gt; i (single-threaded; used on the tiny and degenerate paths).</summary>
    private static void MirrorLower(float[] c, int n, int ldc)
    {
        for (int i = 0; i < n; i++)
            for (int j = i + 1; j < n; j++)
                c[i * ldc + j] = c[j * ldc + i];
    }

    /// <summary>C (one row or one column) as y ← alpha·M·x + beta·y, gathering a strided x or y.</summary>
    private static void GemmAsGemv(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc, int threads)
    {
        float[] matrix, x;
        int rows, cols, ld, len, stride;
        bool trans;
        if (n == 1)
        {
            // C[:, 0] = op(A)·op(B)[:, 0].
            (matrix, rows, cols, ld, trans) = (a, transA ? k : m, transA ? m : k, lda, transA);
            x = transB || ldb == 1 ? b : Gather(b, k, ldb);
            (len, stride) = (m, ldc);
        }
        else
        {
            // C[0, :]ᵀ = op(B)ᵀ·op(A)[0, :]ᵀ.
            (matrix, rows, cols, ld, trans) = (b, transB ? n : k, transB ? k : n, ldb, !transB);
            x = !transA || lda == 1 ? a : Gather(a, k, lda);
            (len, stride) = (n, 1);
        }
        if (stride == 1 || len == 1)
        {
            Sgemv(trans, rows, cols, alpha, matrix, ld, x, beta, c, threads);
            return;
        }
        var y = beta == 0f ? new float[len] : Gather(c, len, stride);
        Sgemv(trans, rows, cols, alpha, matrix, ld, x, beta, y, threads);
        for (int i = 0; i < len; i++) c[i * stride] = y[i];
    }

    private static float[] Gather(float[] src, int count, int stride)
    {
        var dst = new float[count];
        for (int i = 0; i < count; i++) dst[i] = src[i * stride];
        return dst;
    }

    /// <summary>Unpacked loop for tiny products, where packing would dominate.</summary>
    private static void SmallGemmLoop(bool transA, bool transB, int m, int n, int k, float alpha,
        float[] a, int lda, float[] b, int ldb, float beta, float[] c, int ldc, bool lower)
    {
        int sai = transA ? 1 : lda, sap = transA ? lda : 1;
        int sbp = transB ? 1 : ldb, sbj = transB ? ldb : 1;
        for (int i = 0; i < m; i++)
        {
            for (int j = 0, jEnd = lower ? i + 1 : n; j < jEnd; j++)
            {
                float s = 0f;
                int ia = i * sai, ib = j * sbj;
                for (int p = 0; p < k; p++, ia += sap, ib += sbp) s = MathF.FusedMultiplyAdd(a[ia], b[ib], s);
                ref float dst = ref c[i * ldc + j];
                dst = beta == 0f ? alpha * s : alpha * s + beta * dst;
            }
        }
        if (lower) MirrorLower(c, m, ldc);
    }

    /// <summary>Runs tasks 0..count-1 on up to <paramref name="threads"/> threads (dynamic scheduling, index order).</summary>
    private static void RunTasks(int count, int threads, Action<int> body)
    {
        int workers = Math.Min(threads, count);
        if (workers <= 1)
        {
            for (int t = 0; t < count; t++) body(t);
            return;
        }
        int next = -1;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ =>
        {
            int t;
            while ((t = Interlocked.Increment(ref next)) < count) body(t);
        });
    }

    /// <summary>
    /// One GEMM/SYRK call, run as a single parallel region. The work is a list of phases — for each block
    /// of NC columns, pack op(B) (all of k), then compute C's tiles; for SYRK a final mirror phase — whose
    /// tasks are numbered consecutively. Workers claim task numbers from one counter; a task starts once
    /// every task of the earlier phases has finished. A worker that starts late simply joins the current
    /// phase, and nobody ever waits for a worker that has not started, so a slow thread wake-up costs
    /// parallelism but not latency.
    /// </summary>
    private sealed class GemmJob
    {
        private enum Kind { Pack, Compute, Mirror }

        private readonly record struct Phase(Kind Kind, int Block, int Start, int End);

        private const int MirrorBlock = 64;

        private readonly MicroKernel _kernel;
        private readonly int _mr, _nr;
        private readonly bool _transA, _transB, _lower;
        private readonly int _m, _n, _k, _lda, _ldb, _ldc, _workers;
        private readonly float _alpha, _beta;
        private readonly float* _a, _b, _c;
        private readonly int _kcStep, _kBlocks, _ncStep, _rowPanels, _rowBlocks;
        private readonly List<Phase> _phases = new();
        private float* _packedB;
        private int _next = -1, _done, _failed;

        public GemmJob(MicroKernel kernel, Geometry g, bool transA, bool transB, bool lower, int m, int n, int k,
            float alpha, float beta, float* a, int lda, float* b, int ldb, float* c, int ldc, int workers)
        {
            _kernel = kernel;
            (_mr, _nr) = (g.MR, g.NR);
            (_transA, _transB, _lower) = (transA, transB, lower);
            (_m, _n, _k, _alpha, _beta) = (m, n, k, alpha, beta);
            _a = a;
            _b = b;
            _c = c;
            (_lda, _ldb, _ldc, _workers) = (lda, ldb, ldc, workers);

            // k is cut into equal blocks of at most KC. This depends on k alone, and it is the only thing
            // that shapes a C element's arithmetic: results are independent of every other blocking choice.
            _kBlocks = (k + g.KC - 1) / g.KC;
            _kcStep = (k + _kBlocks - 1) / _kBlocks;

            // Column blocks: as wide as the packed-B budget allows, equal, multiples of NR.
            int ncCap = (int)Math.Clamp(PackedBLimit / k / _nr * _nr, _nr, (long)(n + _nr - 1) / _nr * _nr);
            int colBlocks = (n + ncCap - 1) / ncCap;
            _ncStep = ((n + colBlocks - 1) / colBlocks + _nr - 1) / _nr * _nr;

            // Row blocks of at most MC rows; enough of them for dynamic load balancing across workers.
            _rowPanels = (m + _mr - 1) / _mr;
            _rowBlocks = (_rowPanels + g.MC / _mr - 1) / (g.MC / _mr);
            if (workers > 1) _rowBlocks = Math.Max(_rowBlocks, Math.Min(_rowPanels, 4 * workers));

            int start = 0;
            for (int jb = 0; jb * _ncStep < n; jb++)
            {
                if (lower && jb * _ncStep > m - 1) break;
                int panels = ColPanels(jb);
                _phases.Add(new Phase(Kind.Pack, jb, start, start += _kBlocks * PackGroups(panels)));
                _phases.Add(new Phase(Kind.Compute, jb, start, start += _rowBlocks * ColSplits(panels)));
            }
            if (lower && n > 1) _phases.Add(new Phase(Kind.Mirror, 0, start, start += (n + MirrorBlock - 1) / MirrorBlock));
        }

        private int ColPanels(int jb) => (Math.Min(_ncStep, _n - jb * _ncStep) + _nr - 1) / _nr;

        /// <summary>Packing tasks per k-slab: at least 8 panels each.</summary>
        private int PackGroups(int panels) => _workers == 1 ? 1 : Math.Clamp(panels / 8, 1, 2 * _workers);

        /// <summary>Column splits of a compute task: only when there are too few row blocks to share.</summary>
        private int ColSplits(int panels) =>
            _lower || _rowBlocks >= 2 * _workers ? 1 : Math.Min(panels, (2 * _workers + _rowBlocks - 1) / _rowBlocks);

        public void Run()
        {
            int total = _phases[^1].End;
            var bufB = Buffers.Take(ref Buffers.B, (long)_ncStep * _k);
            try
            {
                _packedB = bufB.Ptr;
                int workers = Math.Min(_workers, total);
                if (workers <= 1) Work();
                else Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, _ => Work());
            }
            finally
            {
                Buffers.Give(ref Buffers.B, bufB);
            }
        }

        private void Work()
        {
            int total = _phases[^1].End, ph = 0;
            int task;
            while ((task = Interlocked.Increment(ref _next)) < total)
            {
                while (task >= _phases[ph].End) ph++;
                var phase = _phases[ph];
                if (Volatile.Read(ref _done) < phase.Start && !WaitFor(phase.Start)) return;
                try
                {
                    switch (phase.Kind)
                    {
                        case Kind.Pack: Pack(phase.Block, task - phase.Start); break;
                        case Kind.Compute: Compute(phase.Block, task - phase.Start); break;
                        default: Mirror(task - phase.Start); break;
                    }
                }
                catch
                {
                    Volatile.Write(ref _failed, 1);
                    throw;
                }
                Interlocked.Increment(ref _done);
            }
        }

        /// <summary>Spins until <paramref name="count"/> tasks have finished (the earlier phases); false if one failed.</summary>
        private bool WaitFor(int count)
        {
            var spin = new SpinWait();
            while (Volatile.Read(ref _done) < count)
            {
                if (Volatile.Read(ref _failed) != 0) return false;
                spin.SpinOnce(sleep1Threshold: -1);
            }
            return true;
        }

        /// <summary>Packs one group of NR-wide panels of one KC-slab of op(B) for column block <paramref name="jb"/>.</summary>
        private void Pack(int jb, int task)
        {
            int jc = jb * _ncStep, nc = Math.Min(_ncStep, _n - jc), panels = ColPanels(jb), groups = PackGroups(panels);
            int kb = task / groups, grp = task % groups;
            int p0 = kb * _kcStep, kc = Math.Min(_kcStep, _k - p0);
            int from = (int)((long)grp * panels / groups), to = (int)((long)(grp + 1) * panels / groups);
            PackB(_transB, _b, _ldb, p0, kc, jc, nc, _nr, _packedB + (long)panels * _nr * p0, from, to);
        }

        /// <summary>One block of C: rows of a row block × (part of) column block <paramref name="jb"/>, over all of k.</summary>
        private void Compute(int jb, int task)
        {
            int jc = jb * _ncStep, panels = ColPanels(jb), splits = ColSplits(panels);
            int rb = task / splits, cb = task % splits;
            if (_lower) rb = _rowBlocks - 1 - rb;   // triangular work: heaviest blocks first
            int r0 = (int)((long)rb * _rowPanels / _rowBlocks), r1 = (int)((long)(rb + 1) * _rowPanels / _rowBlocks);
            int q0 = (int)((long)cb * panels / splits), q1 = (int)((long)(cb + 1) * panels / splits);
            int mr = _mr, nr = _nr, i0 = r0 * mr, i1 = Math.Min(_m, r1 * mr);
            if (_lower)
            {
                if (jc > i1 - 1) return;                          // block lies above the diagonal
                q1 = Math.Min(q1, (i1 - 1 - jc) / nr + 1);        // panels right of the last row are too
            }
            if (r0 >= r1 || q0 >= q1) return;

            var bufA = Buffers.Take(ref Buffers.A, (long)(r1 - r0) * mr * _kcStep);
            try
            {
                float* packedA = bufA.Ptr;
                float* tile = stackalloc float[mr * nr];
                float alpha = _alpha;
                nint ldc = _ldc;
                for (int kb = 0; kb < _kBlocks; kb++)
                {
                    int p0 = kb * _kcStep, kc = Math.Min(_kcStep, _k - p0);
                    float beta = kb == 0 ? _beta : 1f;
                    PackA(_transA, _a, _lda, i0, i1 - i0, p0, kc, mr, packedA);
                    float* slab = _packedB + (long)panels * nr * p0;
                    for (int q = q0; q < q1; q++)
                    {
                        int j = jc + q * nr;
                        int ncols = Math.Min(nr, _n - j);
                        float* pb = slab + (long)q * kc * nr;
                        for (int r = r0; r < r1; r++)
                        {
                            int i = r * mr;
                            int nrows = Math.Min(mr, _m - i);
                            if (_lower && j > i + nrows - 1) continue;
                            float* pa = packedA + (long)(r - r0) * kc * mr;
                            float* cij = _c + i * ldc + j;
                            if (nrows == mr && ncols == nr)
                            {
                                Micro(_kernel, kc, pa, pb, cij, ldc, alpha, beta);
                                continue;
                            }
                            // Edge tile: the same kernel on the zero-padded panels, into a scratch tile.
                            Micro(_kernel, kc, pa, pb, tile, nr, 1f, 0f);
                            for (int ii = 0; ii < nrows; ii++)
                            {
                                float* src = tile + ii * nr;
                                float* dst = cij + ii * ldc;
                                if (beta == 0f)
                                    for (int jj = 0; jj < ncols; jj++) dst[jj] = alpha * src[jj];
                                else
                                    for (int jj = 0; jj < ncols; jj++) dst[jj] = alpha * src[jj] + beta * dst[jj];
                            }
                        }
                    }
                }
            }
            finally
            {
                Buffers.Give(ref Buffers.A, bufA);
            }
        }

        /// <summary>SYRK: copies the lower triangle onto block row <paramref name="bi"/> of the upper one.</summary>
        private void Mirror(int bi)
        {
            int n = _n, i0 = bi * MirrorBlock, i1 = Math.Min(n, i0 + MirrorBlock);
            nint ldc = _ldc;
            for (int j0 = i0; j0 < n; j0 += MirrorBlock)
            {
                int j1 = Math.Min(n, j0 + MirrorBlock);
                for (int i = i0; i < i1; i++)
                {
                    float* row = _c + i * ldc;
                    for (int j = Math.Max(j0, i + 1); j < j1; j++) row[j] = _c[j * ldc + i];
                }
            }
        }
    }

    // ───────────────────────────── packing ─────────────────────────────

    /// <summary>
    /// Packs rows [i0, i0+rows) × columns [p0, p0+kc) of op(A) into MR-tall panels: panel r holds
    /// kc groups of MR consecutive values (one per row), rows past the edge zero-filled.
    /// </summary>
    private static void PackA(bool trans, float* a, int lda, int i0, int rows, int p0, int kc, int mr, float* dst)
    {
        for (int ip = 0; ip < rows; ip += mr)
        {
            int h = Math.Min(mr, rows - ip);
            float* d = dst + (long)ip * kc;
            if (trans) PackCopy(a + (long)p0 * lda + i0 + ip, lda, h, kc, mr, d);      // op(A)[i, p] = A[p, i]
            else PackInterleave(a + (long)(i0 + ip) * lda + p0, lda, h, kc, mr, d);  // op(A)[i, p] = A[i, p]
        }
    }

    /// <summary>
    /// Packs column panels [from, to) of rows [p0, p0+kc) × columns [j0, j0+cols) of op(B): panel q holds
    /// kc groups of NR consecutive values (one per column), columns past the edge zero-filled.
    /// </summary>
    private static void PackB(bool trans, float* b, int ldb, int p0, int kc, int j0, int cols, int nr, float* dst, int from, int to)
    {
        for (int q = from; q < to; q++)
        {
            int jj = q * nr;
            int w = Math.Min(nr, cols - jj);
            float* d = dst + (long)q * kc * nr;
            if (trans) PackInterleave(b + (long)(j0 + jj) * ldb + p0, ldb, w, kc, nr, d);  // op(B)[p, j] = B[j, p]
            else PackCopy(b + (long)p0 * ldb + j0 + jj, ldb, w, kc, nr, d);              // op(B)[p, j] = B[p, j]
        }
    }

    /// <summary>d[p·w + r] = s[p·ld + r] for r &lt; h, zero for h ≤ r &lt; w: kc runs of h contiguous floats.</summary>
    private static void PackCopy(float* s, nint ld, int h, int kc, int w, float* d)
    {
        for (int p = 0; p < kc; p++, s += ld, d += w)
        {
            int r = 0;
            if (Vector256.IsHardwareAccelerated)
                for (; r + 8 <= h; r += 8) Vector256.Store(Vector256.Load(s + r), d + r);
            for (; r + 4 <= h; r += 4) Vector128.Store(Vector128.Load(s + r), d + r);
            for (; r < h; r++) d[r] = s[r];
            for (; r < w; r++) d[r] = 0f;
        }
    }

    /// <summary>
    /// d[p·w + r] = s[r·ld + p] for r &lt; h, zero for h ≤ r &lt; w: interleaves h strided runs of kc floats,
    /// eight rows × eight columns at a time through an AVX register transpose.
    /// </summary>
    private static void PackInterleave(float* s, nint ld, int h, int kc, int w, float* d)
    {
        int p = 0;
        if (Avx.IsSupported)
        {
            for (; p + 8 <= kc; p += 8)
            {
                float* dp = d + (long)p * w;
                for (int g = 0; g < h; g += 8)
                {
                    int cnt = Math.Min(8, h - g);
                    float* sg = s + g * ld + p;
                    // Rows past the edge repeat the last row; their lanes are never stored.
                    var r0 = Avx.LoadVector256(sg);
                    var r1 = Avx.LoadVector256(sg + Math.Min(1, cnt - 1) * ld);
                    var r2 = Avx.LoadVector256(sg + Math.Min(2, cnt - 1) * ld);
                    var r3 = Avx.LoadVector256(sg + Math.Min(3, cnt - 1) * ld);
                    var r4 = Avx.LoadVector256(sg + Math.Min(4, cnt - 1) * ld);
                    var r5 = Avx.LoadVector256(sg + Math.Min(5, cnt - 1) * ld);
                    var r6 = Avx.LoadVector256(sg + Math.Min(6, cnt - 1) * ld);
                    var r7 = Avx.LoadVector256(sg + Math.Min(7, cnt - 1) * ld);
                    var t0 = Avx.UnpackLow(r0, r1);
                    var t1 = Avx.UnpackHigh(r0, r1);
                    var t2 = Avx.UnpackLow(r2, r3);
                    var t3 = Avx.UnpackHigh(r2, r3);
                    var t4 = Avx.UnpackLow(r4, r5);
                    var t5 = Avx.UnpackHigh(r4, r5);
                    var t6 = Avx.UnpackLow(r6, r7);
                    var t7 = Avx.UnpackHigh(r6, r7);
                    var s0 = Avx.Shuffle(t0, t2, 0x44);
                    var s1 = Avx.Shuffle(t0, t2, 0xEE);
                    var s2 = Avx.Shuffle(t1, t3, 0x44);
                    var s3 = Avx.Shuffle(t1, t3, 0xEE);
                    var s4 = Avx.Shuffle(t4, t6, 0x44);
                    var s5 = Avx.Shuffle(t4, t6, 0xEE);
                    var s6 = Avx.Shuffle(t5, t7, 0x44);
                    var s7 = Avx.Shuffle(t5, t7, 0xEE);
                    float* o = dp + g;
                    StoreLanes(o, Avx.Permute2x128(s0, s4, 0x20), cnt);
                    StoreLanes(o + w, Avx.Permute2x128(s1, s5, 0x20), cnt);
                    StoreLanes(o + 2 * w, Avx.Permute2x128(s2, s6, 0x20), cnt);
                    StoreLanes(o + 3 * w, Avx.Permute2x128(s3, s7, 0x20), cnt);
                    StoreLanes(o + 4 * w, Avx.Permute2x128(s0, s4, 0x31), cnt);
                    StoreLanes(o + 5 * w, Avx.Permute2x128(s1, s5, 0x31), cnt);
                    StoreLanes(o + 6 * w, Avx.Permute2x128(s2, s6, 0x31), cnt);
                    StoreLanes(o + 7 * w, Avx.Permute2x128(s3, s7, 0x31), cnt);
                }
                if (h < w)
                    for (int pp = 0; pp < 8; pp++)
                        for (int r = h; r < w; r++) dp[pp * w + r] = 0f;
            }
        }
        for (; p < kc; p++)
        {
            float* dp = d + (long)p * w;
            int r = 0;
            for (; r < h; r++) dp[r] = s[r * ld + p];
            for (; r < w; r++) dp[r] = 0f;
        }
    }

    /// <summary>Stores the first <paramref name="count"/> (1..8) lanes of <paramref name="v"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreLanes(float* d, Vector256<float> v, int count)
    {
        if (count == 8)
        {
            Vector256.Store(v, d);
            return;
        }
        var rest = v.GetLower();
        if (count >= 4)
        {
            Vector128.Store(rest, d);
            rest = v.GetUpper();
            d += 4;
            count -= 4;
        }
        for (int i = 0; i < count; i++) d[i] = rest.GetElement(i);
    }

    // ───────────────────────────── micro-kernels ─────────────────────────────
    // Each computes acc = Σ_p pa[p·MR + r] · pb[p·NR + c] over a full MR×NR tile (float32 accumulation in
    // k order) and stores C = alpha·acc + beta·C (beta == 0: C = alpha·acc, old C never read).

    private static void Micro(MicroKernel kernel, int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        switch (kernel)
        {
            case MicroKernel.Avx512: Kernel12x32(kc, pa, pb, c, ldc, alpha, beta); break;
            case MicroKernel.Avx2: Kernel6x16(kc, pa, pb, c, ldc, alpha, beta); break;
            default: KernelPortable(kc, pa, pb, c, ldc, alpha, beta); break;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector256<float> acc, Vector256<float> alpha, float beta)
    {
        if (beta == 0f) Vector256.Store(alpha * acc, c);
        else Vector256.Store(alpha * acc + Vector256.Create(beta) * Vector256.Load(c), c);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store(float* c, Vector512<float> acc, Vector512<float> alpha, float beta)
    {
        if (beta == 0f) Vector512.Store(alpha * acc, c);
        else Vector512.Store(alpha * acc + Vector512.Create(beta) * Vector512.Load(c), c);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel6x16(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector256<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector256.Load(pb);
            var b1 = Vector256.Load(pb + 8);
            var a = Vector256.Create(pa[0]);
            c00 = Fma.MultiplyAdd(a, b0, c00);
            c01 = Fma.MultiplyAdd(a, b1, c01);
            a = Vector256.Create(pa[1]);
            c10 = Fma.MultiplyAdd(a, b0, c10);
            c11 = Fma.MultiplyAdd(a, b1, c11);
            a = Vector256.Create(pa[2]);
            c20 = Fma.MultiplyAdd(a, b0, c20);
            c21 = Fma.MultiplyAdd(a, b1, c21);
            a = Vector256.Create(pa[3]);
            c30 = Fma.MultiplyAdd(a, b0, c30);
            c31 = Fma.MultiplyAdd(a, b1, c31);
            a = Vector256.Create(pa[4]);
            c40 = Fma.MultiplyAdd(a, b0, c40);
            c41 = Fma.MultiplyAdd(a, b1, c41);
            a = Vector256.Create(pa[5]);
            c50 = Fma.MultiplyAdd(a, b0, c50);
            c51 = Fma.MultiplyAdd(a, b1, c51);
            pa += 6;
            pb += 16;
        }
        var va = Vector256.Create(alpha);
        Store(c, c00, va, beta); Store(c + 8, c01, va, beta); c += ldc;
        Store(c, c10, va, beta); Store(c + 8, c11, va, beta); c += ldc;
        Store(c, c20, va, beta); Store(c + 8, c21, va, beta); c += ldc;
        Store(c, c30, va, beta); Store(c + 8, c31, va, beta); c += ldc;
        Store(c, c40, va, beta); Store(c + 8, c41, va, beta); c += ldc;
        Store(c, c50, va, beta); Store(c + 8, c51, va, beta);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Kernel12x32(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default;
        Vector512<float> c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default;
        Vector512<float> c60 = default, c61 = default, c70 = default, c71 = default, c80 = default, c81 = default;
        Vector512<float> c90 = default, c91 = default, cA0 = default, cA1 = default, cB0 = default, cB1 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(pb);
            var b1 = Vector512.Load(pb + 16);
            var a = Vector512.Create(pa[0]);
            c00 = Avx512F.FusedMultiplyAdd(a, b0, c00);
            c01 = Avx512F.FusedMultiplyAdd(a, b1, c01);
            a = Vector512.Create(pa[1]);
            c10 = Avx512F.FusedMultiplyAdd(a, b0, c10);
            c11 = Avx512F.FusedMultiplyAdd(a, b1, c11);
            a = Vector512.Create(pa[2]);
            c20 = Avx512F.FusedMultiplyAdd(a, b0, c20);
            c21 = Avx512F.FusedMultiplyAdd(a, b1, c21);
            a = Vector512.Create(pa[3]);
            c30 = Avx512F.FusedMultiplyAdd(a, b0, c30);
            c31 = Avx512F.FusedMultiplyAdd(a, b1, c31);
            a = Vector512.Create(pa[4]);
            c40 = Avx512F.FusedMultiplyAdd(a, b0, c40);
            c41 = Avx512F.FusedMultiplyAdd(a, b1, c41);
            a = Vector512.Create(pa[5]);
            c50 = Avx512F.FusedMultiplyAdd(a, b0, c50);
            c51 = Avx512F.FusedMultiplyAdd(a, b1, c51);
            a = Vector512.Create(pa[6]);
            c60 = Avx512F.FusedMultiplyAdd(a, b0, c60);
            c61 = Avx512F.FusedMultiplyAdd(a, b1, c61);
            a = Vector512.Create(pa[7]);
            c70 = Avx512F.FusedMultiplyAdd(a, b0, c70);
            c71 = Avx512F.FusedMultiplyAdd(a, b1, c71);
            a = Vector512.Create(pa[8]);
            c80 = Avx512F.FusedMultiplyAdd(a, b0, c80);
            c81 = Avx512F.FusedMultiplyAdd(a, b1, c81);
            a = Vector512.Create(pa[9]);
            c90 = Avx512F.FusedMultiplyAdd(a, b0, c90);
            c91 = Avx512F.FusedMultiplyAdd(a, b1, c91);
            a = Vector512.Create(pa[10]);
            cA0 = Avx512F.FusedMultiplyAdd(a, b0, cA0);
            cA1 = Avx512F.FusedMultiplyAdd(a, b1, cA1);
            a = Vector512.Create(pa[11]);
            cB0 = Avx512F.FusedMultiplyAdd(a, b0, cB0);
            cB1 = Avx512F.FusedMultiplyAdd(a, b1, cB1);
            pa += 12;
            pb += 32;
        }
        var va = Vector512.Create(alpha);
        Store(c, c00, va, beta); Store(c + 16, c01, va, beta); c += ldc;
        Store(c, c10, va, beta); Store(c + 16, c11, va, beta); c += ldc;
        Store(c, c20, va, beta); Store(c + 16, c21, va, beta); c += ldc;
        Store(c, c30, va, beta); Store(c + 16, c31, va, beta); c += ldc;
        Store(c, c40, va, beta); Store(c + 16, c41, va, beta); c += ldc;
        Store(c, c50, va, beta); Store(c + 16, c51, va, beta); c += ldc;
        Store(c, c60, va, beta); Store(c + 16, c61, va, beta); c += ldc;
        Store(c, c70, va, beta); Store(c + 16, c71, va, beta); c += ldc;
        Store(c, c80, va, beta); Store(c + 16, c81, va, beta); c += ldc;
        Store(c, c90, va, beta); Store(c + 16, c91, va, beta); c += ldc;
        Store(c, cA0, va, beta); Store(c + 16, cA1, va, beta); c += ldc;
        Store(c, cB0, va, beta); Store(c + 16, cB1, va, beta);
    }

    /// <summary>4 × (2·Vector&lt;float&gt;.Count) tile with plain multiply-add, for CPUs without AVX2/FMA.</summary>
    private static void KernelPortable(int kc, float* pa, float* pb, float* c, nint ldc, float alpha, float beta)
    {
        int w = Vector<float>.Count;
        Vector<float> c00 = default, c01 = default, c10 = default, c11 = default;
        Vector<float> c20 = default, c21 = default, c30 = default, c31 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Unsafe.ReadUnaligned<Vector<float>>(pb);
            var b1 = Unsafe.ReadUnaligned<Vector<float>>(pb + w);
            var a = new Vector<float>(pa[0]);
            c00 += a * b0;
            c01 += a * b1;
            a = new Vector<float>(pa[1]);
            c10 += a * b0;
            c11 += a * b1;
            a = new Vector<float>(pa[2]);
            c20 += a * b0;
            c21 += a * b1;
            a = new Vector<float>(pa[3]);
            c30 += a * b0;
            c31 += a * b1;
            pa += 4;
            pb += 2 * w;
        }
        var va = new Vector<float>(alpha);
        StorePortable(c, w, c00, c01, va, beta); c += ldc;
        StorePortable(c, w, c10, c11, va, beta); c += ldc;
        StorePortable(c, w, c20, c21, va, beta); c += ldc;
        StorePortable(c, w, c30, c31, va, beta);
    }

    private static void StorePortable(float* c, int w, Vector<float> lo, Vector<float> hi, Vector<float> alpha, float beta)
    {
        if (beta == 0f)
        {
            Unsafe.WriteUnaligned(c, alpha * lo);
            Unsafe.WriteUnaligned(c + w, alpha * hi);
        }
        else
        {
            var vb = new Vector<float>(beta);
            Unsafe.WriteUnaligned(c, alpha * lo + vb * Unsafe.ReadUnaligned<Vector<float>>(c));
            Unsafe.WriteUnaligned(c + w, alpha * hi + vb * Unsafe.ReadUnaligned<Vector<float>>(c + w));
        }
    }

    // ───────────────────────────── GEMV ─────────────────────────────

    /// <summary>y ← alpha·op(A)·x + beta·y for the stored rows×cols matrix A.</summary>
    /// <remarks>Float32 SIMD accumulation in a fixed order; blocks are fixed-size, so results do not depend on threads.</remarks>
    public static void Sgemv(bool transA, int rows, int cols, float alpha, float[] a, int lda, float[] x, float beta, float[] y, int threads)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(cols);
        int m = transA ? cols : rows, k = transA ? rows : cols;
        ArgumentNullException.ThrowIfNull(y);
        ArgumentNullException.ThrowIfNull(x);
        if (y.Length < m) throw new ArgumentException($"y holds {y.Length} floats, needs {m}", nameof(y));
        if (m == 0) return;
        if (k == 0 || alpha == 0f)
        {
            ScaleC(y, 1, m, m, beta, symmetric: false);
            return;
        }
        if (x.Length < k) throw new ArgumentException($"x holds {x.Length} floats, needs {k}", nameof(x));
        CheckMatrix(a, rows, cols, lda, nameof(a));
        int workers = (long)rows * cols < (1 << 16) ? 1 : Math.Max(1, threads);

        fixed (float* pa = a, px = x, py = y)
        {
            nint ap = (nint)pa, xp = (nint)px, yp = (nint)py;
            if (!transA)
            {
                // Fixed blocks of ≥ 16K elements, a multiple of 4 rows.
                int rowsPerBlock = Math.Max(4, (16384 / Math.Max(1, cols) + 3) & ~3);
                int blocks = (rows + rowsPerBlock - 1) / rowsPerBlock;
                RunTasks(blocks, workers, blk =>
                {
                    int r0 = blk * rowsPerBlock, r1 = Math.Min(rows, r0 + rowsPerBlock);
                    GemvRows((float*)ap, lda, cols, (float*)xp, alpha, beta, (float*)yp, r0, r1);
                });
            }
            else
            {
                const int Width = 256;
                int blocks = (cols + Width - 1) / Width;
                RunTasks(blocks, workers, blk =>
                {
                    int j0 = blk * Width, w = Math.Min(Width, cols - j0);
                    GemvColumns((float*)ap, lda, rows, (float*)xp, alpha, beta, (float*)yp, j0, w);
                });
            }
        }
    }

    /// <summary>y[i] for rows [r0, r1) of A·x; four rows share each load of x, each row has two accumulators.</summary>
    private static void GemvRows(float* a, int lda, int cols, float* x, float alpha, float beta, float* y, int r0, int r1)
    {
        int w = Vector<float>.Count;
        int i = r0;
        for (; i + 4 <= r1; i += 4)
        {
            float* a0 = a + (long)i * lda, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda;
            Vector<float> s00 = default, s01 = default, s10 = default, s11 = default;
            Vector<float> s20 = default, s21 = default, s30 = default, s31 = default;
            int p = 0;
            for (; p + 2 * w <= cols; p += 2 * w)
            {
                var x0 = Unsafe.ReadUnaligned<Vector<float>>(x + p);
                var x1 = Unsafe.ReadUnaligned<Vector<float>>(x + p + w);
                s00 += Unsafe.ReadUnaligned<Vector<float>>(a0 + p) * x0;
                s01 += Unsafe.ReadUnaligned<Vector<float>>(a0 + p + w) * x1;
                s10 += Unsafe.ReadUnaligned<Vector<float>>(a1 + p) * x0;
                s11 += Unsafe.ReadUnaligned<Vector<float>>(a1 + p + w) * x1;
                s20 += Unsafe.ReadUnaligned<Vector<float>>(a2 + p) * x0;
                s21 += Unsafe.ReadUnaligned<Vector<float>>(a2 + p + w) * x1;
                s30 += Unsafe.ReadUnaligned<Vector<float>>(a3 + p) * x0;
                s31 += Unsafe.ReadUnaligned<Vector<float>>(a3 + p + w) * x1;
            }
            y[i] = Finish(a0, x, p, cols, s00, s01, alpha, beta, y[i]);
            y[i + 1] = Finish(a1, x, p, cols, s10, s11, alpha, beta, y[i + 1]);
            y[i + 2] = Finish(a2, x, p, cols, s20, s21, alpha, beta, y[i + 2]);
            y[i + 3] = Finish(a3, x, p, cols, s30, s31, alpha, beta, y[i + 3]);
        }
        for (; i < r1; i++)
        {
            float* a0 = a + (long)i * lda;
            Vector<float> s0 = default, s1 = default;
            int p = 0;
            for (; p + 2 * w <= cols; p += 2 * w)
            {
                s0 += Unsafe.ReadUnaligned<Vector<float>>(a0 + p) * Unsafe.ReadUnaligned<Vector<float>>(x + p);
                s1 += Unsafe.ReadUnaligned<Vector<float>>(a0 + p + w) * Unsafe.ReadUnaligned<Vector<float>>(x + p + w);
            }
            y[i] = Finish(a0, x, p, cols, s0, s1, alpha, beta, y[i]);
        }
    }

    /// <summary>Reduces a row's accumulators, adds the scalar tail [p, cols) and applies alpha/beta.</summary>
    private static float Finish(float* row, float* x, int p, int cols, Vector<float> s0, Vector<float> s1, float alpha, float beta, float y)
    {
        float s = Vector.Sum(s0 + s1);
        for (; p < cols; p++) s += row[p] * x[p];
        return beta == 0f ? alpha * s : alpha * s + beta * y;
    }

    /// <summary>y[j0..j0+w) of Aᵀ·x: rows of A are streamed and accumulated into an L1-resident scratch row.</summary>
    private static void GemvColumns(float* a, int lda, int rows, float* x, float alpha, float beta, float* y, int j0, int w)
    {
        int vw = Vector<float>.Count;
        float* acc = stackalloc float[w];
        new Span<float>(acc, w).Clear();
        float* row = a + j0;
        for (int p = 0; p < rows; p++, row += lda)
        {
            var xp = new Vector<float>(x[p]);
            float xs = x[p];
            int j = 0;
            for (; j + vw <= w; j += vw)
                Unsafe.WriteUnaligned(acc + j, Unsafe.ReadUnaligned<Vector<float>>(acc + j) + Unsafe.ReadUnaligned<Vector<float>>(row + j) * xp);
            for (; j < w; j++) acc[j] += row[j] * xs;
        }
        for (int j = 0; j < w; j++)
            y[j0 + j] = beta == 0f ? alpha * acc[j] : alpha * acc[j] + beta * y[j0 + j];
    }

    // ───────────────────────────── buffers ─────────────────────────────

    /// <summary>64-byte-aligned packing buffers on the pinned heap, cached per thread.</summary>
    private static class Buffers
    {
        [ThreadStatic] internal static Buffer? A;
        [ThreadStatic] internal static Buffer? B;

        /// <summary>Buffers larger than this (in floats) are not kept after use.</summary>
        private const long KeepLimit = PackedBLimit;

        internal static Buffer Take(ref Buffer? slot, long floats)
        {
            var buf = slot;
            slot = null;
            return buf is not null && buf.Capacity >= floats ? buf : new Buffer(floats);
        }

        internal static void Give(ref Buffer? slot, Buffer buf)
        {
            if (buf.Capacity <= KeepLimit) slot = buf;
        }
    }

    private sealed class Buffer
    {
        private readonly float[] _array;

        public Buffer(long floats)
        {
            Capacity = Math.Max(floats, 1024);
            _array = GC.AllocateUninitializedArray<float>(checked((int)Capacity + 16), pinned: true);
            nint start = (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(_array));
            Ptr = (float*)((start + 63) & ~(nint)63);
        }

        public long Capacity { get; }

        /// <summary>Stays valid for the buffer's lifetime: pinned-heap arrays never move.</summary>
        public float* Ptr { get; }
    }
}
