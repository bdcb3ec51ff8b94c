namespace TaskMerge.Engine.Methods;

/// <summary>
/// The AWD iteration shared by both solvers. All blocks are evaluated from G_τ and δ's statistics
/// (p = Tδ, s = ‖δ‖² per block) in float64; a solver-specific step then updates δ and returns the
/// statistics of the new δ.
/// </summary>
internal static class AwdLoop
{
    /// <summary>Updates δ at 1-based iteration <c>it</c> given β (blocks×K) and γ (blocks), and overwrites p and s with the new δ's statistics.</summary>
    public delegate void Step(int it, double[] beta, double[] gamma, double[] p, double[] s);

    /// <summary>
    /// Runs <see cref="AwdSettings.Iterations"/> steps from δ = 0 and summarises the result;
    /// <paramref name="scale"/> is each block's weight in the mean over blocks (1/rows of the tensor
    /// at row granularity, also when the rows are solved in separate runs).
    /// </summary>
    public static AwdSummary Run(double[] gramTau, int blocks, int k, double scale, AwdSettings settings, Step step)
    {
        var summary = new AwdSummary(k) { Alpha = settings.Alpha, Iterations = settings.Iterations };
        var p = new double[blocks * k];
        var s = new double[blocks];
        var beta = new double[blocks * k];
        var gamma = new double[blocks];
        summary.OrthBefore = Evaluate(gramTau, p, s, blocks, k, scale, settings.Alpha, beta, gamma, summary.CosineBefore);
        for (int it = 1; it <= settings.Iterations; it++)
        {
            step(it, beta, gamma, p, s);
            if (it < settings.Iterations) Evaluate(gramTau, p, s, blocks, k, scale, settings.Alpha, beta, gamma, []);
        }
        summary.OrthAfter = Evaluate(gramTau, p, s, blocks, k, scale, settings.Alpha, beta, gamma, summary.CosineAfter);
        double reg = 0, sq = 0;
        foreach (double x in s)
        {
            reg += Math.Sqrt(Math.Max(x, 0));
            sq += Math.Max(x, 0);
        }
        summary.RegularizerAfter = reg;
        summary.DeltaNorm = Math.Sqrt(sq);
        return summary;
    }

    /// <summary>Fills β and γ of every block; returns Σ_b scale·L_O^b; adds Σ_b scale·cosine^b into <paramref name="cosine"/> unless empty.</summary>
    public static double Evaluate(double[] gramTau, double[] p, double[] s, int blocks, int k, double scale, double alpha,
        double[] beta, double[] gamma, Span<double> cosine)
    {
        double orth = 0;
        var blockCosine = cosine.IsEmpty ? [] : new double[k * k];
        for (int b = 0; b < blocks; b++)
        {
            Array.Clear(blockCosine);
            var betaB = beta.AsSpan(b * k, k);
            orth += AwdObjective.Evaluate(gramTau.AsSpan(b * k * k, k * k), p.AsSpan(b * k, k), s[b], k, scale, betaB, blockCosine);
            gamma[b] = AwdObjective.DeltaCoefficient(betaB, Math.Sqrt(Math.Max(s[b], 0)), alpha);
            for (int i = 0; i < blockCosine.Length; i++) cosine[i] += blockCosine[i] * scale;
        }
        return orth * scale;
    }
}
