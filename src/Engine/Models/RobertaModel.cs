using TaskMerge.Engine.IO;
using TaskMerge.Engine.Tensors;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>Outputs of <see cref="RobertaModel.Forward"/>; the caller disposes them.</summary>
public sealed class RobertaOutput : IDisposable
{
    internal RobertaOutput(Tensor lastHidden, Tensor? logits, int batch, int seq)
    {
        (LastHiddenState, Logits, Batch, Seq) = (lastHidden, logits, batch, seq);
    }

    /// <summary>The encoder output, [B·S, W] (HF <c>last_hidden_state</c> [B, S, W]).</summary>
    public Tensor LastHiddenState { get; }

    /// <summary>Classifier logits [B, num_labels]; null when the model has no classification head.</summary>
    public Tensor? Logits { get; }

    /// <summary>Sequences B.</summary>
    public int Batch { get; }

    /// <summary>Tokens per sequence S.</summary>
    public int Seq { get; }

    /// <inheritdoc />
    public void Dispose()
    {
        LastHiddenState.Dispose();
        Logits?.Dispose();
    }
}

/// <summary>
/// HF <c>RobertaForSequenceClassification</c> in eval mode, written against <see cref="IBackend"/>
/// ops: word + token-type + padding-aware position embeddings and LayerNorm, post-LN encoder layers
/// with an additive key-padding mask, and the classification head (dense → tanh → out_proj on the
/// &lt;s&gt; token). A bare <c>RobertaModel</c> checkpoint (no <c>roberta.</c> prefix) loads too.
/// </summary>
public sealed class RobertaModel : IDisposable
{
    private sealed class Layer(SelfAttention attn, Norm attnNorm, Linear intermediate, Linear output, Norm outNorm) : IDisposable
    {
        public SelfAttention Attn { get; } = attn;
        public Norm AttnNorm { get; } = attnNorm;
        public Linear Intermediate { get; } = intermediate;
        public Linear Output { get; } = output;
        public Norm OutNorm { get; } = outNorm;

        public void Dispose()
        {
            Attn.Dispose();
            AttnNorm.Dispose();
            Intermediate.Dispose();
            Output.Dispose();
            OutNorm.Dispose();
        }
    }

    private const string WordName = "embeddings.word_embeddings.weight";

    private readonly IBackend _backend;
    private readonly Tensor _words, _positions, _tokenType;
    private readonly Norm _embedNorm;
    private readonly Layer[] _layers;
    private readonly RobertaClassificationHead? _head;

    private RobertaModel(IBackend backend, RobertaConfig config, Tensor words, Tensor positions, Tensor tokenType, Norm embedNorm,
        Layer[] layers, RobertaClassificationHead? head)
    {
        (_backend, Config, _words, _positions, _tokenType, _embedNorm, _layers, _head) =
            (backend, config, words, positions, tokenType, embedNorm, layers, head);
    }

    /// <summary>The hyper-parameters in use.</summary>
    public RobertaConfig Config { get; }

    /// <summary>True when a classification head is loaded.</summary>
    public bool HasClassifier => _head is not null;

    /// <summary>Classifier outputs (rows of <c>classifier.out_proj.weight</c>); 0 without a head.</summary>
    public int NumLabels => _head?.NumLabels ?? 0;

