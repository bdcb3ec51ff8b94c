namespace TaskMerge.Engine.Tests.Methods;

/// <summary>
/// Independent float64 re-statement of the official WUDI loop (nathanielyvo/WUDI-Merging,
/// vit/wudi_main.py), written from its code and not from the engine: per step it forms
/// disturbing = τ_m − τᵢ and inner = disturbing·τᵢᵀ [out,out], sums inner²/‖τᵢ‖², backpropagates
/// through those two products by hand, and applies torch.optim.Adam's rule in float64.
/// Matrices are row-major [rows, cols] arrays.
/// </summary>
internal static class WudiReference
{
    /// <summary>‖τ‖²_F.</summary>
    public static double SquaredNorm(double[] t) => t.Sum(x => x * x);

    /// <summary>The official loss Σᵢ ‖(m − τᵢ)τᵢᵀ‖²_F / ‖τᵢ‖²_F by brute force.</summary>
    public static double Loss(double[] m, double[][] taus, int rows, int cols) => LossAndGradient(m, taus, rows, cols, null);

    /// <summary>The official loss and its gradient by reverse-mode differentiation of the two products.</summary>
    public static double LossAndGradient(double[] m, double[][] taus, int rows, int cols, double[]? grad)
    {
        if (grad is not null) Array.Clear(grad);
        double loss = 0;
        var disturbing = new double[rows * cols];
        var inner = new double[rows * rows];
        foreach (var tau in taus)
        {
            double n = SquaredNorm(tau);
            for (int i = 0; i < disturbing.Length; i++) disturbing[i] = m[i] - tau[i];
            for (int r1 = 0; r1 < rows; r1++)
                for (int r2 = 0; r2 < rows; r2++)
                {
                    double s = 0;
                    for (int c = 0; c < cols; c++) s += disturbing[r1 * cols + c] * tau[r2 * cols + c];
                    inner[r1 * rows + r2] = s;
                    loss += s * s / n;
                }
            if (grad is null) continue;
            // d loss / d inner = 2·inner/n; d inner / d disturbing contracts with τ over r2; d disturbing / d m = I.
            for (int r1 = 0; r1 < rows; r1++)
                for (int c = 0; c < cols; c++)
                {
                    double s = 0;
                    for (int r2 = 0; r2 < rows; r2++) s += inner[r1 * rows + r2] * tau[r2 * cols + c];
                    grad[r1 * cols + c] += 2 * s / n;
                }
        }
        return loss;
    }

    /// <summary>
    /// The official loop: m = Σ τᵢ, then <paramref name="iterations"/> torch.optim.Adam steps
    /// (betas 0.9/0.999, eps 1e-8, no weight decay) on the loss. <paramref name="losses"/> receives the
    /// loss before every step, as the loop computes it.
    /// </summary>
    public static double[] OfficialLoop(double[][] taus, int rows, int cols, int iterations, double lr, List<double>? losses = null)
    {
        var m = new double[rows * cols];
        foreach (var t in taus) for (int i = 0; i < m.Length; i++) m[i] += t[i];
        var adam = new TorchAdam(m.Length, lr);
        var g = new double[m.Length];
        for (int step = 1; step <= iterations; step++)
        {
            double loss = LossAndGradient(m, taus, rows, cols, g);
            losses?.Add(loss);
            adam.Step(m, g);
        }
        return m;
    }

