using TaskMerge.Engine.IO;
using static TaskMerge.Engine.IO.IOText;

namespace TaskMerge.Engine.Models;

/// <summary>The architectures the forward pass runs.</summary>
public enum ModelKind
{
    /// <summary>CLIP vision tower (<c>clip_vision_model</c>, or the vision half of <c>clip</c>).</summary>
    ClipVision,

    /// <summary>RoBERTa for sequence classification (<c>roberta</c>).</summary>
    Roberta,

    /// <summary>CLIP text tower alone (<c>clip_text_model</c>, or a checkpoint with text-tower tensors and no vision tower).</summary>
    ClipText,
}

/// <summary>Decides a checkpoint's architecture from <c>config.json</c>'s <c>model_type</c>, else from its tensor names.</summary>
public static class ModelKinds
{
    /// <summary>The architecture of <paramref name="source"/>; unsupported ones are <see cref="BadInputException"/>.</summary>
    public static ModelKind Detect(ModelSource source)
    {
        if (source.ConfigJsonPath is { } cp)
        {
            string? type = ConfigJson.Load(cp).String("model_type");
            switch (type)
            {
                case "clip_vision_model" or "clip": return ModelKind.ClipVision;
                case "roberta": return ModelKind.Roberta;
                case "clip_text_model": return ModelKind.ClipText;
                case not null:
                    throw new BadInputException($"{P(cp)}: model_type {Q(type)} is not supported (supported: clip_vision_model, clip, clip_text_model, roberta)");
            }
        }
        foreach (var t in source.Tensors)
        {
            if (t.Name.EndsWith("embeddings.patch_embedding.weight", StringComparison.Ordinal) || t.Name.EndsWith("conv1.weight", StringComparison.Ordinal))
                return ModelKind.ClipVision;
            if (t.Name.EndsWith("embeddings.word_embeddings.weight", StringComparison.Ordinal))
                return ModelKind.Roberta;
        }
        if (source.Tensors.Any(t => t.Name.EndsWith("token_embedding.weight", StringComparison.Ordinal)))
            return ModelKind.ClipText;
        throw new BadInputException($"{P(source.Path)}: cannot tell the architecture (no config.json model_type, and neither CLIP nor RoBERTa tensor names)");
    }
}
