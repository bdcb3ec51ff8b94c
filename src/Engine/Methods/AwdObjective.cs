namespace TaskMerge.Engine.Methods;

/// <summary>
/// The AWD objective of one block (the whole model, one tensor or one row) as a function of the
/// K×K Gram G of vᵢ = τᵢ − δ, with its closed-form gradient (methods/awd.md §2):
/// L_O = 1/(K(K−1))·Σ_{i≠j} |cᵢⱼ|, cᵢⱼ = Gᵢⱼ / max(nᵢnⱼ, ε) (torch's cosine_similarity, ε = 1e-8),
/// ∇_δ L_O = −Σₖ βₖ vₖ with βₖ = 2/(K(K−1))·Σ_{j≠k} [sᵢⱼ/Dₖⱼ − 1(nₖnⱼ &gt; ε)·|cₖⱼ|/nₖ²],
/// Dₖⱼ = max(nₖnⱼ, ε), sign(0) = 0. Everything but the final combination needs only G, and
/// G = G_τ − p1ᵀ − 1pᵀ + s11ᵀ with p = Tδ, s = δᵀδ.
/// </summary>
internal static class AwdObjective
{
    /// <summary>Lower bound of the cosine denominator nᵢnⱼ, as torch's <c>F.cosine_similarity</c>.</summary>
    public const double CosineEps = 1e-8;

    /// <summary>
    /// Evaluates one block from the Gram of the task vectors and δ's statistics: returns L_O of the
    /// block; writes <paramref name="scale"/>·β into <paramref name="beta"/> and, when
    /// <paramref name="cosine"/> is not empty, adds the K×K cosine matrix into it.
    /// </summary>
    /// <param name="gramTau">G_τ = TTᵀ of the block, K×K row-major.</param>
    /// <param name="p">Tδ of the block.</param>
    /// <param name="s">‖δ‖² of the block.</param>
    /// <param name="k">Number of tasks.</param>
    /// <param name="scale">Factor on β (1/rows at row granularity, the mean over rows).</param>
    /// <param name="beta">Receives the K gradient coefficients.</param>
    /// <param name="cosine">Empty, or a K×K accumulator for the cosine matrix.</param>
    public static double Evaluate(ReadOnlySpan<double> gramTau, ReadOnlySpan<double> p, double s, int k, double scale,
        Span<double> beta, Span<double> cosine)
    {
        beta[..k].Clear();
        if (k < 2) return 0;
        Span<double> n = k <= 64 ? stackalloc double[k] : new double[k];
        for (int i = 0; i < k; i++)
        {
            double gii = Gram(gramTau, p, s, k, i, i);
            n[i] = Math.Sqrt(Math.Max(gii, 0));
            if (!cosine.IsEmpty) cosine[i * k + i] += gii / Math.Max(gii, CosineEps);
        }
        double pairWeight = scale * 2.0 / (k * (k - 1.0)), sumAbs = 0;
        for (int i = 0; i < k; i++)
            for (int j = i + 1; j < k; j++)
            {
                double nn = n[i] * n[j];
                bool regular = nn > CosineEps;
                double denominator = regular ? nn : CosineEps;
                double c = Gram(gramTau, p, s, k, i, j) / denominator, abs = Math.Abs(c), cross = (double.IsNaN(c) ? c : Math.Sign(c)) / denominator; // NaN propagates, as torch.sign (--allow-nonfinite)
                sumAbs += abs;
                beta[i] += cross;
                beta[j] += cross;
                if (regular)
                {
                    beta[i] -= abs / (n[i] * n[i]);
                    beta[j] -= abs / (n[j] * n[j]);
                }
                if (cosine.IsEmpty) continue;
                cosine[i * k + j] += c;
                cosine[j * k + i] += c;
            }
        for (int i = 0; i < k; i++) beta[i] *= pairWeight;
        return 2 * sumAbs / (k * (k - 1.0));
    }

    /// <summary>γ = Σₖβₖ + α/‖δ‖ (0 at δ = 0): ∇_δ L = −Σₖ βₖτₖ + γδ.</summary>
    public static double DeltaCoefficient(ReadOnlySpan<double> beta, double deltaNorm, double alpha)
    {
        double sum = 0;
        foreach (double b in beta) sum += b;
        return sum + (deltaNorm > 0 ? alpha / deltaNorm : 0);
    }

    private static double Gram(ReadOnlySpan<double> gramTau, ReadOnlySpan<double> p, double s, int k, int i, int j) =>
        gramTau[i * k + j] - p[i] - p[j] + s;
}
