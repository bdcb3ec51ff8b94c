using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Tensors.Cpu;
using TaskMerge.Engine.Tests.Models;
using TaskMerge.Engine.Training;

namespace TaskMerge.Engine.Tests.Training;

/// <summary>
/// The CLIP vision backward pass on the CPU backend against float64 central finite differences:
/// each backward op of <see cref="IBackend"/> it is built from (float64 re-implementations of the
/// forwards, differenced with step 1e-6; the linear adjoints against float64 sums), then every
/// weight tensor of a tiny random tower trained through <see cref="ClipVisionTraining"/> (samples
/// per tensor, differencing <see cref="Float64Reference.Clip"/> with the float32 weight perturbed by
/// ±1e-3; the step used is the exact float difference).
/// </summary>
public sealed class ClipVisionBackwardTests
{
    private readonly CpuBackend _be = new(2);

    private static double[] D(float[] a) => [.. a.Select(v => (double)v)];

    private static float[] R(Random rng, int n, double scale = 1, double offset = 0) => TinyModels.Random(rng, n, scale, offset);

    private Tensor T(float[] values, params int[] shape) => _be.FromHost((float[])values.Clone(), shape);

    /// <summary>Central differences of f at x (float64), step h.</summary>
    private static double[] Fd(Func<double[], double> f, double[] x, double h = 1e-6)
    {
        var g = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            double o = x[i];
            x[i] = o + h;
            double up = f(x);
            x[i] = o - h;
            double down = f(x);
            x[i] = o;
            g[i] = (up - down) / (2 * h);
        }
        return g;
    }

    private static void Close(float[] actual, double[] expected, double rel = 1e-4, [System.Runtime.CompilerServices.CallerArgumentExpression(nameof(actual))] string what = "")
    {
        double err = Float64Reference.RelErr(actual, expected);
        TestContext.Current.TestOutputHelper?.WriteLine($"{what}: relative error {err:E2}");
        Assert.InRange(err, 0, rel);
    }

    private static double Dot(double[] a, float[] b)
    {
        double s = 0;
        for (int i = 0; i < a.Length; i++) s += a[i] * b[i];
        return s;
    }

    private static double[] LayerNorm64(double[] x, int n, double[] g, double[] b, double eps)
    {
        var y = new double[x.Length];
        for (int r = 0; r < x.Length / n; r++)
        {
            double m = 0, v = 0;
            for (int c = 0; c < n; c++) m += x[r * n + c];
            m /= n;
            for (int c = 0; c < n; c++) v += (x[r * n + c] - m) * (x[r * n + c] - m);
            v /= n;
            for (int c = 0; c < n; c++) y[r * n + c] = (x[r * n + c] - m) / Math.Sqrt(v + eps) * g[c] + b[c];
        }
        return y;
    }

    [Fact]
    public void LayerNormBackwardMatchesFiniteDifferencesAndAccumulates()
    {
        var rng = new Random(1);
        const int rows = 5, n = 12;
        const float eps = 1e-5f;
        float[] x = R(rng, rows * n, 2, 0.5), g = R(rng, n, 0.3, 1), b = R(rng, n, 0.2), dy = R(rng, rows * n);
        float[] dx0 = R(rng, rows * n), dg0 = R(rng, n), db0 = R(rng, n);
        using var xt = T(x, rows, n);
        using var gt = T(g, n);
        using var dyt = T(dy, rows, n);
        using var dxt = T(dx0, rows, n);
        using var dgt = T(dg0, n);
        using var dbt = T(db0, n);
        _be.LayerNormBackward(dyt, xt, gt, eps, dxt, dgt, dbt);
        double[] xd = D(x), gd = D(g), bd = D(b), dyd = D(dy);
        double Loss() => LayerNorm64(xd, n, gd, bd, eps).Zip(dyd, (p, q) => p * q).Sum();
        static double[] Plus(double[] a, float[] start) => [.. a.Select((v, i) => v + start[i])];
        Close(dxt.ToArray(), Plus(Fd(v => Loss(), xd), dx0));
        Close(dgt.ToArray(), Plus(Fd(v => Loss(), gd), dg0));
        Close(dbt.ToArray(), Plus(Fd(v => Loss(), bd), db0));
    }

    [Theory]
    [InlineData(Activation.QuickGelu)]
    [InlineData(Activation.Gelu)]
    public void ActivationBackwardMatchesFiniteDifferences(Activation act)
    {
        var rng = new Random(2);
        float[] x = [.. R(rng, 200, 2.5), 0f, -8f, 8f], dy = R(rng, x.Length);
        string name = act == Activation.Gelu ? "gelu" : "quick_gelu";
        using var xt = T(x, x.Length);
        using var dyt = T(dy, x.Length);
        using var dxt = _be.Empty(x.Length);
        Activations.Backward(_be, act, xt, dyt, dxt);
        var expected = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            const double h = 1e-6;
            expected[i] = dy[i] * (Float64Reference.Act(name, x[i] + h) - Float64Reference.Act(name, x[i] - h)) / (2 * h);
        }
        Close(dxt.ToArray(), expected);
    }

    [Fact]
    public void SoftmaxRowsBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(3);
        const int rows = 4, n = 9;
        const float scale = 0.35f;
        float[] x = R(rng, rows * n, 3), dy = R(rng, rows * n);
        static double[] Softmax64(double[] x, int n, double scale)
        {
            var y = new double[x.Length];
            for (int r = 0; r < x.Length / n; r++)
            {
                var row = x.AsSpan(r * n, n).ToArray();
                double max = row.Max() * scale, sum = 0;
                var e = row.Select(v => Math.Exp(v * scale - max)).ToArray();
                foreach (double v in e) sum += v;
                for (int c = 0; c < n; c++) y[r * n + c] = e[c] / sum;
            }
            return y;
        }
        using var yt = T(x, rows, n);
        _be.SoftmaxRows(yt, yt, scale);
        using var dt = T(dy, rows, n);
        _be.SoftmaxRowsBackward(yt, dt, dt, scale);
        var xd = D(x);
        Close(dt.ToArray(), Fd(v => Dot(Softmax64(v, n, scale), dy), xd));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(5)]
    public void AddRowVectorBackwardIsTheAdjointOfAddRowVectorAndAccumulates(int period)
    {
        var rng = new Random(4 + period);
        const int rows = 15, n = 7;
        float[] dy = R(rng, rows * n), start = R(rng, period * n);
        using var dyt = T(dy, rows, n);
        using var drt = period == 1 ? T(start, n) : T(start, period, n);
        _be.AddRowVectorBackward(dyt, drt);
        // L(v) = Σ dy ⊙ AddRowVector(x, v) is linear in v: ∂L/∂v[q, c] = Σ_{r mod p = q} dy[r, c].
        var expected = new double[period * n];
        for (int q = 0; q < period; q++)
            for (int c = 0; c < n; c++)
            {
                double s = start[q * n + c];
                for (int r = q; r < rows; r += period) s += dy[r * n + c];
                expected[q * n + c] = s;
            }
        Close(drt.ToArray(), expected, 1e-6);
    }

    [Fact]
    public void ScatterAddRowsIsTheAdjointOfGatherRowsAndRejectsRepeats()
    {
        var rng = new Random(6);
        const int tableRows = 9, n = 5;
        int[] rows = [7, 0, 4];
        float[] src = R(rng, rows.Length * n), table = R(rng, tableRows * n);
        using var st = T(src, rows.Length, n);
        using var tt = T(table, tableRows, n);
        _be.ScatterAddRows(st, rows, tt);
        var expected = D(table);
        for (int i = 0; i < rows.Length; i++)
            for (int c = 0; c < n; c++) expected[rows[i] * n + c] += src[i * n + c];
        Close(tt.ToArray(), expected, 1e-7);
        Assert.Throws<ArgumentException>(() => _be.ScatterAddRows(st, [1, 2, 1], tt));
        Assert.Throws<ArgumentOutOfRangeException>(() => _be.ScatterAddRows(st, [1, 2, tableRows], tt));
    }

    internal static ClipVisionConfig Config(TinyModels.ClipShape s) => new()
    {
        HiddenSize = s.Hidden, IntermediateSize = s.Intermediate, NumHiddenLayers = s.Layers, NumAttentionHeads = s.Heads,
        NumChannels = s.Channels, ImageSize = s.Image, PatchSize = s.Patch, LayerNormEps = s.Eps, ProjectionDim = s.Projection,
        HiddenAct = s.Act == "gelu" ? Activation.Gelu : Activation.QuickGelu,
    };

    internal static Dictionary<string, float[]> Dict(Weights w) => w.Names.ToDictionary(x => x, x => w[x]);

    [Theory]
    [InlineData("quick_gelu")]
    [InlineData("gelu")]
    public void WholeTowerWeightGradientsMatchFloat64FiniteDifferences(string act)
    {
        var s = new TinyModels.ClipShape(Act: act);
        var weights = TinyModels.ClipHf(s, seed: 11 + act.Length);
        const int batch = 2;
        var pixels = ClipVisionParityTests.Pixels(batch, s, 5);
        var config = Config(s);
        var shapes = ClipVisionTraining.ParameterShapes(config);
        Assert.Equal(weights.Names.OrderBy(x => x, StringComparer.Ordinal), shapes.Select(x => x.Name).OrderBy(x => x, StringComparer.Ordinal));
        using var model = new ClipVisionTraining(_be, config, Dict(weights));

        using var x = T(pixels, batch, s.Channels, s.Image, s.Image);
        var activations = model.Forward(x);
        var reference = Float64Reference.Clip(weights, s, pixels, batch);
        Close(activations.Embeds.ToArray(), reference.Embeds!);

        var rng = new Random(17);
        var r = R(rng, batch * s.Projection);
        model.ZeroGradients();
        using (var rt = T(r, batch, s.Projection)) model.Backward(activations, rt);
        var grads = model.Gradients.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        double Loss() => Dot(Float64Reference.Clip(weights, s, pixels, batch).Embeds!, r);

        foreach (var (name, _) in shapes)
        {
            float[] p = weights[name], g = grads[name];
            var idx = new HashSet<int> { 0, p.Length - 1 };
            while (idx.Count < Math.Min(8, p.Length)) idx.Add(rng.Next(p.Length));
            double worst = 0, scale = g.Max(Math.Abs);
            foreach (int i in idx)
            {
                float o = p[i];
                float up = (float)(o + 1e-3), down = (float)(o - 1e-3);
                p[i] = up;
                double lu = Loss();
                p[i] = down;
                double ld = Loss();
                p[i] = o;
                double fd = (lu - ld) / ((double)up - down);
                worst = Math.Max(worst, Math.Abs(fd - g[i]));
            }
            TestContext.Current.TestOutputHelper?.WriteLine($"{name}: max |grad − fd| {worst:E2}, max |grad| {scale:E2}");
            if (name.EndsWith("k_proj.bias", StringComparison.Ordinal))
            {
                // Analytically zero: q·(k + b) adds the same q·b to every score of a softmax row.
                Assert.InRange(scale, 0, 1e-5);
                continue;
            }
            Assert.True(scale > 1e-3, $"{name}: gradient is (nearly) all zero: {scale:E2}");
            Assert.True(worst <= 1e-4 * scale + 1e-6, $"{name}: max |grad − fd| {worst:E3} vs max |grad| {scale:E3}");
        }
    }

    [Fact]
    public void BackwardAccumulatesOverMicroBatches()
    {
        var s = new TinyModels.ClipShape(Layers: 1);
        var weights = TinyModels.ClipHf(s, seed: 3);
        using var model = new ClipVisionTraining(_be, Config(s), Dict(weights));
        var pixels = ClipVisionParityTests.Pixels(2, s, 9);
        var r = R(new Random(8), 2 * s.Projection);
        void Step(float[] px, float[] dz, int batch)
        {
            using var x = T(px, batch, s.Channels, s.Image, s.Image);
            using var d = T(dz, batch, s.Projection);
            model.Backward(model.Forward(x), d);
        }
        model.ZeroGradients();
        Step(pixels, r, 2);
        var whole = model.Gradients.ToDictionary(kv => kv.Key, kv => kv.Value.ToArray());
        model.ZeroGradients();
        int half = pixels.Length / 2;
        Step(pixels[..half], r[..s.Projection], 1);
        Step(pixels[half..], r[s.Projection..], 1);
        foreach (var (name, g) in whole)
        {
            // Absolute against the tensor's scale: k_proj.bias has an analytically zero gradient
            // (softmax ignores a constant added to every key score), so it holds float noise only.
            double worst = g.Zip(model.Gradients[name].ToArray(), (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst <= 1e-5 * g.Max(Math.Abs) + 1e-6, $"{name}: micro-batch sum differs by {worst:E2}");
        }
    }

    [Fact]
    public void BackwardRejectsActivationsOfAnotherForward()
    {
        var s = new TinyModels.ClipShape(Layers: 1);
        var w = Dict(TinyModels.ClipHf(s, seed: 4));
        using var a = new ClipVisionTraining(_be, Config(s), w);
        using var b = new ClipVisionTraining(_be, Config(s), w);
        using var x = T(ClipVisionParityTests.Pixels(1, s, 2), 1, s.Channels, s.Image, s.Image);
        using var d = _be.Zeros(1, s.Projection);
        var act = a.Forward(x);
        Assert.Throws<ArgumentException>(() => b.Backward(act, d));
        using var wrong = _be.Zeros(2, s.Projection);
        Assert.Throws<ArgumentException>(() => a.Backward(act, wrong));
    }
}

