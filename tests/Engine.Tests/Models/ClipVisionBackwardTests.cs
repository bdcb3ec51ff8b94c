using TaskMerge.Engine.Models;
using static TaskMerge.Engine.Models.ClipVisionBackward;

namespace TaskMerge.Engine.Tests.Models;

/// <summary>
/// The CLIP vision backward pass against float64 central finite differences: each op on its own
/// (float64 re-implementations of the forwards, differenced with step 1e-6), then every weight
/// tensor of a tiny random tower (samples per tensor, differencing <see cref="Float64Reference.Clip"/>
/// with the float32 weight perturbed by ±1e-3; the step used is the exact float difference).
/// </summary>
public sealed class ClipVisionBackwardTests
{
    private static double[] D(float[] a) => [.. a.Select(v => (double)v)];

    private static float[] R(Random rng, int n, double scale = 1, double offset = 0) => TinyModels.Random(rng, n, scale, offset);

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
    public void LayerNormBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(1);
        const int rows = 5, n = 12;
        const float eps = 1e-5f;
        float[] x = R(rng, rows * n, 2, 0.5), g = R(rng, n, 0.3, 1), b = R(rng, n, 0.2), dy = R(rng, rows * n);
        float[] y = new float[rows * n], mean = new float[rows], rstd = new float[rows];
        LayerNormForward(x, rows, n, g, b, eps, y, mean, rstd, 2);
        Close(y, LayerNorm64(D(x), n, D(g), D(b), eps));
        float[] dx = new float[rows * n], dg = new float[n], db = new float[n];
        LayerNormBackward(dy, x, mean, rstd, g, rows, n, dx, dg, db, 2);
        double[] xd = D(x), gd = D(g), bd = D(b), dyd = D(dy);
        double Loss() => LayerNorm64(xd, n, gd, bd, eps).Zip(dyd, (p, q) => p * q).Sum();
        Close(dx, Fd(v => Loss(), xd));
        Close(dg, Fd(v => Loss(), gd));
        Close(db, Fd(v => Loss(), bd));

