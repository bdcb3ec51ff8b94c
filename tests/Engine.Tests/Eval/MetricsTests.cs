using TaskMerge.Engine.Eval;

namespace TaskMerge.Engine.Tests.Eval;

/// <summary>GLUE metrics against hand-computed values.</summary>
public sealed class MetricsTests
{
    // TP 3 (0, 3, 5), FP 1 (2), FN 1 (4), TN 1 (1).
    private static readonly int[] Pred = [1, 0, 1, 1, 0, 1];
    private static readonly int[] Label = [1, 0, 0, 1, 1, 1];

    [Fact]
    public void AccuracyF1AndMatthewsOfABinaryExample()
    {
        Assert.Equal(4.0 / 6, Metrics.Accuracy(Pred, Label), 1e-15);
        Assert.Equal(0.75, Metrics.F1(Pred, Label), 1e-15);                        // 2·3 / (2·3 + 1 + 1)
        Assert.Equal(0.25, Metrics.MatthewsCorrelation(Pred, Label), 1e-15);       // (3·1 − 1·1) / √(4·4·2·2)
    }

    [Fact]
    public void MatthewsMulticlassAndDegenerateCases()
    {
        // c = 3, s = 6, pₖ = tₖ = 2: (3·6 − 12) / √((36 − 12)(36 − 12)) = 0.25.
        Assert.Equal(0.25, Metrics.MatthewsCorrelation([0, 1, 2, 0, 1, 2], [0, 1, 2, 1, 2, 0]), 1e-15);
        Assert.Equal(0.0, Metrics.MatthewsCorrelation([1, 1, 1], [0, 1, 1]));
        Assert.Equal(1.0, Metrics.MatthewsCorrelation([0, 1, 1], [0, 1, 1]), 1e-15);
        Assert.Equal(0.0, Metrics.F1([0, 0], [0, 0]));
    }

    [Fact]
    public void PearsonAndSpearmanWithTies()
    {
        double[] x = [1, 2, 3, 4, 5], y = [2, 4, 5, 4, 5];
        Assert.Equal(6 / Math.Sqrt(60), Metrics.Pearson(x, y), 1e-15);            // sxy 6, sxx 10, syy 6
        Assert.Equal([1, 2.5, 4.5, 2.5, 4.5], Metrics.Ranks(y));
        Assert.Equal(7 / Math.Sqrt(90), Metrics.Spearman(x, y), 1e-15);           // ranks: sxy 7, sxx 10, syy 9
        Assert.Equal(1.0, Metrics.Spearman([1, 2, 3], [10, 20, 300]), 1e-15);
        Assert.Equal(0.0, Metrics.Pearson([1, 1, 1], [1, 2, 3]));
    }

    [Fact]
    public void GlueTasksReportTheirMetricAndHeadlineScore()
    {
        double[] p = Pred.Select(v => (double)v).ToArray(), y = Label.Select(v => (double)v).ToArray();
        var (cola, colaScore) = GlueMetrics.Compute("cola", p, y);
        Assert.Equal(0.25, colaScore, 1e-15);
        Assert.Equal(0.25, cola["matthews_corrcoef"], 1e-15);
        var (_, mrpc) = GlueMetrics.Compute("glue-mrpc", p, y);
        Assert.Equal((4.0 / 6 + 0.75) / 2, mrpc, 1e-15);
        var (rte, rteScore) = GlueMetrics.Compute("rte", p, y);
        Assert.Equal(4.0 / 6, rteScore, 1e-15);
        Assert.Single(rte);
        var (sts, stsScore) = GlueMetrics.Compute("STS-B", [1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
        Assert.Equal((6 / Math.Sqrt(60) + 7 / Math.Sqrt(90)) / 2, stsScore, 1e-15);
        Assert.False(sts.ContainsKey("accuracy"));
        Assert.Equal("mnli", TextDataset.GlueTask("MNLI-mm"));
        Assert.Null(TextDataset.GlueTask("sun397"));
    }
}
