using System.Reflection;
using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Kernels;
using D = ILGPU.ArrayView<double>;
using F = ILGPU.ArrayView<float>;
using I = ILGPU.ArrayView<int>;
using U = ILGPU.ArrayView<uint>;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// The kernels of <see cref="TaskMerge.Kernels"/> compiled for one accelerator, in one cache keyed by
/// kernel method: each is compiled and loaded on first use, or all at once by <see cref="LoadAll"/>
/// (which a CUDA backend runs when it is created, so a kernel the device cannot build fails there,
/// before any input is read). Auto-grouped kernels take the element count as their first argument;
/// grouped kernels take a <see cref="KernelConfig"/>. All launch on the accelerator's default stream.
/// ILGPU binds its CUDA context to the calling thread for copies but not for loads and launches,
/// so fetching a kernel binds it (a cheap cuCtxSetCurrent) and the launch that follows runs on it.
/// </summary>
/// <param name="accelerator">The accelerator the kernels are compiled for.</param>
/// <param name="beforeLoad">Called with each kernel method before it is compiled (tests inject a compile failure here).</param>
internal sealed class IlgpuKernels(Accelerator accelerator, Action<MethodInfo>? beforeLoad = null)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<MethodInfo, Delegate> _loaded = [];

    public Action<Index1D, F, F, F> Add => Auto<F, F, F>(ElementwiseKernels.Add);
    public Action<Index1D, F, F, F> Sub => Auto<F, F, F>(ElementwiseKernels.Sub);
    public Action<Index1D, F, F, F> Mul => Auto<F, F, F>(ElementwiseKernels.Mul);
    public Action<Index1D, F, F, F> Div => Auto<F, F, F>(ElementwiseKernels.Div);
    public Action<Index1D, F, F> Copy => Auto<F, F>(ElementwiseKernels.Copy);
    public Action<Index1D, F, float, F> Scale => Auto<F, float, F>(ElementwiseKernels.Scale);
    public Action<Index1D, float, F, F> Axpy => Auto<float, F, F>(ElementwiseKernels.Axpy);
    public Action<Index1D, F, float> Fill => Auto<F, float>(ElementwiseKernels.Fill);
    public Action<Index1D, F, F, float, F> NearSwap => Auto<F, F, float, F>(InterpolationKernels.NearSwap);
    public Action<Index1D, F, F, int, F> ArceeFusionImportance => Auto<F, F, int, F>(ArceeFusionKernels.Importance);
    public Action<Index1D, F, float, F> CountMagnitudeAbove => Auto<F, float, F>(RamKernels.CountMagnitudeAbove);
    public Action<Index1D, F, F, float, F, F> SignAgreeAccumulate => Auto<F, F, float, F, F>(ConsensusKernels.SignAgreeAccumulate);
    public Action<Index1D, F, F, float, F> DivClampedBelow => Auto<F, F, float, F>(ConsensusKernels.DivClampedBelow);
    public Action<Index1D, F, float, F, float, F> RamAccumulate => Auto<F, float, F, float, F>(RamKernels.Accumulate);
    public Action<Index1D, F, float, F, F, F> RamClassify => Auto<F, float, F, F, F>(RamKernels.Classify);

    public Action<KernelConfig, F, D> SumPartials => Grouped<F, D>(ReduceKernels.SumPartials);
    public Action<KernelConfig, F, D> SumAbsPartials => Grouped<F, D>(ReduceKernels.SumAbsPartials);
    public Action<KernelConfig, F, D> SumSquaresPartials => Grouped<F, D>(ReduceKernels.SumSquaresPartials);
    public Action<KernelConfig, F, F, D> DotPartials => Grouped<F, F, D>(ReduceKernels.DotPartials);
    public Action<KernelConfig, F, U> MaxAbsBitsPartials => Grouped<F, U>(ReduceKernels.MaxAbsBitsPartials);
    public Action<KernelConfig, D, D> SumOfPartials => Grouped<D, D>(ReduceKernels.SumOfPartials);
    public Action<KernelConfig, U, U> MaxOfPartials => Grouped<U, U>(ReduceKernels.MaxOfPartials);

    public Action<Index1D, F, I> HighDigitHistogram => Auto<F, I>(SelectKernels.HighDigitHistogram);
    public Action<Index1D, F, uint, I> LowDigitHistogram => Auto<F, uint, I>(SelectKernels.LowDigitHistogram);
    public Action<KernelConfig, F, uint, I> CountTiesPerChunk => Grouped<F, uint, I>(SelectKernels.CountTiesPerChunk);
    public Action<KernelConfig, F, uint, I> KeepAboveThreshold => Grouped<F, uint, I>(SelectKernels.KeepAboveThreshold);

    public Action<Index1D, ExpertViews, ConsensusPass, F> AccumulateTotal => Auto<ExpertViews, ConsensusPass, F>(TiesKernels.AccumulateTotal);
    public Action<Index1D, ExpertViews, ConsensusPass, F, F, F, F> MergeAgreeing => Auto<ExpertViews, ConsensusPass, F, F, F, F>(TiesKernels.MergeAgreeing);

    public Action<Index1D, F, float, ulong, ulong> BernoulliKeep => Auto<F, float, ulong, ulong>(RandomKernels.BernoulliKeep);
    public Action<Index1D, F, ulong, ulong> FillNormal => Auto<F, ulong, ulong>(RandomKernels.FillNormal);
    public Action<Index1D, F, F, RankKeepShape, ulong, ulong> RankedBernoulliKeep => Auto<F, F, RankKeepShape, ulong, ulong>(RandomKernels.RankedBernoulliKeep);

    public Action<Index1D, F, F, F, F, AdamScalars> AdamStep => Auto<F, F, F, F, AdamScalars>(OptimKernels.AdamStep);

    public Action<KernelConfig, F, F, F, GemmShape> Sgemm => Grouped<F, F, F, GemmShape>(GemmKernels.Sgemm);
    public Action<Index1D, F, F, F, GemvShape> Sgemv => Auto<F, F, F, GemvShape>(GemmKernels.Sgemv);
    public Action<Index1D, F, int> MirrorUpperToLower => Auto<F, int>(GemmKernels.MirrorUpperToLower);
    public Action<Index1D, F, F, BlockDotShape, D> BlockPairDot => Auto<F, F, BlockDotShape, D>(PairDotKernels.BlockPairDot);
    public Action<Index1D, F, F, BlockCopyShape> CopyBlock => Auto<F, F, BlockCopyShape>(MatrixKernels.CopyBlock);

    public Action<Index1D, F, F, F, F, int, float> LayerNorm => Auto<F, F, F, F, int, float>(NnKernels.LayerNorm);
    public Action<Index1D, F, F, F, int, int> AddRowVector => Auto<F, F, F, int, int>(NnKernels.AddRowVector);
    public Action<Index1D, F, F, F, F, F, int, float> LayerNormBackwardRows => Auto<F, F, F, F, F, int, float>(NnKernels.LayerNormBackwardRows);
    public Action<Index1D, F, F, F, F, F, int, int> LayerNormBackwardColumns => Auto<F, F, F, F, F, int, int>(NnKernels.LayerNormBackwardColumns);
    public Action<Index1D, F, F, F> GeluBackward => Auto<F, F, F>(NnKernels.GeluBackward);
    public Action<Index1D, F, F, F> QuickGeluBackward => Auto<F, F, F>(NnKernels.QuickGeluBackward);
    public Action<Index1D, F, F, F, int, float> SoftmaxRowsBackward => Auto<F, F, F, int, float>(NnKernels.SoftmaxRowsBackward);
    public Action<Index1D, F, F> Gelu => Auto<F, F>(NnKernels.Gelu);
    public Action<Index1D, F, F> QuickGelu => Auto<F, F>(NnKernels.QuickGelu);
    public Action<Index1D, F, F> Tanh => Auto<F, F>(NnKernels.Tanh);
    public Action<Index1D, F, F, F, int, float, int, int> SoftmaxRows => Auto<F, F, F, int, float, int, int>(NnKernels.SoftmaxRows);
    public Action<Index1D, F, F, F, BatchedGemmShape> GemmStridedBatched => Auto<F, F, F, BatchedGemmShape>(NnKernels.GemmStridedBatched);
    public Action<Index1D, F, F, HeadShape> SplitHeads => Auto<F, F, HeadShape>(NnKernels.SplitHeads);
    public Action<Index1D, F, F, HeadShape> MergeHeads => Auto<F, F, HeadShape>(NnKernels.MergeHeads);
    public Action<Index1D, F, I, F, int> GatherRows => Auto<F, I, F, int>(NnKernels.GatherRows);
    public Action<Index1D, F, I, F, int> ScatterAddRows => Auto<F, I, F, int>(NnKernels.ScatterAddRows);
    public Action<Index1D, F, F, int, int, int> AddRowVectorBackward => Auto<F, F, int, int, int>(NnKernels.AddRowVectorBackward);
    public Action<Index1D, F, F, PatchShape> Patchify => Auto<F, F, PatchShape>(NnKernels.Patchify);
    public Action<Index1D, F, F, int, F> ScaleColumns => Auto<F, F, int, F>(MatrixKernels.ScaleColumns);

    public Action<Index1D, F, D, int, int, int> ToDouble => Auto<F, D, int, int, int>(SolverKernels.ToDouble);
    public Action<Index1D, D, F, int, int, int> ToFloat => Auto<D, F, int, int, int>(SolverKernels.ToFloat);
    public Action<Index1D, D, int, double> AddToDiagonal => Auto<D, int, double>(SolverKernels.AddToDiagonal);
    public Action<Index1D, D, int, I> FlagBadPivots => Auto<D, int, I>(SolverKernels.FlagBadPivots);

    /// <summary>Names (Type.Method) of the kernels compiled and loaded so far.</summary>
    public IReadOnlyCollection<string> Loaded
    {
        get
        {
            lock (_gate) return _loaded.Keys.Select(Name).Order(StringComparer.Ordinal).ToArray();
        }
    }

    /// <summary>
    /// Compiles and loads every kernel (every launcher property of this class). A kernel that fails
    /// throws <see cref="KernelLoadException"/> naming it.
    /// </summary>
    public void LoadAll()
    {
        foreach (var launcher in typeof(IlgpuKernels).GetProperties(BindingFlags.Public | BindingFlags.Instance))
        {
            if (!typeof(Delegate).IsAssignableFrom(launcher.PropertyType)) continue;
            try
            {
                launcher.GetValue(this);
            }
            catch (TargetInvocationException e) when (e.InnerException is KernelLoadException load)
            {
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(load);
            }
        }
    }

    private Action<Index1D, T1, T2> Auto<T1, T2>(Action<Index1D, T1, T2> kernel)
        where T1 : struct where T2 : struct => Get(kernel, accelerator.LoadAutoGroupedStreamKernel);

    private Action<Index1D, T1, T2, T3> Auto<T1, T2, T3>(Action<Index1D, T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct => Get(kernel, accelerator.LoadAutoGroupedStreamKernel);

    private Action<Index1D, T1, T2, T3, T4> Auto<T1, T2, T3, T4>(Action<Index1D, T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct => Get(kernel, accelerator.LoadAutoGroupedStreamKernel);

    private Action<Index1D, T1, T2, T3, T4, T5> Auto<T1, T2, T3, T4, T5>(Action<Index1D, T1, T2, T3, T4, T5> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct =>
        Get(kernel, accelerator.LoadAutoGroupedStreamKernel);

    private Action<Index1D, T1, T2, T3, T4, T5, T6> Auto<T1, T2, T3, T4, T5, T6>(Action<Index1D, T1, T2, T3, T4, T5, T6> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct =>
        Get(kernel, accelerator.LoadAutoGroupedStreamKernel);

    private Action<Index1D, T1, T2, T3, T4, T5, T6, T7> Auto<T1, T2, T3, T4, T5, T6, T7>(Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct =>
        Get(kernel, accelerator.LoadAutoGroupedStreamKernel);

    private Action<KernelConfig, T1, T2> Grouped<T1, T2>(Action<T1, T2> kernel)
        where T1 : struct where T2 : struct => Get(kernel, accelerator.LoadStreamKernel);

    private Action<KernelConfig, T1, T2, T3> Grouped<T1, T2, T3>(Action<T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct => Get(kernel, accelerator.LoadStreamKernel);

    private Action<KernelConfig, T1, T2, T3, T4> Grouped<T1, T2, T3, T4>(Action<T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct => Get(kernel, accelerator.LoadStreamKernel);

    /// <summary>The launcher of <paramref name="kernel"/> from the cache, compiled by <paramref name="load"/> on a miss.</summary>
    private TLauncher Get<TKernel, TLauncher>(TKernel kernel, Func<TKernel, TLauncher> load) where TKernel : Delegate where TLauncher : Delegate
    {
        lock (_gate)
        {
            accelerator.Bind();
            if (_loaded.TryGetValue(kernel.Method, out var launcher)) return (TLauncher)launcher;
            try
            {
                beforeLoad?.Invoke(kernel.Method);
                var loaded = load(kernel);
                _loaded.Add(kernel.Method, loaded);
                return loaded;
            }
            catch (Exception e)
            {
                throw new KernelLoadException(Name(kernel.Method), accelerator.Name, e);
            }
        }
    }

    private static string Name(MethodInfo kernel) => kernel.DeclaringType!.Name + "." + kernel.Name;
}