        // Accumulates: a second call adds the same again.
        LayerNormBackward(dy, x, mean, rstd, g, rows, n, dx, dg, db, 1);
        Close(dx, Fd(v => 2 * Loss(), xd));
    }

    [Theory]
    [InlineData(Activation.QuickGelu)]
    [InlineData(Activation.Gelu)]
    public void ActivationBackwardMatchesFiniteDifferences(Activation act)
    {
        var rng = new Random(2);
        float[] x = [.. R(rng, 200, 2.5), 0f, -8f, 8f], dy = R(rng, x.Length);
        string name = act == Activation.Gelu ? "gelu" : "quick_gelu";
        var dx = new float[x.Length];
        ActivationBackward(act, x, dy, dx, 2);
        var expected = new double[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            const double h = 1e-6;
            expected[i] = dy[i] * (Float64Reference.Act(name, x[i] + h) - Float64Reference.Act(name, x[i] - h)) / (2 * h);
        }
        Close(dx, expected);
        var y = new float[x.Length];
        ActivationForward(act, x, y, 1);
        Close(y, [.. x.Select(v => Float64Reference.Act(name, v))]);
    }

    [Fact]
    public void SoftmaxBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(3);
        const int n = 9;
        const float scale = 0.35f;
        float[] x = R(rng, n, 3), dy = R(rng, n);
        var y = new float[n];
        SoftmaxForward(x, scale, y);
        static double[] Softmax64(double[] x, double scale)
        {
            double max = x.Max() * scale, sum = 0;
            var e = x.Select(v => Math.Exp(v * scale - max)).ToArray();
            foreach (double v in e) sum += v;
            return [.. e.Select(v => v / sum)];
        }
        var xd = D(x);
        Close(y, Softmax64(xd, scale));
        var dx = new float[n];
        SoftmaxBackward(y, dy, scale, dx);
        Close(dx, Fd(v => Dot(Softmax64(v, scale), dy), xd));
    }

    [Fact]
    public void LinearBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(4);
        const int rows = 7, inF = 5, outF = 6;
        float[] x = R(rng, rows * inF), w = R(rng, outF * inF), b = R(rng, outF), dy = R(rng, rows * outF);
        double[] xd = D(x), wd = D(w), bd = D(b);
        double[] Lin() => Float64Reference.Linear(xd, inF, [.. wd.Select(v => (float)v)], [.. bd.Select(v => (float)v)], outF);
        double Loss(double[] xx, double[] ww, double[] bb)
        {
            double s = 0;
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < outF; o++)
                {
                    double v = bb[o];
                    for (int i = 0; i < inF; i++) v += xx[r * inF + i] * ww[o * inF + i];
                    s += v * dy[r * outF + o];
                }
            return s;
        }
        var y = new float[rows * outF];
        LinearForward(x, rows, inF, w, b, outF, y, 2);
        Close(y, Lin());
        float[] dx = R(rng, rows * inF), dw = new float[outF * inF], db = new float[outF];
        LinearBackward(dy, x, w, rows, inF, outF, dx, false, dw, db, 2);
        Close(dx, Fd(v => Loss(v, wd, bd), xd));
        Close(dw, Fd(v => Loss(xd, v, bd), wd));
        Close(db, Fd(v => Loss(xd, wd, v), bd));
    }

    [Fact]
    public void AttentionBackwardMatchesFiniteDifferences()
    {
        var rng = new Random(5);
        const int batch = 2, seq = 4, heads = 2, d = 3, w = heads * d, n = batch * seq * w;
        float[] q = R(rng, n), k = R(rng, n), v = R(rng, n), dctx = R(rng, n);
        double[] Attn(double[] qq, double[] kk, double[] vv)
        {
            var ctx = new double[n];
            for (int b = 0; b < batch; b++)
                for (int h = 0; h < heads; h++)
                    for (int i = 0; i < seq; i++)
                    {
                        var s = new double[seq];
                        for (int j = 0; j < seq; j++)
                            for (int e = 0; e < d; e++) s[j] += qq[(b * seq + i) * w + h * d + e] * kk[(b * seq + j) * w + h * d + e] / Math.Sqrt(d);
                        double max = s.Max(), sum = 0;
                        for (int j = 0; j < seq; j++) sum += s[j] = Math.Exp(s[j] - max);
                        for (int j = 0; j < seq; j++)
                            for (int e = 0; e < d; e++) ctx[(b * seq + i) * w + h * d + e] += s[j] / sum * vv[(b * seq + j) * w + h * d + e];
                    }
            return ctx;
        }
        var probs = new float[batch * heads * seq * seq];
        var ctx = new float[n];
        AttentionForward(q, k, v, batch, seq, heads, d, probs, ctx, 2);
        double[] qd = D(q), kd = D(k), vd = D(v);
        Close(ctx, Attn(qd, kd, vd));
        float[] dq = new float[n], dk = new float[n], dv = new float[n];
        AttentionBackward(dctx, q, k, v, probs, batch, seq, heads, d, dq, dk, dv, 2);
        Close(dq, Fd(x => Dot(Attn(x, kd, vd), dctx), qd));
        Close(dk, Fd(x => Dot(Attn(qd, x, vd), dctx), kd));
        Close(dv, Fd(x => Dot(Attn(qd, kd, x), dctx), vd));
    }

    private static ClipVisionConfig Config(TinyModels.ClipShape s) => new()
    {
        HiddenSize = s.Hidden, IntermediateSize = s.Intermediate, NumHiddenLayers = s.Layers, NumAttentionHeads = s.Heads,
        NumChannels = s.Channels, ImageSize = s.Image, PatchSize = s.Patch, LayerNormEps = s.Eps, ProjectionDim = s.Projection,
        HiddenAct = s.Act == "gelu" ? Activation.Gelu : Activation.QuickGelu,
    };

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
        var model = new ClipVisionTraining(config, weights.Names.ToDictionary(x => x, x => weights[x]), threads: 2);

        var activations = model.Forward(pixels, batch);
        var reference = Float64Reference.Clip(weights, s, pixels, batch);
        Close(activations.Embeds, reference.Embeds!);

        var rng = new Random(17);
        var r = R(rng, batch * s.Projection);
        var grads = model.ZeroGradients();
        model.Backward(activations, r, grads);
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
        var model = new ClipVisionTraining(Config(s), weights.Names.ToDictionary(x => x, x => weights[x]));
        var pixels = ClipVisionParityTests.Pixels(2, s, 9);
        var r = R(new Random(8), 2 * s.Projection);
        var whole = model.ZeroGradients();
        model.Backward(model.Forward(pixels, 2), r, whole);
        var split = model.ZeroGradients();
        int half = pixels.Length / 2;
        model.Backward(model.Forward(pixels[..half], 1), r[..s.Projection], split);
        model.Backward(model.Forward(pixels[half..], 1), r[s.Projection..], split);
        foreach (var (name, g) in whole)
        {
            // Absolute against the tensor's scale: k_proj.bias has an analytically zero gradient
            // (softmax ignores a constant added to every key score), so it holds float noise only.
            double worst = g.Zip(split[name], (a, b) => Math.Abs(a - b)).Max();
            Assert.True(worst <= 1e-5 * g.Max(Math.Abs) + 1e-6, $"{name}: micro-batch sum differs by {worst:E2}");
        }
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
    public void ReverseKlLossAndGradientMatchFloat64FiniteDifferences()
    {
        var rng = new Random(22);
        const int batch = 3, dim = 8, classes = 5;
        float[] z = TinyModels.Random(rng, batch * dim, 1), head = TinyModels.Random(rng, classes * dim, 3);
        var p = HeadKl.Probabilities(TinyModels.Random(rng, batch * dim, 1), batch, dim, head, classes);
        var dz = new float[z.Length];
        double loss = HeadKl.LossAndGrad(z, batch, dim, head, classes, p, 0.7, dz, reverse: true);
        var zd = z.Select(v => (double)v).ToArray();
        Assert.Equal(ReverseKl64(zd, batch, dim, head, classes, p, 0.7), loss, 1e-5);
        var fd = new double[z.Length];
        for (int i = 0; i < z.Length; i++)
        {
            double o = zd[i];
            zd[i] = o + 1e-6;
            double up = ReverseKl64(zd, batch, dim, head, classes, p, 0.7);
            zd[i] = o - 1e-6;
            double down = ReverseKl64(zd, batch, dim, head, classes, p, 0.7);
            zd[i] = o;
            fd[i] = (up - down) / 2e-6;
        }
        Assert.InRange(Float64Reference.RelErr(dz, fd), 0, 1e-4);
        var self = HeadKl.Probabilities(z, batch, dim, head, classes);
        var d0 = new float[z.Length];
        Assert.InRange(HeadKl.LossAndGrad(z, batch, dim, head, classes, self, 1, d0, reverse: true), -1e-6, 1e-6);
        Assert.InRange(d0.Max(Math.Abs), 0, 1e-5);
    }

    [Fact]
    public void LossAndGradientMatchFloat64FiniteDifferences()
    {
        var rng = new Random(21);
        const int batch = 3, dim = 8, classes = 5;
        float[] z = TinyModels.Random(rng, batch * dim, 1), head = TinyModels.Random(rng, classes * dim, 5);
        var p = HeadKl.Probabilities(TinyModels.Random(rng, batch * dim, 1), batch, dim, head, classes);
        var dz = new float[z.Length];
        double loss = HeadKl.LossAndGrad(z, batch, dim, head, classes, p, 0.7, dz);
        var zd = z.Select(v => (double)v).ToArray();
        Assert.Equal(Kl64(zd, batch, dim, head, classes, p, 0.7), loss, 1e-6);
        var fd = new double[z.Length];
        for (int i = 0; i < z.Length; i++)
        {
            double o = zd[i];
            zd[i] = o + 1e-6;
            double up = Kl64(zd, batch, dim, head, classes, p, 0.7);
            zd[i] = o - 1e-6;
            double down = Kl64(zd, batch, dim, head, classes, p, 0.7);
            zd[i] = o;
            fd[i] = (up - down) / 2e-6;
        }
        Assert.InRange(Float64Reference.RelErr(dz, fd), 0, 1e-4);

        // Student = teacher: zero loss and zero gradient.
        var self = HeadKl.Probabilities(z, batch, dim, head, classes);
        var d0 = new float[z.Length];
        Assert.InRange(HeadKl.LossAndGrad(z, batch, dim, head, classes, self, 1, d0), -1e-6, 1e-6);
        Assert.InRange(d0.Max(Math.Abs), 0, 1e-5);
    }

    [Fact]
    public void AdamWOnTheRiObjectiveLowersTheLoss()
    {
        var s = new TinyModels.ClipShape(Layers: 1);
        var config = new ClipVisionConfig
        {
            HiddenSize = s.Hidden, IntermediateSize = s.Intermediate, NumHiddenLayers = s.Layers, NumAttentionHeads = s.Heads,
            ImageSize = s.Image, PatchSize = s.Patch, ProjectionDim = s.Projection,
        };
        ClipVisionTraining Model(int seed)
        {
            var w = TinyModels.ClipHf(s, seed);
            return new ClipVisionTraining(config, w.Names.ToDictionary(x => x, x => w[x]));
        }
        ClipVisionTraining pretrained = Model(1), expert = Model(2), student = Model(2);
        const int batch = 4, classes = 6, e = 16;
        var rng = new Random(3);
        float[][] heads = [TinyModels.Random(rng, classes * e, 10), TinyModels.Random(rng, classes * e, 10), TinyModels.Random(rng, classes * e, 10)];
        var pixels = ClipVisionParityTests.Pixels(batch, s, 4);
        // Expert 0: L1 under head 0 toward the expert, L2 under heads 1, 2 toward the pretrained model (α = 1).
        float[] pExpert = HeadKl.Probabilities(expert.Forward(pixels, batch).Embeds, batch, e, heads[0], classes);
        float[] zPre = pretrained.Forward(pixels, batch).Embeds;
        float[][] pPre = [.. heads.Skip(1).Select(h => HeadKl.Probabilities(zPre, batch, e, h, classes))];
        var state = student.NewAdamState();
        var settings = new TaskMerge.Engine.Optim.AdamSettings(2e-3f, WeightDecay: 1e-4f, Decoupled: true);
        double first = 0, last = 0;
        for (int step = 1; step <= 25; step++)
        {
            var act = student.Forward(pixels, batch);
            var dz = new float[batch * e];
            double loss = HeadKl.LossAndGrad(act.Embeds, batch, e, heads[0], classes, pExpert, 1, dz);
            for (int j = 0; j < pPre.Length; j++) loss += HeadKl.LossAndGrad(act.Embeds, batch, e, heads[j + 1], classes, pPre[j], 1.0 / pPre.Length, dz);
            var grads = student.ZeroGradients();
            student.Backward(act, dz, grads);
            student.OptimizerStep(grads, state, step, settings);
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
    public void TrainingForwardMatchesTheInferenceModel()
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
        var training = new ClipVisionTraining(model.Config, w.Names.ToDictionary(n => n, n => w[n]), threads: 2);
        var act = training.Forward(pixels, batch);
        var want = o.ImageEmbeds!.ToArray();
        Assert.InRange(Float64Reference.RelErr(act.Embeds, [.. want.Select(v => (double)v)]), 0, 1e-5);
        Assert.InRange(Float64Reference.RelErr(act.Pooled, [.. o.PoolerOutput.ToArray().Select(v => (double)v)]), 0, 1e-5);
    }
}
