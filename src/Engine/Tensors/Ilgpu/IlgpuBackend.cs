using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;
using ILGPU;
using ILGPU.Algorithms;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// The device backend: tensors are float buffers of an ILGPU <see cref="ILGPU.Runtime.Accelerator"/>
/// (CUDA in production; ILGPU's CPU accelerator runs the same kernels in tests), recycled through a
/// size-bucketed pool. Every op is a kernel from <see cref="TaskMerge.Kernels"/>, compiled once and
/// cached; GEMM/SYRK/GEMV go through cuBLAS on a CUDA accelerator where cuBLAS loads, else through
/// the tiled ILGPU kernels; SVD, symmetric eigen-decomposition and Cholesky solves through cuSOLVER
/// in float64 where it loads, else on the host. Ops are issued on the accelerator's default stream
/// and share scratch buffers, so one thread at a time drives a backend; any thread may, since every
/// CUDA call the backend makes outside ILGPU's own copies binds the context to the calling thread
/// first. One other thread may <see cref="Stage"/> uploads meanwhile; they travel on a copy stream
/// of their own (<see cref="HostStaging"/>).
/// </summary>
public sealed partial class IlgpuBackend : IBackend, IDeviceDiagnostics
{
    private readonly Context? _ownedContext;
    private readonly Accelerator _accelerator;
    private readonly bool _ownsAccelerator;
    private readonly DevicePool _pool;
    private readonly IlgpuKernels _kernels;
    private readonly CublasSession? _cublas;
    private readonly IDeviceSolver? _solver;
    private readonly HostStaging _staging;
    private readonly int _groupSize, _gemmTile;
    private int _gemmGridRows;
    private long _maxStackedElements = int.MaxValue;
    private MemoryBuffer1D<double, Stride1D.Dense>? _doublePartials;
    private MemoryBuffer1D<uint, Stride1D.Dense>? _uintPartials;
    private MemoryBuffer1D<int, Stride1D.Dense>? _histogram, _chunkCounts, _flag;
    private MemoryBuffer1D<float, Stride1D.Dense>? _weights;
    private bool _disposed, _forceKernelMatrixOps;

    /// <summary>
    /// A backend on <paramref name="accelerator"/>, which the caller keeps ownership of.
    /// <paramref name="allowTf32"/> lets cuBLAS use TF32 tensor cores for float32 products.
    /// </summary>
    public IlgpuBackend(Accelerator accelerator, bool allowTf32 = false)
        : this(accelerator, ownedContext: null, ownsAccelerator: false, allowTf32, solver: null) { }

    /// <summary>
    /// A backend whose dense factorisations run on <paramref name="solver"/> instead of the one
    /// <see cref="ChooseSolver"/> picks (tests drive the device path on ILGPU's CPU accelerator this way).
    /// </summary>
    internal IlgpuBackend(Accelerator accelerator, IDeviceSolver solver)
        : this(accelerator, ownedContext: null, ownsAccelerator: false, allowTf32: false, solver) { }

    /// <summary>A backend whose kernel loads call <paramref name="beforeKernelLoad"/> first (tests inject a compile failure this way).</summary>
    internal IlgpuBackend(Accelerator accelerator, Action<System.Reflection.MethodInfo> beforeKernelLoad)
        : this(accelerator, ownedContext: null, ownsAccelerator: false, allowTf32: false, solver: null, beforeKernelLoad) { }

