using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Analysis;

/// <summary>Norms and pairwise cosine similarities of task vectors τᵢ = θᵢ − θ₀ over all shared float tensors.</summary>
public sealed record TaskVectorStats(string[] Models, double[] Norms, double[,] Cosine, int TensorsCompared)
{
    /// <summary>
    /// Streams every float tensor the base and all experts share, accumulating the K×K Gram
    /// Σ ⟨τᵢ, τⱼ⟩ in float64; one tensor of each model is in memory at a time.
    /// </summary>
    public static TaskVectorStats Compute(ModelSource baseModel, IReadOnlyList<ModelSource> experts, IBackend backend)
    {
        int k = experts.Count;
        var gram = new double[k, k];
        int compared = 0;
        foreach (var info in baseModel.Tensors)
        {
            if (!info.DType.IsFloat() || info.ElementCount == 0) continue;
            var infos = new TensorInfo[k];
            bool all = true;
            for (int i = 0; i < k && all; i++)
                all = experts[i].TryGet(info.Name, out infos[i]!) && infos[i].Shape.SequenceEqual(info.Shape) && infos[i].DType.IsFloat();
            if (!all) continue;
            compared++;
            int n = checked((int)info.ElementCount);
            var host = GC.AllocateUninitializedArray<float>(n);
            baseModel.ReadFloat32(info.Name, host);
            using var b = backend.Empty(n);
            backend.Upload(host, b);
            var tvs = new Tensor[k];
            try
            {
                for (int i = 0; i < k; i++)
                {
                    experts[i].ReadFloat32(info.Name, host);
                    tvs[i] = backend.Empty(n);
                    backend.Upload(host, tvs[i]);
                    backend.Sub(tvs[i], b, tvs[i]);
                }
                for (int i = 0; i < k; i++)
                    for (int j = i; j < k; j++)
                    {
                        double d = backend.Dot(tvs[i], tvs[j]);
                        gram[i, j] += d;
                        if (i != j) gram[j, i] += d;
                    }
            }
            finally
            {
                foreach (var t in tvs) t?.Dispose();
            }
        }
        var norms = new double[k];
        for (int i = 0; i < k; i++) norms[i] = Math.Sqrt(gram[i, i]);
        var cos = new double[k, k];
        for (int i = 0; i < k; i++)
            for (int j = 0; j < k; j++)
                cos[i, j] = norms[i] > 0 && norms[j] > 0 ? gram[i, j] / (norms[i] * norms[j]) : 0;
        return new TaskVectorStats(experts.Select(e => e.Path).ToArray(), norms, cos, compared);
    }
}
