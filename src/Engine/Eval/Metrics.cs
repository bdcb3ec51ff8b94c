namespace TaskMerge.Engine.Eval;

/// <summary>Classification and regression metrics as sklearn / scipy define them (GLUE's metrics).</summary>
public static class Metrics
{
    /// <summary>Fraction of equal entries.</summary>
    public static double Accuracy(ReadOnlySpan<int> predictions, ReadOnlySpan<int> labels)
    {
        SameLength(predictions.Length, labels.Length);
        if (labels.Length == 0) return 0;
        int hit = 0;
        for (int i = 0; i < labels.Length; i++) if (predictions[i] == labels[i]) hit++;
        return (double)hit / labels.Length;
    }

    /// <summary>Binary F1 of class <paramref name="positive"/> (sklearn <c>f1_score</c>): 2·TP/(2·TP + FP + FN), 0 when undefined.</summary>
    public static double F1(ReadOnlySpan<int> predictions, ReadOnlySpan<int> labels, int positive = 1)
    {
        SameLength(predictions.Length, labels.Length);
        long tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < labels.Length; i++)
        {
            bool p = predictions[i] == positive, t = labels[i] == positive;
            if (p && t) tp++;
            else if (p) fp++;
            else if (t) fn++;
        }
        return tp == 0 ? 0 : 2.0 * tp / (2.0 * tp + fp + fn);
    }

    /// <summary>
    /// Matthews correlation (sklearn <c>matthews_corrcoef</c>, multiclass form):
    /// (c·s − Σ pₖtₖ) / √((s² − Σ pₖ²)(s² − Σ tₖ²)) over the confusion matrix; 0 when undefined.
    /// </summary>
    public static double MatthewsCorrelation(ReadOnlySpan<int> predictions, ReadOnlySpan<int> labels)
    {
        SameLength(predictions.Length, labels.Length);
        var t = new Dictionary<int, long>();
        var p = new Dictionary<int, long>();
        long correct = 0, s = labels.Length;
        for (int i = 0; i < labels.Length; i++)
        {
            t[labels[i]] = t.GetValueOrDefault(labels[i]) + 1;
            p[predictions[i]] = p.GetValueOrDefault(predictions[i]) + 1;
            if (labels[i] == predictions[i]) correct++;
        }
        double pt = 0, pp = 0, tt = 0;
        foreach (var (k, tk) in t) pt += (double)tk * p.GetValueOrDefault(k);
        foreach (var pk in p.Values) pp += (double)pk * pk;
        foreach (var tk in t.Values) tt += (double)tk * tk;
        double den = Math.Sqrt(((double)s * s - pp) * ((double)s * s - tt));
        return den == 0 ? 0 : ((double)correct * s - pt) / den;
    }

    /// <summary>Pearson correlation (scipy <c>pearsonr</c>); 0 when either side is constant.</summary>
    public static double Pearson(ReadOnlySpan<double> x, ReadOnlySpan<double> y)
    {
        SameLength(x.Length, y.Length);
        int n = x.Length;
        if (n == 0) return 0;
        double mx = 0, my = 0;
        for (int i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
        mx /= n;
        my /= n;
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < n; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy;
            sxx += dx * dx;
            syy += dy * dy;
        }
        return sxx == 0 || syy == 0 ? 0 : sxy / Math.Sqrt(sxx * syy);
    }

    /// <summary>Spearman rank correlation (scipy <c>spearmanr</c>): Pearson of ranks, ties given their average rank.</summary>
    public static double Spearman(ReadOnlySpan<double> x, ReadOnlySpan<double> y) => Pearson(Ranks(x), Ranks(y));

    /// <summary>1-based ranks with ties averaged (scipy <c>rankdata(method="average")</c>).</summary>
    public static double[] Ranks(ReadOnlySpan<double> v)
    {
        var order = Enumerable.Range(0, v.Length).ToArray();
        var copy = v.ToArray();
        Array.Sort(order, (a, b) => copy[a].CompareTo(copy[b]));
        var ranks = new double[v.Length];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && copy[order[j + 1]] == copy[order[i]]) j++;
            double r = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) ranks[order[k]] = r;
            i = j + 1;
        }
        return ranks;
    }

    private static void SameLength(int a, int b)
    {
        if (a != b) throw new ArgumentException($"{a} predictions for {b} labels");
    }
}
