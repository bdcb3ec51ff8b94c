namespace TaskMerge.Engine.Methods;

/// <summary>Loss, ‖δ‖ and cosines of an AWD solve before and after optimisation (for <c>merge_report.json</c>).</summary>
internal sealed class AwdSummary
{
    /// <summary>Creates an empty summary for <paramref name="k"/> tasks.</summary>
    public AwdSummary(int k)
    {
        K = k;
        CosineBefore = new double[k * k];
        CosineAfter = new double[k * k];
    }

    /// <summary>Number of tasks.</summary>
    public int K { get; }

    /// <summary>Regulariser weight α.</summary>
    public double Alpha { get; set; }

    /// <summary>Updates made.</summary>
    public int Iterations { get; set; }

    /// <summary>L_O at δ = 0.</summary>
    public double OrthBefore { get; set; }

    /// <summary>L_O at the final δ.</summary>
    public double OrthAfter { get; set; }

    /// <summary>The regulariser at the final δ: ‖δ‖₂, or Σᵣ‖δᵣ‖₂ at row granularity.</summary>
    public double RegularizerAfter { get; set; }

    /// <summary>‖δ‖₂ over every element (Frobenius norm).</summary>
    public double DeltaNorm { get; set; }

    /// <summary>Mean over blocks of the cosine matrix of the τᵢ, K×K row-major.</summary>
    public double[] CosineBefore { get; }

    /// <summary>Mean over blocks of the cosine matrix of the τ̂ᵢ = τᵢ − δ, K×K row-major.</summary>
    public double[] CosineAfter { get; }

    /// <summary>Total loss at δ = 0 (the regulariser is 0 there).</summary>
    public double LossBefore => OrthBefore;

    /// <summary>Total loss L_O + α·L_R at the final δ.</summary>
    public double LossAfter => OrthAfter + Alpha * RegularizerAfter;

    /// <summary>Adds the summary of other blocks solved separately (the block weights are already in both).</summary>
    public void Add(AwdSummary other)
    {
        OrthBefore += other.OrthBefore;
        OrthAfter += other.OrthAfter;
        RegularizerAfter += other.RegularizerAfter;
        DeltaNorm = Math.Sqrt(DeltaNorm * DeltaNorm + other.DeltaNorm * other.DeltaNorm);
        for (int i = 0; i < CosineBefore.Length; i++)
        {
            CosineBefore[i] += other.CosineBefore[i];
            CosineAfter[i] += other.CosineAfter[i];
        }
    }

    /// <summary>Writes the summary as report entries.</summary>
    public void WriteTo(IDictionary<string, object> d)
    {
        d["iterations"] = Iterations;
        d["loss_orth_before"] = OrthBefore;
        d["loss_orth_after"] = OrthAfter;
        d["loss_before"] = LossBefore;
        d["loss_after"] = LossAfter;
        d["regularizer_after"] = RegularizerAfter;
        d["delta_norm"] = DeltaNorm;
        d["cosine_before"] = Matrix(CosineBefore);
        d["cosine_after"] = Matrix(CosineAfter);
    }

    private double[][] Matrix(double[] m) => Enumerable.Range(0, K).Select(i => m.AsSpan(i * K, K).ToArray()).ToArray();
}