    /// <summary>The closed form τ = D(C + ρI)⁻¹ with C = Σ τᵢᵀτᵢ/nᵢ, D = Σ τᵢτᵢᵀτᵢ/nᵢ, solved by Gaussian elimination.</summary>
    public static double[] ClosedForm(double[][] taus, int rows, int cols, double rho)
    {
        var c = new double[cols * cols];
        var d = new double[rows * cols];
        foreach (var tau in taus)
        {
            double n = SquaredNorm(tau);
            var gram = new double[cols * cols];
            for (int i = 0; i < cols; i++)
                for (int j = 0; j < cols; j++)
                {
                    double s = 0;
                    for (int r = 0; r < rows; r++) s += tau[r * cols + i] * tau[r * cols + j];
                    gram[i * cols + j] = s / n;
                }
            for (int i = 0; i < c.Length; i++) c[i] += gram[i];
            for (int r = 0; r < rows; r++)
                for (int j = 0; j < cols; j++)
                {
                    double s = 0;
                    for (int k = 0; k < cols; k++) s += tau[r * cols + k] * gram[k * cols + j];
                    d[r * cols + j] += s;
                }
        }
        for (int i = 0; i < cols; i++) c[i * cols + i] += rho;
        // τ(C+ρI) = D ⇔ (C+ρI)τᵀ = Dᵀ (C symmetric): solve for each row of D.
        var result = new double[rows * cols];
        for (int r = 0; r < rows; r++)
        {
            var x = Solve((double[])c.Clone(), d.AsSpan(r * cols, cols).ToArray(), cols);
            x.CopyTo(result, r * cols);
        }
        return result;
    }

    /// <summary>Solves A x = b by Gaussian elimination with partial pivoting (A is destroyed).</summary>
    public static double[] Solve(double[] a, double[] b, int n)
    {
        for (int k = 0; k < n; k++)
        {
            int p = k;
            for (int i = k + 1; i < n; i++) if (Math.Abs(a[i * n + k]) > Math.Abs(a[p * n + k])) p = i;
            if (p != k)
            {
                for (int j = 0; j < n; j++) (a[k * n + j], a[p * n + j]) = (a[p * n + j], a[k * n + j]);
                (b[k], b[p]) = (b[p], b[k]);
            }
            for (int i = k + 1; i < n; i++)
            {
                double f = a[i * n + k] / a[k * n + k];
                for (int j = k; j < n; j++) a[i * n + j] -= f * a[k * n + j];
                b[i] -= f * b[k];
            }
        }
        var x = new double[n];
        for (int i = n - 1; i >= 0; i--)
        {
            double s = b[i];
            for (int j = i + 1; j < n; j++) s -= a[i * n + j] * x[j];
            x[i] = s / a[i * n + i];
        }
        return x;
    }
}

/// <summary>
/// torch.optim.Adam / AdamW (single-tensor path, amsgrad off) restated in float64 from torch's
/// source: grad += wd·p (Adam) or p *= 1 − lr·wd (AdamW); exp_avg.lerp_(grad, 1−β₁);
/// exp_avg_sq.mul_(β₂).addcmul_(grad, grad, 1−β₂); denom = sqrt(exp_avg_sq)/sqrt(1−β₂ᵗ) + eps;
/// p.addcdiv_(exp_avg, denom, −lr/(1−β₁ᵗ)).
/// </summary>
internal sealed class TorchAdam(int n, double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weightDecay = 0, bool decoupled = false)
{
    private int _step;

    public double[] ExpAvg { get; } = new double[n];

    public double[] ExpAvgSq { get; } = new double[n];

    public void Step(double[] p, double[] grad)
    {
        _step++;
        double bc1 = 1 - Math.Pow(beta1, _step), bc2 = 1 - Math.Pow(beta2, _step);
        for (int i = 0; i < p.Length; i++)
        {
            double g = grad[i];
            if (weightDecay != 0)
            {
                if (decoupled) p[i] *= 1 - lr * weightDecay;
                else g += weightDecay * p[i];
            }
            ExpAvg[i] += (1 - beta1) * (g - ExpAvg[i]);
            ExpAvgSq[i] = ExpAvgSq[i] * beta2 + (1 - beta2) * g * g;
            double denom = Math.Sqrt(ExpAvgSq[i]) / Math.Sqrt(bc2) + eps;
            p[i] -= lr / bc1 * ExpAvg[i] / denom;
        }
    }
}
