using System.Diagnostics;
using TaskMerge.Engine.Eval;
using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// RI, resolving interference (Ramesh et al., arXiv 2603.13467; shared/docs/methods/ri.md): before
/// merging, each expert's task vector τᵢ of a CLIP vision tower is adapted on unlabeled auxiliary
/// images so that it keeps its own head's outputs (KL to the original expert) and leaves every other
/// task's head at the pretrained model's outputs (α/(N−1)·Σ KL); then <c>base_method</c> (any other
/// registered method, with its own parameters and defaults) merges θ0 + the adapted τᵢ*.
/// </summary>
/// <remarks>
/// <para>Models must be HF CLIP vision checkpoints (CLIPVisionModelWithProjection or CLIPModel tensor
/// names; the base directory's <c>config.json</c> gives the architecture). Each model needs a per-model
/// <c>head</c>: a safetensors <c>weight</c> [C, E] with optional <c>logit_scale</c> (bias ignored,
/// RI's heads have none). Tensors outside the vision tower (e.g. a text tower) keep their original τᵢ.</para>
/// <para>Prepare adapts the experts one at a time on the merge's backend (<see cref="MergeContext.Backend"/>:
/// the CPU or the GPU, <see cref="RiTrainer"/>) and caches the adapted vision-tower weights as float32
/// host arrays: N × (vision tower size × 4 bytes) for the cache, plus, on the backend while one expert
/// trains, θ0, that expert and the student with its gradient and two Adam moments (6 × tower size)
/// and one batch of activations.</para>
/// </remarks>
public sealed class RiMethod : IMergeMethod
{
    private static readonly string[] Own = ["base_method", "aux_data", "head", "ri_alpha", "ri_lr", "ri_weight_decay", "ri_steps", "ri_batch_size", "ri_temperature", "ri_seed", "ri_kl_direction"];

    private IReadOnlyList<ParameterDef>? _parameters;
    private IMergeMethod? _base;
    private MergeParameters? _baseParameters;
    private Dictionary<string, float[]>[]? _adapted;

    /// <inheritdoc />
    public string Name => "ri";

    /// <inheritdoc />
    public string Description => "RI: adapt each CLIP expert on unlabeled aux images to keep its own head and leave other heads at the pretrained outputs, then merge with base_method (Ramesh et al.)";

    /// <inheritdoc />
    /// <remarks>RI's own parameters followed by every other method's (first declaration of a name wins), which are handed to <c>base_method</c>.</remarks>
    public IReadOnlyList<ParameterDef> Parameters => _parameters ??= BuildParameters();

    /// <inheritdoc />
    public bool UsesTaskVectors => true;

    private static List<ParameterDef> BuildParameters()
    {
        var defs = new List<ParameterDef>
        {
            ParameterDef.Text("base_method", "task_arithmetic", "registered method that merges θ0 + the adapted τᵢ* (with its own parameters)"),
            ParameterDef.Text("aux_data", null, "unlabeled auxiliary images: an image-folder tree or a safetensors file with pixel_values [N, 3, S, S] (normalised)"),
            new("head", ParameterKind.String, null, "per model: safetensors head file, weight [C, E] (+ logit_scale)", PerModel: true),
            ParameterDef.Float("ri_alpha", 1.0, "weight α of the interference term (divided by N − 1)"),
            ParameterDef.Float("ri_lr", 1e-6, "AdamW learning rate (constant; betas 0.9/0.999, eps 1e-8)"),
            ParameterDef.Float("ri_weight_decay", 1e-4, "AdamW decoupled weight decay"),
            ParameterDef.Int("ri_steps", 2500, "optimizer steps per expert"),
            ParameterDef.Int("ri_batch_size", 128, "auxiliary images per step"),
            ParameterDef.Float("ri_temperature", 1.0, "softmax temperature of teacher and student logits (forward KL(teacher ‖ student), no T² factor)"),
            ParameterDef.Int("ri_seed", 0, "seed of the auxiliary batch order"),
            ParameterDef.Choice("ri_kl_direction", "forward", "forward: KL(teacher ‖ student) (spec's assumption); reverse: KL(student ‖ teacher)", "forward", "reverse"),
        };
        var seen = defs.Select(d => d.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var name in MethodRegistry.Names.Where(n => n != "ri"))
            foreach (var d in MethodRegistry.Create(name).Parameters)
                if (seen.Add(d.Name)) defs.Add(d);
        return defs;
    }

    /// <inheritdoc />
    public void Prepare(MergeContext context)
    {
        var adapted = _adapted = Adapt(context);
        var merged = context.Tensors.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        _base!.Prepare(new MergeContext
        {
            Tensors = context.Tensors, ExpertCount = context.ExpertCount, Backend = context.Backend, Parameters = _baseParameters!, Seed = context.Seed,
            Report = context.Report, BaseConfigPath = context.BaseConfigPath,
            Load = (name, model) => model >= 0 && adapted[model].TryGetValue(name, out var a)
                ? context.Backend.FromHost((float[])a.Clone(), merged[name]) : context.Load(name, model),
        });
    }