/// <summary>RI's head KL and its gradient, and a few AdamW steps of the RI objective on a tiny tower.</summary>
public sealed class HeadKlTests
{
    private static double Kl64(double[] z, int batch, int dim, float[] head, int classes, float[] p, double weight)
    {
        double loss = 0;
        for (int b = 0; b < batch; b++)
        {
            double norm = Math.Sqrt(Enumerable.Range(0, dim).Sum(e => z[b * dim + e] * z[b * dim + e]));
            var logits = new double[classes];
            for (int c = 0; c < classes; c++)
                for (int e = 0; e < dim; e++) logits[c] += z[b * dim + e] / norm * head[c * dim + e];
            double max = logits.Max(), lse = max + Math.Log(logits.Sum(v => Math.Exp(v - max)));
            for (int c = 0; c < classes; c++)
                if (p[b * classes + c] > 0) loss += p[b * classes + c] * (Math.Log(p[b * classes + c]) - (logits[c] - lse));
        }
        return weight * loss / batch;
    }

    private static double ReverseKl64(double[] z, int batch, int dim, float[] head, int classes, float[] p, double weight)
    {
        double loss = 0;
        for (int b = 0; b < batch; b++)
        {
            double norm = Math.Sqrt(Enumerable.Range(0, dim).Sum(e => z[b * dim + e] * z[b * dim + e]));
            var logits = new double[classes];
            for (int c = 0; c < classes; c++)
                for (int e = 0; e < dim; e++) logits[c] += z[b * dim + e] / norm * head[c * dim + e];
            double max = logits.Max(), lse = max + Math.Log(logits.Sum(v => Math.Exp(v - max)));
            for (int c = 0; c < classes; c++)
            {
                double lq = logits[c] - lse;
                loss += Math.Exp(lq) * (lq - Math.Log(p[b * classes + c]));
            }
        }
        return weight * loss / batch;
    }