    /// <summary>
    /// Loads the model from <paramref name="source"/> (config from <paramref name="config"/>, else the
    /// directory's <c>config.json</c>, which is then required). The classification head
    /// (<c>classifier.dense</c>, <c>classifier.out_proj</c>) is read from <paramref name="head"/> when
    /// given (the per-task head of a merged backbone), else from <paramref name="source"/> when present.
    /// </summary>
    public static RobertaModel Load(ModelSource source, IBackend backend, RobertaConfig? config = null, ModelSource? head = null)
    {
        string prefix = DetectPrefix(source);
        if (config is null)
        {
            if (source.ConfigJsonPath is null)
                throw new BadInputException($"{P(source.Path)}: a RoBERTa model needs its config.json (layer_norm_eps and sizes are not in the weights)");
            config = RobertaConfig.Load(source.ConfigJsonPath);
        }
        var c = config;
        var r = new WeightReader(source, backend);
        int w = c.HiddenSize;
        long[] wordShape = r.ShapeOf(prefix + WordName), posShape = r.ShapeOf(prefix + "embeddings.position_embeddings.weight"),
            typeShape = r.ShapeOf(prefix + "embeddings.token_type_embeddings.weight");
        var loaded = new List<IDisposable>();
        try
        {
            T Add<T>(T d) where T : IDisposable
            {
                loaded.Add(d);
                return d;
            }

            var words = Add(r.Load(prefix + WordName, (int)wordShape[0], w));
            var positions = Add(r.Load(prefix + "embeddings.position_embeddings.weight", (int)posShape[0], w));
            var types = r.Read(prefix + "embeddings.token_type_embeddings.weight", (int)typeShape[0], w);
            var tokenType = Add(backend.FromHost(types.AsSpan(0, w).ToArray(), w));
            var embedNorm = Add(Norm.Load(r, prefix + "embeddings.LayerNorm", w, c.LayerNormEps));
            var layers = new Layer[c.NumHiddenLayers];
            for (int l = 0; l < layers.Length; l++)
            {
                string p = $"{prefix}encoder.layer.{l}.";
                var q = Add(Linear.Load(r, p + "attention.self.query", w, w));
                var k = Add(Linear.Load(r, p + "attention.self.key", w, w));
                var v = Add(Linear.Load(r, p + "attention.self.value", w, w));
                var o = Add(Linear.Load(r, p + "attention.output.dense", w, w));
                var attn = new SelfAttention(q, k, v, o, c.NumAttentionHeads);
                var attnNorm = Add(Norm.Load(r, p + "attention.output.LayerNorm", w, c.LayerNormEps));
                var inter = Add(Linear.Load(r, p + "intermediate.dense", c.IntermediateSize, w));
                var output = Add(Linear.Load(r, p + "output.dense", w, c.IntermediateSize));
                var outNorm = Add(Norm.Load(r, p + "output.LayerNorm", w, c.LayerNormEps));
                layers[l] = new Layer(attn, attnNorm, inter, output, outNorm);
            }
            if (source.Contains($"{prefix}encoder.layer.{c.NumHiddenLayers}.attention.self.query.weight"))
                throw new BadInputException($"{P(source.Path)}: checkpoint has more than num_hidden_layers = {c.NumHiddenLayers} encoder layers");

            var headSource = head ?? source;
            string headPrefix = head is null ? (prefix.EndsWith("roberta.", StringComparison.Ordinal) ? prefix[..^"roberta.".Length] : prefix) : "";
            RobertaClassificationHead? cls = null;
            if (head is not null || source.Contains(headPrefix + "classifier.out_proj.weight"))
                cls = Add(RobertaClassificationHead.Load(headSource, backend, w, head is null ? headPrefix : null));
            return new RobertaModel(backend, c, words, positions, tokenType, embedNorm, layers, cls);
        }
        catch
        {
            foreach (var d in loaded) d.Dispose();
            throw;
        }
    }

    private static string DetectPrefix(ModelSource source)
    {
        foreach (var t in source.Tensors)
            if (t.Name.EndsWith(WordName, StringComparison.Ordinal) && !t.Name.Contains("lm_head", StringComparison.Ordinal))
                return t.Name[..^WordName.Length];
        throw new BadInputException($"{P(source.Path)}: not a RoBERTa checkpoint (no roberta.{WordName} tensor)");
    }

    /// <summary>
    /// HF <c>create_position_ids_from_input_ids</c>: non-pad tokens get padding_idx + their 1-based
    /// index among the row's non-pad tokens, pads get padding_idx.
    /// </summary>
    public static int[] PositionIds(ReadOnlySpan<int> inputIds, int batch, int seq, int padId)
    {
        var pos = new int[batch * seq];
        for (int b = 0; b < batch; b++)
        {
            int count = 0;
            for (int t = 0; t < seq; t++)
            {
                int i = b * seq + t;
                pos[i] = inputIds[i] != padId ? padId + ++count : padId;
            }
        }
        return pos;
    }

