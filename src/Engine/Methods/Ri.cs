using TaskMerge.Engine.Models;
using TaskMerge.Engine.Tensors;
using TaskMerge.Engine.Training;

namespace TaskMerge.Engine.Methods;

/// <summary>
/// RI, resolving interference (Ramesh et al., arXiv 2603.13467; shared/docs/methods/ri.md): before
/// merging, each expert's task vector τᵢ of a CLIP vision tower is adapted on unlabeled auxiliary
/// images so that it keeps its own head's outputs (KL to the original expert) and leaves every other
/// task's head at the pretrained model's outputs (α/(N−1)·Σ KL); then <c>base_method</c> (any other
/// registered method, with its own parameters and defaults) merges θ0 + the adapted τᵢ*.
/// </summary>
/// <remarks>
/// <para>Models are CLIP vision checkpoints in HF layout (CLIPVisionModelWithProjection or CLIPModel
/// names) or open_clip layout (<c>visual.conv1.weight</c>, fused <c>attn.in_proj_weight</c>,
/// <c>proj</c> [W, E]; any prefix), mapped to the training names by <see cref="ClipTrainingLayout"/>
/// and back, so adapted tensors keep the checkpoint's own names and layout. The base directory's
/// <c>config.json</c> gives the architecture, else it is inferred from the shapes (head size 64). Each
/// model needs a per-model <c>head</c>: a safetensors <c>weight</c> [C, E] with optional
/// <c>logit_scale</c> (bias ignored, RI's heads have none). Tensors outside the vision tower (e.g. a
/// text tower) keep their original τᵢ.</para>
/// <para>Prepare adapts the experts one at a time on the merge's backend (<see cref="MergeContext.Backend"/>:
/// the CPU or the GPU; <see cref="RiAdaptation"/> over <see cref="RiTrainer"/>, in <c>src/Engine/Training/</c>) and caches the
/// adapted vision-tower weights as float32 host arrays: N × (vision tower size × 4 bytes) for the cache,
/// plus, on the backend while one expert trains, θ0, that expert and the student with its gradient and two Adam
/// moments (6 × tower size), one batch of activations and the teacher-embedding caches
/// (E × 4 bytes per distinct aux image seen, for θ0 across all experts and for the current expert).</para>
/// <para>With <c>ri_checkpoint_every</c> &gt; 0 each expert's run is checkpointed in
/// <c>ri_checkpoint_dir</c> (default <c>OUT_DIR/.ri-checkpoints</c>) and a rerun resumes it, or skips
/// an expert that had finished; the directory is removed once RI's results are handed on.</para>
/// </remarks>
public sealed class RiMethod : IMergeMethod
{
    private static readonly string[] Own =
    [
        "base_method", "aux_data", "head", "ri_alpha", "ri_lr", "ri_weight_decay", "ri_steps", "ri_batch_size", "ri_temperature", "ri_seed",
        "ri_kl_direction", "ri_lr_schedule", "ri_warmup_steps", "ri_grad_clip", "ri_cache_teachers", "ri_checkpoint_every", "ri_checkpoint_dir",
    ];

    /// <summary>Checkpoint directory under the output directory when <c>ri_checkpoint_dir</c> is not set.</summary>
    public const string DefaultCheckpointDirectory = ".ri-checkpoints";

    private IReadOnlyList<ParameterDef>? _parameters;
    private IMergeMethod? _base;
    private MergeParameters? _baseParameters;
    private Dictionary<string, float[]>[]? _adapted;
    private RiCheckpointStore? _checkpoints;

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
            ParameterDef.Float("ri_alpha", 1.0, "weight α of the interference term (divided by N − 1)", range: ParameterRange.NonNegative),
            ParameterDef.Float("ri_lr", 1e-6, "AdamW base learning rate (betas 0.9/0.999, eps 1e-8), scaled per step by ri_lr_schedule", range: ParameterRange.NonNegative),
            ParameterDef.Float("ri_weight_decay", 1e-4, "AdamW decoupled weight decay", range: ParameterRange.NonNegative),
            ParameterDef.Int("ri_steps", 2500, "optimizer steps per expert", min: 0, max: 10_000_000),
            ParameterDef.Int("ri_batch_size", 128, "auxiliary images per step", min: 1, max: 65_536),
            ParameterDef.Float("ri_temperature", 1.0, "softmax temperature of teacher and student logits (forward KL(teacher ‖ student), no T² factor)", range: ParameterRange.Positive),
            ParameterDef.Int("ri_seed", 0, "seed of the auxiliary batch order", min: 0),
            ParameterDef.Choice("ri_kl_direction", "forward", "forward: KL(teacher ‖ student) (spec's assumption); reverse: KL(student ‖ teacher)", "forward", "reverse"),
            ParameterDef.Choice("ri_lr_schedule", "constant", "learning-rate schedule after warmup (transformers' LambdaLR lambdas): constant, cosine (to 0) or linear (to 0)", "constant", "cosine", "linear"),
            ParameterDef.Int("ri_warmup_steps", 0, "steps of linear warmup from lr 0 (0 = none)", min: 0, max: 10_000_000),
            ParameterDef.Float("ri_grad_clip", 0.0, "largest global gradient L2 norm, torch clip_grad_norm_ semantics (0 = no clipping)", range: ParameterRange.NonNegative),
            ParameterDef.Bool("ri_cache_teachers", true, "cache the teacher towers' embeddings per aux image (same result, fewer forwards; E × 4 bytes per image and tower)"),
            ParameterDef.Int("ri_checkpoint_every", 100, "steps between checkpoints of a running expert (0 = no checkpoints); finished experts are kept too", min: 0, max: 10_000_000),
            ParameterDef.Text("ri_checkpoint_dir", "", $"checkpoint directory (empty: OUT_DIR/{DefaultCheckpointDirectory}); removed after a successful run"),
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
            Report = context.Report, Reference = context.Reference, OutputDirectory = context.OutputDirectory, ConfigDirectory = context.ConfigDirectory,
            Progress = context.Progress, Prepared = context.Prepared,
            Load = (name, model) => model >= 0 && adapted[model].TryGetValue(name, out var a)
                ? context.Backend.FromHost((float[])a.Clone(), merged[name]) : context.Load(name, model),
        });
        DeleteCheckpoints();
    }

    /// <summary>Removes the checkpoints of the last <see cref="Adapt"/> (its results have been used).</summary>
    internal void DeleteCheckpoints()
    {
        _checkpoints?.Delete();
        _checkpoints = null;
    }

    /// <summary>
    /// Chooses <c>base_method</c>, then adapts every expert (<see cref="RiAdaptation.Run"/>) and returns the
    /// adapted vision-tower weights θ0 + τᵢ* by expert and checkpoint tensor name; the checkpoints stay
    /// until <see cref="DeleteCheckpoints"/>.
    /// </summary>
    internal Dictionary<string, float[]>[] Adapt(MergeContext context)
    {
        var p = context.Parameters;
        string baseName = p.String("base_method");
        if (baseName == Name) throw new BadInputException("ri: base_method cannot be ri");
        _base = MethodRegistry.Create(baseName);
        _baseParameters = p.For(_base.Parameters, Own);
        return RiAdaptation.Run(context, baseName, DefaultCheckpointDirectory, out _checkpoints);
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
                Parameters = _baseParameters, Seed = group.Seed, Diagnostics = group.Diagnostics, Prepared = group.Prepared,
            });
        }
        finally
        {
            foreach (var t in created) t.Dispose();
        }
    }
}