    [Fact]
    public void ReverseKlLossAndGradientMatchFloat64FiniteDifferences() =>
        AssertHeadKlMatchesFiniteDifferences(reverse: true, seed: 22, headScale: 3, lossTolerance: 1e-5);

    [Fact]
    public void LossAndGradientMatchFloat64FiniteDifferences() =>
        AssertHeadKlMatchesFiniteDifferences(reverse: false, seed: 21, headScale: 5, lossTolerance: 1e-6);

    /// <summary>
    /// Head KL loss and dz vs the float64 reference (<see cref="Kl64"/> or <see cref="ReverseKl64"/>) and its
    /// central differences; a student equal to its teacher has zero loss and zero gradient.
    /// </summary>
    private static void AssertHeadKlMatchesFiniteDifferences(bool reverse, int seed, double headScale, double lossTolerance)
    {
        var rng = new Random(seed);
        const int batch = 3, dim = 8, classes = 5;
        float[] z = TinyModels.Random(rng, batch * dim, 1), head = TinyModels.Random(rng, classes * dim, headScale);
        var p = HeadKl.Probabilities(TinyModels.Random(rng, batch * dim, 1), batch, dim, head, classes);
        double Reference(double[] zz) => reverse ? ReverseKl64(zz, batch, dim, head, classes, p, 0.7) : Kl64(zz, batch, dim, head, classes, p, 0.7);
        var dz = new float[z.Length];
        double loss = HeadKl.LossAndGrad(z, batch, dim, head, classes, p, 0.7, dz, reverse);
        var zd = z.Select(v => (double)v).ToArray();
        Assert.Equal(Reference(zd), loss, lossTolerance);
        var fd = new double[z.Length];
        for (int i = 0; i < z.Length; i++)
        {
            double o = zd[i];
            zd[i] = o + 1e-6;
            double up = Reference(zd);
            zd[i] = o - 1e-6;
            double down = Reference(zd);
            zd[i] = o;
            fd[i] = (up - down) / 2e-6;
        }
        Assert.InRange(Float64Reference.RelErr(dz, fd), 0, 1e-4);

        var self = HeadKl.Probabilities(z, batch, dim, head, classes);
        var d0 = new float[z.Length];
        Assert.InRange(HeadKl.LossAndGrad(z, batch, dim, head, classes, self, 1, d0, reverse), -1e-6, 1e-6);
        Assert.InRange(d0.Max(Math.Abs), 0, 1e-5);
    }