    /// <summary>
    /// Runs the model on <paramref name="inputIds"/> (B·S ids, row-major) with an optional
    /// <paramref name="attentionMask"/> (1 = attend, 0 = padding; all ones when null, as in HF). Logits
    /// come from <paramref name="head"/> when given (a per-task head on a merged backbone), else from the
    /// checkpoint's own classifier, else are null.
    /// </summary>
    public RobertaOutput Forward(ReadOnlySpan<int> inputIds, int batch, int seq, ReadOnlySpan<int> attentionMask = default,
        RobertaClassificationHead? head = null)
    {
        head ??= _head;
        var be = _backend;
        var c = Config;
        int w = c.HiddenSize, rows = batch * seq;
        if (inputIds.Length != rows) throw new ArgumentException($"input_ids has {inputIds.Length} ids, expected {batch}×{seq}");
        if (!attentionMask.IsEmpty && attentionMask.Length != rows)
            throw new BadInputException($"attention_mask has {attentionMask.Length} values, expected {batch}×{seq} like input_ids");
        int vocab = _words.Rows;
        foreach (int id in inputIds)
            if ((uint)id >= (uint)vocab) throw new BadInputException($"input_ids holds token id {id}, outside the vocabulary of {vocab}");
        int[] pos = PositionIds(inputIds, batch, seq, c.PadTokenId);
        int maxPos = pos.Length == 0 ? 0 : pos.Max();
        if (maxPos >= _positions.Rows)
            throw new BadInputException($"sequence needs position {maxPos} but the model has {_positions.Rows} position embeddings (max {_positions.Rows - c.PadTokenId - 1} tokens)");

        var h = be.Empty(rows, w);
        Tensor? logits = null, maskBias = null;
        try
        {
            be.GatherRows(_words, inputIds, h);
            be.AddRowVector(h, _tokenType, h);
            using (var pe = be.Empty(rows, w))
            {
                be.GatherRows(_positions, pos, pe);
                be.Add(h, pe, h);
            }
            _embedNorm.Forward(be, h, h);

            if (!attentionMask.IsEmpty)
            {
                var bias = new float[rows];
                for (int i = 0; i < rows; i++) bias[i] = attentionMask[i] == 0 ? float.MinValue : 0f;
                maskBias = be.FromHost(bias, batch, seq);
            }
            using (var ws = new EncoderWorkspace(be, batch, seq, w, c.NumAttentionHeads, c.IntermediateSize))
            {
                foreach (var layer in _layers)
                {
                    layer.Attn.Forward(be, h, maskBias, ws, ws.Tmp);
                    be.Add(ws.Tmp, h, ws.Tmp);
                    layer.AttnNorm.Forward(be, ws.Tmp, ws.Tmp);
                    layer.Intermediate.Forward(be, ws.Tmp, ws.Mlp);
                    Activations.Apply(be, c.HiddenAct, ws.Mlp);
                    layer.Output.Forward(be, ws.Mlp, h);
                    be.Add(h, ws.Tmp, h);
                    layer.OutNorm.Forward(be, h, h);
                }
            }

            if (head is not null)
            {
                var firstRows = new int[batch];
                for (int b = 0; b < batch; b++) firstRows[b] = b * seq;
                using var cls = be.Empty(batch, w);
                be.GatherRows(h, firstRows, cls);
                logits = head.Forward(be, cls);
            }
            return new RobertaOutput(h, logits, batch, seq);
        }
        catch
        {
            h.Dispose();
            logits?.Dispose();
            throw;
        }
        finally
        {
            maskBias?.Dispose();
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _words.Dispose();
        _positions.Dispose();
        _tokenType.Dispose();
        _embedNorm.Dispose();
        foreach (var l in _layers) l.Dispose();
        _head?.Dispose();
    }
}

/// <summary>
/// RoBERTa's sequence-classification head (HF <c>RobertaClassificationHead</c>): logits =
/// out_proj(tanh(dense(x))) on the &lt;s&gt; token's final hidden state. Kept apart from the backbone
/// because merging benchmarks evaluate one merged backbone with each task's own head.
/// </summary>
public sealed class RobertaClassificationHead : IDisposable
{
    private readonly Linear _dense, _outProj;

    private RobertaClassificationHead(Linear dense, Linear outProj) => (_dense, _outProj) = (dense, outProj);

    /// <summary>Outputs (1 for regression such as STS-B).</summary>
    public int NumLabels => _outProj.Out;

    /// <summary>
    /// Loads <c>classifier.dense.{weight,bias}</c> [W, W] and <c>classifier.out_proj.{weight,bias}</c>
    /// [num_labels, W] from <paramref name="source"/>, under <paramref name="prefix"/> or, when null, under
    /// whatever prefix the file uses.
    /// </summary>
    public static RobertaClassificationHead Load(ModelSource source, IBackend backend, int width, string? prefix = null)
    {
        prefix ??= source.Tensors.Select(t => t.Name).FirstOrDefault(n => n.EndsWith("classifier.out_proj.weight", StringComparison.Ordinal)) is { } found
            ? found[..^"classifier.out_proj.weight".Length]
            : throw new BadInputException($"{P(source.Path)}: no classifier.out_proj.weight (a RoBERTa head needs classifier.dense and classifier.out_proj)");
        var r = new WeightReader(source, backend);
        string outName = prefix + "classifier.out_proj.weight";
        long[] outShape = r.ShapeOf(outName);
        if (outShape.Length != 2 || outShape[1] != width || outShape[0] < 1)
            throw new BadInputException($"{P(source.Path)}: tensor {Q(outName)} has shape {TensorInfo.FormatShape(outShape)}, expected [num_labels, {width}]");
        var dense = Linear.Load(r, prefix + "classifier.dense", width, width);
        try
        {
            return new RobertaClassificationHead(dense, Linear.Load(r, prefix + "classifier.out_proj", (int)outShape[0], width));
        }
        catch
        {
            dense.Dispose();
            throw;
        }
    }

    /// <summary>Logits [B, num_labels] of the &lt;s&gt; states <paramref name="cls"/> [B, W].</summary>
    public Tensor Forward(INeuralNetOps be, Tensor cls)
    {
        int b = cls.Rows;
        using var hidden = be.Empty(b, _dense.Out);
        _dense.Forward(be, cls, hidden);
        be.Tanh(hidden, hidden);
        var logits = be.Empty(b, _outProj.Out);
        _outProj.Forward(be, hidden, logits);
        return logits;
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _dense.Dispose();
        _outProj.Dispose();
    }
}