    /// <summary>
    /// Adapts every expert (one at a time) and returns the adapted vision-tower weights θ0 + τᵢ* by
    /// expert and HF name; writes the loss curves to <see cref="MergeContext.Report"/> (<c>ri_runs</c>).
    /// </summary>
    internal Dictionary<string, float[]>[] Adapt(MergeContext context)
    {
        var p = context.Parameters;
        string baseName = p.String("base_method");
        if (baseName == Name) throw new BadInputException("ri: base_method cannot be ri");
        _base = MethodRegistry.Create(baseName);
        _baseParameters = p.For(_base.Parameters, Own);
        var options = new RiOptions
        {
            Alpha = p.Float("ri_alpha"), LearningRate = (float)p.Float("ri_lr"), WeightDecay = (float)p.Float("ri_weight_decay"),
            Steps = p.Int("ri_steps"), BatchSize = p.Int("ri_batch_size"), Temperature = p.Float("ri_temperature"), Seed = p.Int("ri_seed"),
            ReverseKl = p.String("ri_kl_direction") == "reverse",
        };
        options.Validate();
        int n = context.ExpertCount;
        if (n < 2) throw new BadInputException($"ri: needs at least 2 experts, got {n}");
        var config = ClipVisionConfig.Load(context.BaseConfigPath
            ?? throw new BadInputException("ri: the base model must be a directory with a config.json (a CLIP vision model)"));
        var shapes = ClipVisionTraining.ParameterShapes(config);
        var merged = context.Tensors.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        foreach (var (name, shape) in shapes)
            if (!merged.TryGetValue(name, out var s) || !s.SequenceEqual(shape))
                throw new BadInputException($"ri: the merged tensors lack CLIP vision tensor {name} [{string.Join(", ", shape)}] (RI needs HF CLIP vision checkpoints)");

        var heads = new float[n][];
        for (int k = 0; k < n; k++)
        {
            string path;
            try { path = p.String("head", model: k); }
            catch (BadInputException) { throw new BadInputException($"ri: expert {k} (models list order, base excluded) has no per-model parameter 'head' (a safetensors head file, weight [C, E])"); }
            var h = LinearHead.Load(path);
            if (h.Dim != config.ProjectionDim) throw new BadInputException($"ri: head {h.Origin} has width {h.Dim}, the model's projection dim is {config.ProjectionDim}");
            heads[k] = [.. h.Weight.Select(v => (float)(v * h.Scale))];
        }
        using var aux = RiAuxImages.Open(p.String("aux_data"), new ImagePreprocessor(config.ImageSize), options.Threads);

        Dictionary<string, float[]> LoadModel(int model)
        {
            var d = new Dictionary<string, float[]>(StringComparer.Ordinal);
            foreach (var (name, _) in shapes)
            {
                using var t = context.Load(name, model);
                d[name] = t.ToArray();
            }
            return d;
        }
        var pre = LoadModel(-1);
        var result = new Dictionary<string, float[]>[n];
        var runs = new List<Dictionary<string, object>>();
        for (int k = 0; k < n; k++)
        {
            var clock = Stopwatch.StartNew();
            var r = RiTrainer.Adapt(context.Backend, config, pre, LoadModel(k), heads, k, aux, options);
            result[k] = r.Adapted;
            runs.Add(new Dictionary<string, object>
            {
                ["expert"] = k, ["seconds"] = clock.Elapsed.TotalSeconds,
                ["loss"] = r.Loss, ["task_loss"] = r.TaskLoss, ["interference_loss"] = r.InterferenceLoss,
            });
        }
        var rep = context.Report;
        rep["base_method"] = baseName;
        rep["ri_adapted_tensors"] = shapes.Count;
        rep["ri_aux_images"] = aux.Count;
        rep["ri_runs"] = runs;

        return result;
    }

    /// <inheritdoc />
    public Tensor Merge(TensorGroup group)
    {
        if (_base is null || _baseParameters is null || _adapted is null) throw new InvalidOperationException("ri: Merge before Prepare");
        var created = new List<Tensor>();
        try
        {
            var experts = group.Experts.Select(e =>
            {
                if (!_adapted[e.Model].TryGetValue(group.Name, out var a)) return e;
                var t = group.Backend.FromHost((float[])a.Clone(), group.Shape.ToArray());
                created.Add(t);
                return new ExpertTensor(e.Model, t);
            }).ToList();
            return _base.Merge(new TensorGroup
            {
                Name = group.Name, Depth = group.Depth, Base = group.Base, Experts = experts, Backend = group.Backend,
                Parameters = _baseParameters, Seed = group.Seed, Diagnostics = group.Diagnostics,
            });
        }
        finally
        {
            foreach (var t in created) t.Dispose();
        }
    }
}