    [Fact]
    public void AdamWOnTheRiObjectiveLowersTheLoss()
    {
        var s = new TinyModels.ClipShape(Layers: 1);
        var config = RiTrainerTests.Config(s);
        var be = new TaskMerge.Engine.Tensors.Cpu.CpuBackend(2);
        ClipVisionTraining Model(int seed) => new(be, config, ClipVisionBackwardTests.Dict(TinyModels.ClipHf(s, seed)));
        using ClipVisionTraining pretrained = Model(1), expert = Model(2), student = Model(2);
        const int batch = 4, classes = 6, e = 16;
        var rng = new Random(3);
        float[][] heads = [TinyModels.Random(rng, classes * e, 10), TinyModels.Random(rng, classes * e, 10), TinyModels.Random(rng, classes * e, 10)];
        using var pixels = be.FromHost(ClipVisionParityTests.Pixels(batch, s, 4), batch, s.Channels, s.Image, s.Image);
        // Expert 0: L1 under head 0 toward the expert, L2 under heads 1, 2 toward the pretrained model (α = 1).
        float[] pExpert = HeadKl.Probabilities(be.DetachToHost(expert.Embed(pixels)), batch, e, heads[0], classes);
        float[] zPre = be.DetachToHost(pretrained.Embed(pixels));
        float[][] pPre = [.. heads.Skip(1).Select(h => HeadKl.Probabilities(zPre, batch, e, h, classes))];
        var settings = new TaskMerge.Engine.Optim.AdamSettings(2e-3f, WeightDecay: 1e-4f, Decoupled: true);
        double first = 0, last = 0;
        for (int step = 1; step <= 25; step++)
        {
            var act = student.Forward(pixels);
            var z = act.Embeds.ToArray();
            var dz = new float[batch * e];
            double loss = HeadKl.LossAndGrad(z, batch, e, heads[0], classes, pExpert, 1, dz);
            for (int j = 0; j < pPre.Length; j++) loss += HeadKl.LossAndGrad(z, batch, e, heads[j + 1], classes, pPre[j], 1.0 / pPre.Length, dz);
            student.ZeroGradients();
            using (var d = be.FromHost(dz, batch, e)) student.Backward(act, d);
            student.OptimizerStep(step, settings);
            if (step == 1) first = loss;
            last = loss;
        }
        TestContext.Current.TestOutputHelper?.WriteLine($"RI loss {first:E3} -> {last:E3}");
        Assert.True(first > 0 && last < 0.5 * first, $"RI loss {first:E3} -> {last:E3}");
    }
}

