using System.Diagnostics;
using TaskMerge.Engine.Eval;
using TaskMerge.Engine.IO;
using TaskMerge.Engine.Methods;
using TaskMerge.Engine.Models;

namespace TaskMerge.Engine.Training;

/// <summary>
/// RI's adaptation stage over a merge (shared/docs/methods/ri.md §6, <c>ri_adapt</c> for every expert): reads
/// the <c>ri_*</c> parameters, the per-model heads and the auxiliary images, maps the checkpoint's
/// vision tower to the training names (<see cref="ClipTrainingLayout"/>), runs <see cref="RiTrainer"/>
/// for one expert at a time on the merge's backend and records the per-step curves in the report.
/// </summary>
internal static class RiAdaptation
{
    /// <summary>
    /// Adapts every expert of <paramref name="context"/> and returns the adapted vision-tower weights
    /// θ0 + τᵢ* by expert and checkpoint tensor name (the checkpoint's own layout); writes
    /// <c>base_method</c> (= <paramref name="baseMethod"/>), <c>ri_layout</c>, <c>ri_adapted_tensors</c>,
    /// <c>ri_aux_images</c> and <c>ri_runs</c> to <see cref="MergeContext.Report"/> and progress to
    /// <see cref="MergeContext.Progress"/>. <paramref name="checkpoints"/> is the store the runs were
    /// checkpointed in (null without checkpoints); <paramref name="defaultCheckpointDirectory"/> is its
    /// place under the output directory when <c>ri_checkpoint_dir</c> is empty.
    /// </summary>
    public static Dictionary<string, float[]>[] Run(MergeContext context, string baseMethod, string defaultCheckpointDirectory, out RiCheckpointStore? checkpoints)
    {
        string ConfigPath(string path) => context.ConfigDirectory is null ? path : Config.MergeConfig.Resolve(path, context.ConfigDirectory);
        var p = context.Parameters;
        var options = new RiOptions
        {
            Alpha = p.Float("ri_alpha"), LearningRate = (float)p.Float("ri_lr"), WeightDecay = (float)p.Float("ri_weight_decay"),
            Steps = p.Int("ri_steps"), BatchSize = p.Int("ri_batch_size"), Temperature = p.Float("ri_temperature"), Seed = p.Int("ri_seed"),
            ReverseKl = p.String("ri_kl_direction") == "reverse",
            LrSchedule = RiLearningRate.Parse(p.String("ri_lr_schedule")), WarmupSteps = p.Int("ri_warmup_steps"), GradClip = p.Float("ri_grad_clip"),
            CacheTeachers = p.Bool("ri_cache_teachers"),
        };
        options.Validate();
        int every = p.Int("ri_checkpoint_every");
        if (every < 0) throw new BadInputException($"ri: ri_checkpoint_every must be ≥ 0 (0 = no checkpoints), got {every}");
        int n = context.ExpertCount;
        if (n < 2) throw new BadInputException($"ri: needs at least 2 experts, got {n}");
        var reference = context.Reference ?? throw new InvalidOperationException("ri: the merge context has no reference model");
        var names = ClipNames.Detect(reference);
        var config = reference.ConfigJsonPath is { } cp ? ClipVisionConfig.Load(cp) : names.Infer(reference);
        config.Validate(IOText.P(reference.Path));
        var layout = ClipTrainingLayout.Create(names, config);
        var merged = context.Tensors.ToDictionary(t => t.Name, t => t.Shape, StringComparer.Ordinal);
        foreach (var (name, shape) in layout.CheckpointTensors)
            if (!merged.TryGetValue(name, out var s) || !s.SequenceEqual(shape))
                throw new BadInputException($"ri: the merged tensors lack CLIP vision tensor {name} [{string.Join(", ", shape)}] ({LayoutName(layout.Layout)} layout; RI needs CLIP vision checkpoints)");

        var heads = new float[n][];
        for (int k = 0; k < n; k++)
        {
            string path;
            try { path = ConfigPath(p.String("head", model: k)); }
            catch (BadInputException) { throw new BadInputException($"ri: expert {k} (models list order, base excluded) has no per-model parameter 'head' (a safetensors head file, weight [C, E])"); }
            var h = LinearHead.Load(path);
            if (h.Dim != config.ProjectionDim) throw new BadInputException($"ri: head {h.Origin} has width {h.Dim}, the model's projection dim is {config.ProjectionDim}");
            heads[k] = [.. h.Weight.Select(v => (float)(v * h.Scale))];
        }
        using var aux = RiAuxImages.Open(ConfigPath(p.String("aux_data")), new ImagePreprocessor(config.ImageSize), options.Threads);

        var progress = context.Progress;
        string dir = p.String("ri_checkpoint_dir");
        if (dir.Length == 0 && context.OutputDirectory is { } outDir) dir = Path.Combine(outDir, defaultCheckpointDirectory);
        if (every > 0 && File.Exists(dir)) throw new BadInputException($"ri: ri_checkpoint_dir {IOText.P(dir)} is a file, not a directory");
        checkpoints = every > 0 && dir.Length > 0 ? new RiCheckpointStore(dir, every, progress.Warn, progress.Note) : null;
        var store = checkpoints;
        var pretrainedCache = new RiTeacherCache(aux.Count, config.ProjectionDim, options.CacheTeachers);

        Dictionary<string, float[]> LoadModel(int model) => layout.ToTraining(name =>
        {
            using var t = context.Load(name, model);
            return t.ToArray();
        });
        var pre = LoadModel(-1);
        var result = new Dictionary<string, float[]>[n];
        var runs = new List<Dictionary<string, object>>();
        for (int k = 0; k < n; k++)
        {
            string stage = $"ri expert {k + 1}/{n}";
            var clock = Stopwatch.StartNew();
            int first = -1;
            var hooks = new RiRunHooks
            {
                Checkpoints = store, PretrainedCache = pretrainedCache,
                OnStep = s =>
                {
                    if (first < 0) first = s.Step - 1;
                    progress.TrainingStep(stage, s.Step, s.Steps, s.Loss, (s.Step - first) * (double)options.BatchSize / Math.Max(clock.Elapsed.TotalSeconds, 1e-9));
                },
            };
            var r = RiTrainer.Adapt(context.Backend, config, pre, LoadModel(k), heads, k, aux, options, hooks);
            double seconds = clock.Elapsed.TotalSeconds;
            result[k] = layout.FromTraining(r.Adapted);
            var run = new Dictionary<string, object>
            {
                ["expert"] = k, ["seconds"] = seconds, ["resumed_steps"] = r.ResumedSteps,
                ["images_per_second"] = (options.Steps - r.ResumedSteps) * (double)options.BatchSize / Math.Max(seconds, 1e-9),
                ["teacher_images_forwarded"] = r.TeacherImagesForwarded,
                ["loss"] = r.Loss, ["task_loss"] = r.TaskLoss, ["interference_loss"] = r.InterferenceLoss, ["lr"] = r.LearningRate, ["grad_norm"] = r.GradNorm,
            };
            runs.Add(run);
        }
        var rep = context.Report;
        rep["base_method"] = baseMethod;
        rep["ri_layout"] = LayoutName(layout.Layout);
        rep["ri_adapted_tensors"] = layout.CheckpointTensors.Count;
        rep["ri_aux_images"] = aux.Count;
        rep["ri_runs"] = runs;

        return result;
    }

    private static string LayoutName(ClipWeightLayout layout) => layout == ClipWeightLayout.OpenClip ? "open_clip" : "hf";

}
