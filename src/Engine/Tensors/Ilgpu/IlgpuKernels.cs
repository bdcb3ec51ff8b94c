using ILGPU;
using ILGPU.Runtime;
using TaskMerge.Kernels;

namespace TaskMerge.Engine.Tensors.Ilgpu;

/// <summary>
/// The kernels of <see cref="TaskMerge.Kernels"/> compiled for one accelerator, each on first use
/// and then cached. Auto-grouped kernels take the element count as their first argument; grouped
/// kernels take a <see cref="KernelConfig"/>. All launch on the accelerator's default stream.
/// ILGPU binds its CUDA context to the calling thread for copies but not for loads and launches,
/// so fetching a kernel binds it (a cheap cuCtxSetCurrent) and the launch that follows runs on it.
/// </summary>
internal sealed class IlgpuKernels(Accelerator accelerator)
{
    private readonly Lock _gate = new();

    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _add, _sub, _mul, _div;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _copy;
    private Action<Index1D, ArrayView<float>, float, ArrayView<float>>? _scale;
    private Action<Index1D, float, ArrayView<float>, ArrayView<float>>? _axpy;
    private Action<Index1D, ArrayView<float>, float>? _fill;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, float, ArrayView<float>>? _nearSwap;
    private Action<Index1D, ArrayView<float>, float, ArrayView<float>>? _countMagnitudeAbove;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>? _arceeFusionImportance;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, float, ArrayView<float>, ArrayView<float>>? _signAgreeAccumulate;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, float, ArrayView<float>>? _divClampedBelow;
    private Action<Index1D, ArrayView<float>, float, ArrayView<float>, float, ArrayView<float>>? _ramAccumulate;
    private Action<Index1D, ArrayView<float>, float, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _ramClassify;
    private Action<KernelConfig, ArrayView<float>, ArrayView<double>>? _sum, _sumAbs, _sumSquares;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<double>>? _dot;
    private Action<KernelConfig, ArrayView<float>, ArrayView<uint>>? _maxAbsBits;
    private Action<KernelConfig, ArrayView<double>, ArrayView<double>>? _sumOfPartials;
    private Action<KernelConfig, ArrayView<uint>, ArrayView<uint>>? _maxOfPartials;
    private Action<Index1D, ArrayView<float>, ArrayView<int>>? _highHistogram;
    private Action<Index1D, ArrayView<float>, uint, ArrayView<int>>? _lowHistogram;
    private Action<KernelConfig, ArrayView<float>, uint, ArrayView<int>>? _countTies, _keepAbove;
    private Action<Index1D, ExpertViews, ConsensusPass, ArrayView<float>>? _accumulateTotal;
    private Action<Index1D, ExpertViews, ConsensusPass, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _mergeAgreeing;
    private Action<Index1D, ArrayView<float>, float, ulong, ulong>? _bernoulliKeep;
    private Action<Index1D, ArrayView<float>, ulong, ulong>? _fillNormal;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, RankKeepShape, ulong, ulong>? _rankedBernoulliKeep;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamScalars>? _adam;
    private Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape>? _sgemm;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape>? _sgemv;
    private Action<Index1D, ArrayView<float>, int>? _mirror;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, BlockDotShape, ArrayView<double>>? _blockPairDot;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, BlockCopyShape>? _copyBlock;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _layerNorm;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _layerNormBackRows;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _layerNormBackCols;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>>? _geluBack, _quickGeluBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float>? _softmaxBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int>? _addRowVector;
    private Action<Index1D, ArrayView<float>, ArrayView<float>>? _gelu, _quickGelu, _tanh;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int>? _softmaxRows;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchedGemmShape>? _batchedGemm;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, HeadShape>? _splitHeads, _mergeHeads;
    private Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int>? _gatherRows, _scatterAddRows;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int>? _addRowVectorBack;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, PatchShape>? _patchify;
    private Action<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<float>>? _scaleColumns;
    private Action<Index1D, ArrayView<float>, ArrayView<double>, int, int, int>? _toDouble;
    private Action<Index1D, ArrayView<double>, ArrayView<float>, int, int, int>? _toFloat;
    private Action<Index1D, ArrayView<double>, int, double>? _addToDiagonal;
    private Action<Index1D, ArrayView<double>, int, ArrayView<int>>? _flagBadPivots;

    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Add => Auto(ref _add, ElementwiseKernels.Add);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Sub => Auto(ref _sub, ElementwiseKernels.Sub);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Mul => Auto(ref _mul, ElementwiseKernels.Mul);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> Div => Auto(ref _div, ElementwiseKernels.Div);
    public Action<Index1D, ArrayView<float>, ArrayView<float>> Copy => Auto(ref _copy, ElementwiseKernels.Copy);
    public Action<Index1D, ArrayView<float>, float, ArrayView<float>> Scale => Auto(ref _scale, ElementwiseKernels.Scale);
    public Action<Index1D, float, ArrayView<float>, ArrayView<float>> Axpy => Auto(ref _axpy, ElementwiseKernels.Axpy);
    public Action<Index1D, ArrayView<float>, float> Fill => Auto(ref _fill, ElementwiseKernels.Fill);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, float, ArrayView<float>> NearSwap => Auto(ref _nearSwap, InterpolationKernels.NearSwap);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> ArceeFusionImportance => Auto(ref _arceeFusionImportance, ArceeFusionKernels.Importance);
    public Action<Index1D, ArrayView<float>, float, ArrayView<float>> CountMagnitudeAbove => Auto(ref _countMagnitudeAbove, RamKernels.CountMagnitudeAbove);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, float, ArrayView<float>, ArrayView<float>> SignAgreeAccumulate => Auto(ref _signAgreeAccumulate, ConsensusKernels.SignAgreeAccumulate);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, float, ArrayView<float>> DivClampedBelow => Auto(ref _divClampedBelow, ConsensusKernels.DivClampedBelow);
    public Action<Index1D, ArrayView<float>, float, ArrayView<float>, float, ArrayView<float>> RamAccumulate => Auto(ref _ramAccumulate, RamKernels.Accumulate);
    public Action<Index1D, ArrayView<float>, float, ArrayView<float>, ArrayView<float>, ArrayView<float>> RamClassify => Auto(ref _ramClassify, RamKernels.Classify);