    private IlgpuBackend(Accelerator accelerator, Context? ownedContext, bool ownsAccelerator, bool allowTf32, IDeviceSolver? solver,
        Action<System.Reflection.MethodInfo>? beforeKernelLoad = null)
    {
        _accelerator = accelerator;
        _ownedContext = ownedContext;
        _ownsAccelerator = ownsAccelerator;
        _pool = new DevicePool(accelerator);
        _kernels = new IlgpuKernels(accelerator, beforeKernelLoad);
        _groupSize = 1 << BitOperations.Log2((uint)Math.Min(ReduceKernels.MaxGroupSize, accelerator.MaxNumThreadsPerGroup));
        _gemmTile = Math.Min(GemmKernels.MaxTile, (int)Math.Sqrt(accelerator.MaxNumThreadsPerGroup));
        _gemmGridRows = Math.Min(65_535, accelerator.MaxGridSize.Y);
        if (accelerator is CudaAccelerator cuda)
        {
            double gib = cuda.MemorySize / (double)(1L << 30);
            Name = string.Create(CultureInfo.InvariantCulture, $"cuda:{cuda.DeviceId} ({cuda.Name}, {gib:0.#} GiB)");
            _cublas = CublasSession.TryCreate(cuda, allowTf32, out string detail);
            MatrixEngine = _cublas is null ? $"ILGPU tiled kernels ({detail})" : detail;
        }
        else
        {
            Name = $"ilgpu-{accelerator.AcceleratorType.ToString().ToLowerInvariant()} ({accelerator.Name})";
            MatrixEngine = "ILGPU tiled kernels";
        }
        _staging = new HostStaging(this, accelerator);
        string why = "";
        _solver = solver ?? ChooseSolver(accelerator, _pool, out why);
        LinearAlgebraEngine = _solver?.Description ?? $"host float64 between a download and an upload ({why})";
    }

    /// <summary>
    /// The ILGPU context every CUDA backend runs in: the CUDA devices, with ILGPU.Algorithms' software
    /// intrinsics so that <c>Math.Exp</c>/<c>Math.Log</c> in kernels compile for PTX without libNVVM/libdevice.
    /// </summary>
    public static Context CreateCudaContext() => Context.Create(builder => builder.Cuda().EnableAlgorithms());

    /// <summary>
    /// A backend on CUDA device 0, owning its ILGPU context, or null with a human-readable
    /// <paramref name="reason"/> ("CUDA driver not found: ...", "no CUDA device found", ...).
    /// </summary>
    public static IlgpuBackend? TryCreateCuda(out string reason, bool allowTf32 = false)
    {
        if (!CudaDriverLoads(out reason)) return null;
        Context? context = null;
        Accelerator? accelerator = null;
        try
        {
            context = CreateCudaContext();
            if (context.GetCudaDevices().Count == 0)
            {
                context.Dispose();
                reason = NoDeviceReason;
                return null;
            }
            accelerator = context.CreateCudaAccelerator(0);
            return WithKernelsLoaded(new IlgpuBackend(accelerator, context, ownsAccelerator: true, allowTf32, solver: null), out reason);
        }
        catch (Exception e)
        {
            accelerator?.Dispose();
            context?.Dispose();
            reason = $"CUDA device unusable: {e.GetType().Name}: {e.Message}";
            return null;
        }
    }

    /// <summary>
    /// <paramref name="backend"/> once every kernel is compiled and loaded (so a kernel the device cannot
    /// build fails now, before any input is read), or null, the backend disposed, with the failing kernel
    /// and the compiler's message in <paramref name="reason"/>.
    /// </summary>
    internal static IlgpuBackend? WithKernelsLoaded(IlgpuBackend backend, out string reason)
    {
        try
        {
            backend._kernels.LoadAll();
            reason = "";
            return backend;
        }
        catch (KernelLoadException e)
        {
            backend.Dispose();
            reason = e.Message;
            return null;
        }
    }

    /// <summary>The start of <see cref="TryCreateCuda"/>'s reason on a machine without a CUDA driver.</summary>
    internal const string NoDriverReason = "CUDA driver not found";

    /// <summary><see cref="TryCreateCuda"/>'s reason where the driver loads but lists no device.</summary>
    internal const string NoDeviceReason = "no CUDA device found";