/// <summary>The training forward against the inference model (<see cref="ClipVisionModel"/>) on the same checkpoint.</summary>
public sealed class ClipVisionTrainingForwardTests
{
    [Fact]
    public void TrainingForwardAndEmbedMatchTheInferenceModel()
    {
        var s = new TinyModels.ClipShape();
        var w = TinyModels.ClipHf(s, seed: 31);
        using var dir = new TaskMerge.Engine.Tests.IO.TempDir();
        TinyModels.WriteClipDir(dir.Path, s, w);
        const int batch = 3;
        var pixels = ClipVisionParityTests.Pixels(batch, s, 2);
        var be = new TaskMerge.Engine.Tensors.Cpu.CpuBackend(2);
        using var src = TaskMerge.Engine.IO.ModelSource.Open(dir.Path);
        using var model = ClipVisionModel.Load(src, be);
        using var x = be.FromHost((float[])pixels.Clone(), batch, s.Channels, s.Image, s.Image);
        using var o = model.Forward(x);
        using var training = new ClipVisionTraining(be, model.Config, ClipVisionBackwardTests.Dict(w));
        var act = training.Forward(x);
        var want = o.ImageEmbeds!.ToArray().Select(v => (double)v).ToArray();
        Assert.InRange(Float64Reference.RelErr(act.Embeds.ToArray(), want), 0, 1e-5);
        Assert.InRange(Float64Reference.RelErr(be.DetachToHost(training.Embed(x)), want), 0, 1e-5);
        // The parameters come back unchanged, in checkpoint layout.
        var back = training.ParametersToHost();
        foreach (var n in w.Names) Assert.Equal(w[n], back[n]);
    }
}
