using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Tests.Methods;

/// <summary>
/// Independent float64 re-statement of mergekit's generalized task arithmetic, written from its
/// documented semantics (not from the engine code). τ is formed in float32, as mergekit does in
/// the compute dtype; everything after that is float64.
/// </summary>
internal static class GtaReference
{
    public static double[] Merge(float[] baseV, float[][] experts, double[] weights, double[] densities,
        string sparsify, bool consensus, bool normalize, bool rescale, double lambda, Func<int, int, bool>? randomKeep = null,
        double[]? gammas = null)
    {
        int n = baseV.Length, k = experts.Length;
        var weighted = new double[k][];
        for (int e = 0; e < k; e++)
        {
            var tv = new double[n];
            for (int i = 0; i < n; i++) tv[i] = (float)(experts[e][i] - baseV[i]);
            if (densities[e] < 1 && sparsify != "none")
            {
                double before = tv.Sum(Math.Abs);
                var keep = new bool[n];
                if (sparsify == "magnitude")
                {
                    int kk = (int)(densities[e] * n);
                    var order = Enumerable.Range(0, n).OrderByDescending(i => Math.Abs(tv[i])).ThenBy(i => i).Take(kk);
                    foreach (int i in order) keep[i] = true;
                }
                else if (sparsify == "magnitude_outliers")
                {
                    int target = (int)(densities[e] * n), nTop = (int)(gammas![e] * n), nBot = n - target - nTop;
                    if (nBot < 0) { nTop += nBot; nBot = 0; }
                    var ascending = Enumerable.Range(0, n).OrderBy(i => Math.Abs(tv[i])).ThenByDescending(i => i).ToArray();
                    for (int j = nBot; j < n - nTop; j++) keep[ascending[j]] = true;
                }
                else
                {
                    for (int i = 0; i < n; i++) keep[i] = randomKeep!(e, i);
                }
                for (int i = 0; i < n; i++) if (!keep[i]) tv[i] = 0;
                double after = tv.Sum(Math.Abs);
                if (rescale && before >= 1e-7 && after >= 1e-7)
                    for (int i = 0; i < n; i++) tv[i] *= before / after;
            }
            weighted[e] = tv.Select(v => v * weights[e]).ToArray();
        }
        var result = new double[n];
        for (int i = 0; i < n; i++)
        {
            double mixed = 0, divisor = 0;
            if (consensus)
            {
                double total = 0;
                for (int e = 0; e < k; e++) total += weighted[e][i];
                int majority = total >= 0 ? 1 : -1;
                for (int e = 0; e < k; e++)
                    if (Math.Sign(weighted[e][i]) == majority) { mixed += weighted[e][i]; divisor += weights[e]; }
                if (divisor == 0) divisor = 1;
            }
            else
            {
                for (int e = 0; e < k; e++) { mixed += weighted[e][i]; divisor += weights[e]; }
                if (Math.Abs(divisor) < 1e-8) divisor = 1;
            }
            if (normalize) mixed /= divisor;
            result[i] = baseV[i] + lambda * mixed;
        }
        return result;
    }

    public static double[] Linear(float[][] models, double[] weights, bool normalize)
    {
        int n = models[0].Length;
        var r = new double[n];
        for (int i = 0; i < n; i++)
        {
            double s = 0;
            for (int e = 0; e < models.Length; e++) s += weights[e] * models[e][i];
            r[i] = normalize ? s / weights.Sum() : s;
        }
        return r;
    }

    public static bool DareKeep(ulong seed, string tensor, int model, int index, double density) =>
        CounterRng.Uniform(seed, CounterRng.StreamId(tensor, model), (ulong)index) < (float)density;
}