    private static bool CudaDriverLoads(out string reason)
    {
        string[] names = OperatingSystem.IsWindows() ? ["nvcuda.dll"] : ["libcuda.so.1", "libcuda.so"];
        string? first = null;
        foreach (string name in names)
        {
            try
            {
                NativeLibrary.Load(name);
                reason = "";
                return true;
            }
            catch (Exception e) when (e is DllNotFoundException or BadImageFormatException)
            {
                first ??= Native.NativeLibraryProbe.LoaderMessage(e.Message, name);
            }
        }
        reason = $"{NoDriverReason}: could not load {string.Join(" or ", names)} ({first})";
        return false;
    }

    /// <inheritdoc />
    public string Name { get; }

    /// <summary>What runs GEMM/SYRK/GEMV: "cuBLAS (path)", or the ILGPU kernels and why cuBLAS is not used.</summary>
    public string MatrixEngine { get; }

    /// <summary>Bytes of released tensor buffers held for reuse.</summary>
    public long CachedBytes => _pool.CachedBytes;

    /// <summary>Frees the released tensor buffers held for reuse.</summary>
    public void TrimPool() => _pool.Trim();

    internal Accelerator Accelerator => _accelerator;

    /// <summary>Device-level access for tests and benchmarks (<see cref="IDeviceDiagnostics"/>).</summary>
    internal IDeviceDiagnostics Diagnostics => this;

    CublasSession? IDeviceDiagnostics.Cublas => _cublas;

    IntPtr IDeviceDiagnostics.DevicePointer(Tensor t) => Pointer(t);

    bool IDeviceDiagnostics.ForceKernelMatrixOps { get => _forceKernelMatrixOps; set => _forceKernelMatrixOps = value; }

    HostStaging IDeviceDiagnostics.Staging => _staging;

    IReadOnlyCollection<string> IDeviceDiagnostics.LoadedKernels => _kernels.Loaded;

    int IDeviceDiagnostics.GemmGridRows { get => _gemmGridRows; set => _gemmGridRows = value; }

    long IDeviceDiagnostics.MaxStackedElements { get => _maxStackedElements; set => _maxStackedElements = value; }

    private bool UseCublas => _cublas is not null && !_forceKernelMatrixOps;

    /// <inheritdoc />
    public Tensor Empty(params int[] shape) => new(this, shape, _pool.Rent(ElementCount(shape)));

    /// <inheritdoc />
    public Tensor Zeros(params int[] shape)
    {
        var t = Empty(shape);
        if (t.Length > 0) View(t).MemSetToZero();
        return t;
    }