    public Action<KernelConfig, ArrayView<float>, ArrayView<double>> SumPartials => Grouped(ref _sum, ReduceKernels.SumPartials);
    public Action<KernelConfig, ArrayView<float>, ArrayView<double>> SumAbsPartials => Grouped(ref _sumAbs, ReduceKernels.SumAbsPartials);
    public Action<KernelConfig, ArrayView<float>, ArrayView<double>> SumSquaresPartials => Grouped(ref _sumSquares, ReduceKernels.SumSquaresPartials);
    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<double>> DotPartials => Grouped(ref _dot, ReduceKernels.DotPartials);
    public Action<KernelConfig, ArrayView<float>, ArrayView<uint>> MaxAbsBitsPartials => Grouped(ref _maxAbsBits, ReduceKernels.MaxAbsBitsPartials);
    public Action<KernelConfig, ArrayView<double>, ArrayView<double>> SumOfPartials => Grouped(ref _sumOfPartials, ReduceKernels.SumOfPartials);
    public Action<KernelConfig, ArrayView<uint>, ArrayView<uint>> MaxOfPartials => Grouped(ref _maxOfPartials, ReduceKernels.MaxOfPartials);

    public Action<Index1D, ArrayView<float>, ArrayView<int>> HighDigitHistogram => Auto(ref _highHistogram, SelectKernels.HighDigitHistogram);
    public Action<Index1D, ArrayView<float>, uint, ArrayView<int>> LowDigitHistogram => Auto(ref _lowHistogram, SelectKernels.LowDigitHistogram);
    public Action<KernelConfig, ArrayView<float>, uint, ArrayView<int>> CountTiesPerChunk => Grouped(ref _countTies, SelectKernels.CountTiesPerChunk);
    public Action<KernelConfig, ArrayView<float>, uint, ArrayView<int>> KeepAboveThreshold => Grouped(ref _keepAbove, SelectKernels.KeepAboveThreshold);