    private static long ElementCount(int[] shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape [{string.Join(",", shape)}]");
            n *= d;
        }
        if (n > int.MaxValue) throw new ArgumentException($"tensor of shape [{string.Join(",", shape)}] exceeds {int.MaxValue} elements");
        return n;
    }

    /// <inheritdoc />
    public Tensor FromHost(float[] values, params int[] shape)
    {
        var t = Empty(shape);
        Upload(values, t);
        return t;
    }

    /// <inheritdoc />
    /// <remarks>Through <see cref="HostStaging"/>: pinned slots and a non-blocking copy stream.</remarks>
    public StagedTensor Stage(int[] shape, HostFill fill) => _staging.Stage(shape, fill);

    /// <inheritdoc />
    public float[] DetachToHost(Tensor t)
    {
        var a = GC.AllocateUninitializedArray<float>(checked((int)t.Length));
        Download(t, a);
        t.Dispose();
        return a;
    }

    /// <inheritdoc />
    public void Upload(ReadOnlySpan<float> src, Tensor dst)
    {
        var buffer = Buffer(dst);
        if (src.Length > dst.Length) throw new ArgumentException($"{src.Length} values do not fit {dst}");
        if (src.Length > 0) buffer.AsArrayView<float>(0, src.Length).CopyFromCPU(src);
    }

    /// <inheritdoc />
    public void Download(Tensor src, Span<float> dst)
    {
        var buffer = Buffer(src);
        if (dst.Length < src.Length) throw new ArgumentException($"{src} does not fit {dst.Length} values");
        if (src.Length > 0) buffer.AsArrayView<float>(0, src.Length).CopyToCPU(dst[..(int)src.Length]);
    }

    /// <inheritdoc />
    public void Release(Tensor t)
    {
        if (!_disposed && t.Storage is MemoryBuffer1D<float, Stride1D.Dense> buffer) _pool.Return(buffer);
    }

    /// <inheritdoc />
    public void Copy(Tensor src, Tensor dst) => Binary(_kernels.Copy, src, dst);

    /// <inheritdoc />
    public void Fill(Tensor t, float value)
    {
        if (t.Length > 0) _kernels.Fill(Count(t), View(t), value);
    }

    /// <inheritdoc />
    public void Add(Tensor a, Tensor b, Tensor dst) => Ternary(_kernels.Add, a, b, dst);

    /// <inheritdoc />
    public void Sub(Tensor a, Tensor b, Tensor dst) => Ternary(_kernels.Sub, a, b, dst);

    /// <inheritdoc />
    public void Mul(Tensor a, Tensor b, Tensor dst) => Ternary(_kernels.Mul, a, b, dst);

    /// <inheritdoc />
    public void Div(Tensor a, Tensor b, Tensor dst) => Ternary(_kernels.Div, a, b, dst);

    /// <inheritdoc />
    public void Scale(Tensor a, float s, Tensor dst)
    {
        SameLength(a, dst);
        if (a.Length > 0) _kernels.Scale(Count(a), View(a), s, View(dst));
    }

    /// <inheritdoc />
    public void Axpy(float alpha, Tensor x, Tensor y)
    {
        SameLength(x, y);
        if (x.Length > 0) _kernels.Axpy(Count(x), alpha, View(x), View(y));
    }

    /// <inheritdoc />
    public double Sum(Tensor x) => SumOfPartials(_kernels.SumPartials, x);

    /// <inheritdoc />
    public double SumAbs(Tensor x) => SumOfPartials(_kernels.SumAbsPartials, x);

    /// <inheritdoc />
    public double SumSquares(Tensor x) => SumOfPartials(_kernels.SumSquaresPartials, x);

    /// <inheritdoc />
    public double Dot(Tensor a, Tensor b)
    {
        SameLength(a, b);
        int chunks = ReduceKernels.ChunkCount(a.Length);
        if (chunks == 0) return 0;
        var partials = Scratch(ref _doublePartials, chunks + 1);
        _kernels.DotPartials(Groups(chunks), View(a), View(b), partials.View.SubView(0, chunks));
        return SumOfPartials(partials, chunks);
    }

    /// <inheritdoc />
    public void BlockDot(IReadOnlyList<Tensor> xs, IReadOnlyList<Tensor> ys, int blockLength, Span<double> dst)
    {
        int nx = xs.Count, ny = ys.Count;
        int blocks = OpShapes.BlockDot(xs, ys, blockLength, dst.Length), outputs = checked(blocks * nx * ny);
        long length = nx > 0 ? xs[0].Length : 0;
        if (outputs == 0) return;
        if (blocks == 1)
        {
            for (int i = 0; i < nx; i++)
                for (int j = 0; j < ny; j++) dst[i * ny + j] = Dot(xs[i], ys[j]);
            return;
        }
        using var result = _accelerator.Allocate1D<double>(outputs);
        if (Math.Max(nx, ny) * length <= _maxStackedElements)
        {
            using var x = Stack(xs, length);
            using var y = ReferenceEquals(xs, ys) ? null : Stack(ys, length);
            _kernels.BlockPairDot(outputs, View(x), View(y ?? x), new BlockDotShape { Nx = nx, Ny = ny, BlockLength = blockLength, Length = length }, result.View);
            result.AsArrayView<double>(0, outputs).CopyToCPU(dst[..outputs]);
            return;
        }
        // The stacked vectors would not fit one buffer: one launch per pair on the tensors themselves.
        var perPair = new double[blocks];
        var shape = new BlockDotShape { Nx = 1, Ny = 1, BlockLength = blockLength, Length = length };
        for (int i = 0; i < nx; i++)
            for (int j = 0; j < ny; j++)
            {
                _kernels.BlockPairDot(blocks, View(xs[i]), View(ys[j]), shape, result.View.SubView(0, blocks));
                result.AsArrayView<double>(0, blocks).CopyToCPU(perPair.AsSpan());
                for (int block = 0; block < blocks; block++) dst[(block * nx + i) * ny + j] = perPair[block];
            }
    }

    private Tensor Stack(IReadOnlyList<Tensor> ts, long length)
    {
        var stacked = Empty((int)(ts.Count * length));
        for (int i = 0; i < ts.Count; i++) View(ts[i]).CopyTo(View(stacked).SubView(i * length, length));
        return stacked;
    }

    /// <inheritdoc />
    public void CopyBlock(Tensor src, int srcRow, int srcCol, Tensor dst, int dstRow, int dstCol, int rows, int cols)
    {
        var (srcCols, dstCols) = OpShapes.CopyBlock(src, srcRow, srcCol, dst, dstRow, dstCol, rows, cols);
        if (rows * cols == 0) return;
        _kernels.CopyBlock(rows * cols, View(src), View(dst), new BlockCopyShape
        {
            SrcCols = srcCols, DstCols = dstCols, SrcRow = srcRow, SrcCol = srcCol, DstRow = dstRow, DstCol = dstCol, Cols = cols,
        });
    }

    /// <inheritdoc />
    public void ScaleColumns(Tensor a, Tensor scales, Tensor dst)
    {
        SameLength(a, dst);
        if (scales.Length != a.Cols) throw new ArgumentException($"scale_columns: {scales.Length} scales for {a.Cols} columns");
        if (a.Length > 0) _kernels.ScaleColumns(Count(a), View(a), View(scales), a.Cols, View(dst));
    }

    /// <inheritdoc />
    public float MaxAbs(Tensor x)
    {
        int chunks = ReduceKernels.ChunkCount(x.Length);
        if (chunks == 0) return 0f;
        var partials = Scratch(ref _uintPartials, chunks + 1);
        _kernels.MaxAbsBitsPartials(Groups(chunks), View(x), partials.View.SubView(0, chunks));
        _kernels.MaxOfPartials(Groups(1), partials.View.SubView(0, chunks), partials.View.SubView(chunks, 1));
        return BitConverter.UInt32BitsToSingle(Scalar(partials, chunks));
    }

    /// <inheritdoc />
    public void KeepTopKMagnitude(Tensor x, long k)
    {
        long n = x.Length;
        if (k >= n) return;
        var view = View(x);
        if (k <= 0)
        {
            view.MemSetToZero();
            return;
        }
        var histogram = Scratch(ref _histogram, SelectKernels.Bins);
        var bins = histogram.View.SubView(0, SelectKernels.Bins);

        bins.MemSetToZero();
        _kernels.HighDigitHistogram((int)n, view, bins);
        long remaining = k;
        uint prefix = (uint)SelectKernels.DigitHoldingRank(Array.ConvertAll(ToHost(histogram, SelectKernels.Bins), c => (long)c), ref remaining) << 16;

        bins.MemSetToZero();
        _kernels.LowDigitHistogram((int)n, view, prefix, bins);
        uint threshold = prefix | (uint)SelectKernels.DigitHoldingRank(Array.ConvertAll(ToHost(histogram, SelectKernels.Bins), c => (long)c), ref remaining);

        // remaining = k − count(|x| > threshold): the ties to keep, taken chunk by chunk in index order.
        int chunks = ReduceKernels.ChunkCount(n);
        var counts = Scratch(ref _chunkCounts, chunks);
        var perChunk = counts.View.SubView(0, chunks);
        _kernels.CountTiesPerChunk(Groups(chunks), view, threshold, perChunk);
        int[] allowance = ToHost(counts, chunks);
        long before = 0;
        for (int c = 0; c < chunks; c++)
        {
            int ties = allowance[c];
            allowance[c] = (int)Math.Clamp(remaining - before, 0, ties);
            before += ties;
        }
        perChunk.AsContiguous().CopyFromCPU<int, ArrayView<int>>(allowance);
        _kernels.KeepAboveThreshold(Groups(chunks), view, threshold, perChunk);
    }

    /// <inheritdoc />
    public void BernoulliKeep(Tensor x, float keepProbability, ulong seed, ulong stream)
    {
        if (x.Length > 0) _kernels.BernoulliKeep(Count(x), View(x), keepProbability, seed, stream);
    }

    /// <inheritdoc />
    public void RankedBernoulliKeep(Tensor x, int line, int inner, double pLow, double pHigh, ulong seed, ulong stream)
    {
        if (OpShapes.RankLines(x, line, inner) == 0) return;
        using var src = Empty(x.Shape.ToArray());
        Copy(x, src);
        _kernels.RankedBernoulliKeep(Count(x), View(src), View(x),
            new RankKeepShape { Line = line, Inner = inner, PLow = pLow, PHigh = pHigh }, seed, stream);
    }

    /// <inheritdoc />
    public void FillNormal(Tensor t, ulong seed, ulong stream)
    {
        if (t.Length > 0) _kernels.FillNormal(Count(t), View(t), seed, stream);
    }

    /// <inheritdoc />
    public void SignConsensus(IReadOnlyList<Tensor> weighted, ReadOnlySpan<float> weights, Tensor mixed, Tensor divisor)
    {
        foreach (var w in weighted) SameLength(w, mixed);
        SameLength(mixed, divisor);
        int k = weighted.Count;
        if (weights.Length < k) throw new ArgumentException($"sign consensus: {k} tensors but {weights.Length} weights");
        if (mixed.Length == 0) return;
        int n = Count(mixed);
        var weightBuffer = Scratch(ref _weights, Math.Max(k, 1));
        if (k > 0) weightBuffer.AsArrayView<float>(0, k).CopyFromCPU(weights[..k]);
        using var total = Empty(n);
        var totalView = View(total);
        if (k == 0) totalView.MemSetToZero();
        for (int start = 0; start < k; start += ExpertViews.Capacity)
            _kernels.AccumulateTotal(n, Pack(weighted, start, mixed), Pass(k, start), totalView);
        for (int start = 0; start == 0 || start < k; start += ExpertViews.Capacity)
        {
            var passWeights = weightBuffer.View.SubView(start, Math.Max(1, k - start)).AsContiguous();
            _kernels.MergeAgreeing(n, Pack(weighted, start, mixed), Pass(k, start), passWeights, totalView, View(mixed), View(divisor));
        }
    }

    private static ConsensusPass Pass(int k, int start) => new()
    {
        Count = Math.Clamp(k - start, 0, ExpertViews.Capacity),
        First = start == 0 ? 1 : 0,
        Last = start + ExpertViews.Capacity >= k ? 1 : 0,
    };

    private ExpertViews Pack(IReadOnlyList<Tensor> weighted, int start, Tensor filler)
    {
        var v = new ArrayView<float>[ExpertViews.Capacity];
        for (int j = 0; j < v.Length; j++) v[j] = View(start + j < weighted.Count ? weighted[start + j] : filler);
        return new ExpertViews { E0 = v[0], E1 = v[1], E2 = v[2], E3 = v[3], E4 = v[4], E5 = v[5], E6 = v[6], E7 = v[7] };
    }

    /// <inheritdoc />
    public void AdamStep(Tensor p, Tensor g, Tensor m, Tensor v, int step, Optim.AdamSettings settings)
    {
        SameLength(p, g);
        SameLength(p, m);
        SameLength(p, v);
        var scalars = settings.Scalars(step);
        if (p.Length > 0) _kernels.AdamStep(Count(p), View(p), View(g), View(m), View(v), scalars);
    }

    /// <inheritdoc />
    public void Gemm(Tensor a, bool transA, Tensor b, bool transB, Tensor c, float alpha = 1f, float beta = 0f)
    {
        int m = transA ? a.Cols : a.Rows, k = transA ? a.Rows : a.Cols;
        int kb = transB ? b.Cols : b.Rows, n = transB ? b.Rows : b.Cols;
        if (k != kb || c.Rows != m || c.Cols != n)
            throw new ArgumentException($"gemm shape mismatch: op(A) {m}x{k}, op(B) {kb}x{n}, C {c.Rows}x{c.Cols}");
        if (m == 0 || n == 0) return;
        if (UseCublas && k > 0)
            _cublas!.Gemm(transA, transB, m, n, k, alpha, Pointer(a), a.Cols, Pointer(b), b.Cols, beta, Pointer(c));
        else
            GemmKernel(a, transA, b, transB, c, m, n, k, alpha, beta);
    }

    /// <inheritdoc />
    public void Syrk(Tensor a, bool transA, Tensor c, float alpha = 1f, float beta = 0f)
    {
        int n = transA ? a.Cols : a.Rows, k = transA ? a.Rows : a.Cols;
        if (c.Rows != n || c.Cols != n) throw new ArgumentException($"syrk: C must be {n}x{n}");
        if (n == 0) return;
        if (!UseCublas || k == 0)
            GemmKernel(a, transA, a, !transA, c, n, n, k, alpha, beta);
        else if (beta == 0f)
        {
            _cublas!.SyrkUpper(transA, n, k, alpha, Pointer(a), a.Cols, 0f, Pointer(c));
            _kernels.MirrorUpperToLower(n * n, View(c), n);
        }
        else
        {
            // With beta ≠ 0 the old C's lower triangle matters too, which SYRK would not read.
            _cublas!.Gemm(transA, !transA, n, n, k, alpha, Pointer(a), a.Cols, Pointer(a), a.Cols, beta, Pointer(c));
        }
    }

    /// <inheritdoc />
    public void Gemv(Tensor a, bool transA, Tensor x, Tensor y, float alpha = 1f, float beta = 0f)
    {
        int m = transA ? a.Cols : a.Rows, n = transA ? a.Rows : a.Cols;
        if (x.Length != n || y.Length != m) throw new ArgumentException($"gemv shape mismatch: op(A) {m}x{n}, x {x.Length}, y {y.Length}");
        if (m == 0) return;
        if (UseCublas && n > 0)
            _cublas!.Gemv(transA, a.Rows, a.Cols, alpha, Pointer(a), Pointer(x), beta, Pointer(y));
        else
            _kernels.Sgemv(m, View(a), View(x), View(y), new GemvShape { Rows = a.Rows, Cols = a.Cols, TransA = transA ? 1 : 0, Alpha = alpha, Beta = beta });
    }

    private void GemmKernel(Tensor a, bool transA, Tensor b, bool transB, Tensor c, int m, int n, int k, float alpha, float beta)
    {
        var shape = new GemmShape
        {
            M = m, N = n, K = k, Lda = a.Cols, Ldb = b.Cols, Ldc = n,
            TransA = transA ? 1 : 0, TransB = transB ? 1 : 0, Alpha = alpha, Beta = beta,
        };
        int t = _gemmTile, tileRows = (m + t - 1) / t;
        for (int first = 0; first < tileRows; first += _gemmGridRows)
        {
            int band = Math.Min(_gemmGridRows, tileRows - first);
            shape.RowOffset = first * t;
            _kernels.Sgemm(new KernelConfig(new Index2D((n + t - 1) / t, band), new Index2D(t, t)), View(a), View(b), View(c), shape);
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _accelerator.Bind();
        _staging.Dispose();
        _cublas?.Dispose();
        _solver?.Dispose();
        _doublePartials?.Dispose();
        _uintPartials?.Dispose();
        _histogram?.Dispose();
        _chunkCounts?.Dispose();
        _flag?.Dispose();
        _weights?.Dispose();
        _pool.Dispose();
        if (_ownsAccelerator) _accelerator.Dispose();
        _ownedContext?.Dispose();
    }

    private MemoryBuffer1D<float, Stride1D.Dense> Buffer(Tensor t)
    {
        if (t.IsDisposed) throw new ObjectDisposedException(t.ToString(), "tensor used after Dispose");
        if (!ReferenceEquals(t.Backend, this) || t.Storage is not MemoryBuffer1D<float, Stride1D.Dense> buffer)
            throw new ArgumentException($"{t} does not live on {Name}");
        return buffer;
    }

    private ArrayView<float> View(Tensor t) => Buffer(t).AsArrayView<float>(0, t.Length);

    /// <summary>The device view of a tensor's elements.</summary>
    internal ArrayView<float> ViewOf(Tensor t) => View(t);

    private IntPtr Pointer(Tensor t) => Buffer(t).NativePtr;

    private static int Count(Tensor t) => (int)t.Length;

    private KernelConfig Groups(int count) => new(count, _groupSize);

    private MemoryBuffer1D<T, Stride1D.Dense> Scratch<T>(ref MemoryBuffer1D<T, Stride1D.Dense>? buffer, long length) where T : unmanaged
    {
        if (buffer is null || buffer.Length < length)
        {
            _accelerator.Bind();
            buffer?.Dispose();
            buffer = _accelerator.Allocate1D<T>(Math.Max(length, 1024));
        }
        return buffer;
    }

    private static T[] ToHost<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer, int count) where T : unmanaged
    {
        var host = new T[count];
        buffer.AsArrayView<T>(0, count).CopyToCPU(host.AsSpan());
        return host;
    }

    private double SumOfPartials(Action<KernelConfig, ArrayView<float>, ArrayView<double>> kernel, Tensor x)
    {
        int chunks = ReduceKernels.ChunkCount(x.Length);
        if (chunks == 0) return 0;
        var partials = Scratch(ref _doublePartials, chunks + 1);
        kernel(Groups(chunks), View(x), partials.View.SubView(0, chunks));
        return SumOfPartials(partials, chunks);
    }

    /// <summary>Adds partials[0..chunks) on the device into partials[chunks] and downloads that one value.</summary>
    private double SumOfPartials(MemoryBuffer1D<double, Stride1D.Dense> partials, int chunks)
    {
        _kernels.SumOfPartials(Groups(1), partials.View.SubView(0, chunks), partials.View.SubView(chunks, 1));
        return Scalar(partials, chunks);
    }

    private static T Scalar<T>(MemoryBuffer1D<T, Stride1D.Dense> buffer, int index) where T : unmanaged
    {
        T value = default;
        buffer.AsArrayView<T>(index, 1).CopyToCPU(new Span<T>(ref value));
        return value;
    }

    private void Ternary(Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> kernel, Tensor a, Tensor b, Tensor dst)
    {
        SameLength(a, b);
        SameLength(a, dst);
        if (a.Length > 0) kernel(Count(a), View(a), View(b), View(dst));
    }

    private void Binary(Action<Index1D, ArrayView<float>, ArrayView<float>> kernel, Tensor src, Tensor dst)
    {
        SameLength(src, dst);
        if (src.Length > 0) kernel(Count(src), View(src), View(dst));
    }

    private static void SameLength(Tensor a, Tensor b) => OpShapes.SameLength(a, b);
}