    public Action<Index1D, ExpertViews, ConsensusPass, ArrayView<float>> AccumulateTotal => Auto(ref _accumulateTotal, TiesKernels.AccumulateTotal);
    public Action<Index1D, ExpertViews, ConsensusPass, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>> MergeAgreeing =>
        Auto(ref _mergeAgreeing, TiesKernels.MergeAgreeing);

    public Action<Index1D, ArrayView<float>, float, ulong, ulong> BernoulliKeep => Auto(ref _bernoulliKeep, RandomKernels.BernoulliKeep);
    public Action<Index1D, ArrayView<float>, ulong, ulong> FillNormal => Auto(ref _fillNormal, RandomKernels.FillNormal);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, RankKeepShape, ulong, ulong> RankedBernoulliKeep =>
        Auto(ref _rankedBernoulliKeep, RandomKernels.RankedBernoulliKeep);

    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, AdamScalars> AdamStep => Auto(ref _adam, OptimKernels.AdamStep);

    public Action<KernelConfig, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemmShape> Sgemm => Grouped(ref _sgemm, GemmKernels.Sgemm);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, GemvShape> Sgemv => Auto(ref _sgemv, GemmKernels.Sgemv);
    public Action<Index1D, ArrayView<float>, int> MirrorUpperToLower => Auto(ref _mirror, GemmKernels.MirrorUpperToLower);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, BlockDotShape, ArrayView<double>> BlockPairDot => Auto(ref _blockPairDot, PairDotKernels.BlockPairDot);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, BlockCopyShape> CopyBlock => Auto(ref _copyBlock, MatrixKernels.CopyBlock);

    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> LayerNorm => Auto(ref _layerNorm, NnKernels.LayerNorm);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> AddRowVector => Auto(ref _addRowVector, NnKernels.AddRowVector);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> LayerNormBackwardRows =>
        Auto(ref _layerNormBackRows, NnKernels.LayerNormBackwardRows);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int> LayerNormBackwardColumns =>
        Auto(ref _layerNormBackCols, NnKernels.LayerNormBackwardColumns);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> GeluBackward => Auto(ref _geluBack, NnKernels.GeluBackward);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>> QuickGeluBackward => Auto(ref _quickGeluBack, NnKernels.QuickGeluBackward);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float> SoftmaxRowsBackward => Auto(ref _softmaxBack, NnKernels.SoftmaxRowsBackward);
    public Action<Index1D, ArrayView<float>, ArrayView<float>> Gelu => Auto(ref _gelu, NnKernels.Gelu);
    public Action<Index1D, ArrayView<float>, ArrayView<float>> QuickGelu => Auto(ref _quickGelu, NnKernels.QuickGelu);
    public Action<Index1D, ArrayView<float>, ArrayView<float>> Tanh => Auto(ref _tanh, NnKernels.Tanh);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, float, int, int> SoftmaxRows => Auto(ref _softmaxRows, NnKernels.SoftmaxRows);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, BatchedGemmShape> GemmStridedBatched => Auto(ref _batchedGemm, NnKernels.GemmStridedBatched);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, HeadShape> SplitHeads => Auto(ref _splitHeads, NnKernels.SplitHeads);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, HeadShape> MergeHeads => Auto(ref _mergeHeads, NnKernels.MergeHeads);
    public Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> GatherRows => Auto(ref _gatherRows, NnKernels.GatherRows);
    public Action<Index1D, ArrayView<float>, ArrayView<int>, ArrayView<float>, int> ScatterAddRows => Auto(ref _scatterAddRows, NnKernels.ScatterAddRows);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int, int, int> AddRowVectorBackward => Auto(ref _addRowVectorBack, NnKernels.AddRowVectorBackward);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, PatchShape> Patchify => Auto(ref _patchify, NnKernels.Patchify);
    public Action<Index1D, ArrayView<float>, ArrayView<float>, int, ArrayView<float>> ScaleColumns => Auto(ref _scaleColumns, MatrixKernels.ScaleColumns);

    public Action<Index1D, ArrayView<float>, ArrayView<double>, int, int, int> ToDouble => Auto(ref _toDouble, SolverKernels.ToDouble);
    public Action<Index1D, ArrayView<double>, ArrayView<float>, int, int, int> ToFloat => Auto(ref _toFloat, SolverKernels.ToFloat);
    public Action<Index1D, ArrayView<double>, int, double> AddToDiagonal => Auto(ref _addToDiagonal, SolverKernels.AddToDiagonal);
    public Action<Index1D, ArrayView<double>, int, ArrayView<int>> FlagBadPivots => Auto(ref _flagBadPivots, SolverKernels.FlagBadPivots);

    private Action<Index1D, T1, T2> Auto<T1, T2>(ref Action<Index1D, T1, T2>? slot, Action<Index1D, T1, T2> kernel)
        where T1 : struct where T2 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadAutoGroupedStreamKernel(kernel);
        }
    }

    private Action<Index1D, T1, T2, T3> Auto<T1, T2, T3>(ref Action<Index1D, T1, T2, T3>? slot, Action<Index1D, T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadAutoGroupedStreamKernel(kernel);
        }
    }

    private Action<Index1D, T1, T2, T3, T4> Auto<T1, T2, T3, T4>(ref Action<Index1D, T1, T2, T3, T4>? slot, Action<Index1D, T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadAutoGroupedStreamKernel(kernel);
        }
    }

    private Action<Index1D, T1, T2, T3, T4, T5> Auto<T1, T2, T3, T4, T5>(ref Action<Index1D, T1, T2, T3, T4, T5>? slot,
        Action<Index1D, T1, T2, T3, T4, T5> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadAutoGroupedStreamKernel(kernel);
        }
    }

    private Action<Index1D, T1, T2, T3, T4, T5, T6> Auto<T1, T2, T3, T4, T5, T6>(
        ref Action<Index1D, T1, T2, T3, T4, T5, T6>? slot, Action<Index1D, T1, T2, T3, T4, T5, T6> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadAutoGroupedStreamKernel(kernel);
        }
    }

    private Action<Index1D, T1, T2, T3, T4, T5, T6, T7> Auto<T1, T2, T3, T4, T5, T6, T7>(
        ref Action<Index1D, T1, T2, T3, T4, T5, T6, T7>? slot, Action<Index1D, T1, T2, T3, T4, T5, T6, T7> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct where T5 : struct where T6 : struct where T7 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadAutoGroupedStreamKernel(kernel);
        }
    }

    private Action<KernelConfig, T1, T2> Grouped<T1, T2>(ref Action<KernelConfig, T1, T2>? slot, Action<T1, T2> kernel)
        where T1 : struct where T2 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadStreamKernel(kernel);
        }
    }

    private Action<KernelConfig, T1, T2, T3> Grouped<T1, T2, T3>(ref Action<KernelConfig, T1, T2, T3>? slot, Action<T1, T2, T3> kernel)
        where T1 : struct where T2 : struct where T3 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadStreamKernel(kernel);
        }
    }

    private Action<KernelConfig, T1, T2, T3, T4> Grouped<T1, T2, T3, T4>(ref Action<KernelConfig, T1, T2, T3, T4>? slot, Action<T1, T2, T3, T4> kernel)
        where T1 : struct where T2 : struct where T3 : struct where T4 : struct
    {
        lock (_gate)
        {
            accelerator.Bind();
            return slot ??= accelerator.LoadStreamKernel(kernel);
        }
    }
}
