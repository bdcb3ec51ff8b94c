using TaskMerge.Engine.Tensors;

namespace TaskMerge.Engine.Models;

/// <summary>One pre-LN encoder layer of the CLIP vision tower (HF <c>CLIPEncoderLayer</c>).</summary>
internal sealed class ClipVisionBlock(Norm ln1, SelfAttention attn, Norm ln2, Linear fc1, Linear fc2) : IDisposable
{
    public Norm Ln1 { get; } = ln1;
    public SelfAttention Attn { get; } = attn;
    public Norm Ln2 { get; } = ln2;
    public Linear Fc1 { get; } = fc1;
    public Linear Fc2 { get; } = fc2;

    /// <summary>
    /// mid ← x + attention(ln1(x)); fc1 ← fc1(ln2(mid)); act ← activation(fc1); output ← mid + fc2(act).
    /// The attention writes its heads, probabilities and context into <paramref name="ws"/>; ws.Tmp and
    /// ws.Tmp2 take the LayerNorm outputs and the branch outputs. Inference passes one residual
    /// tensor as x, mid and output and one tensor as fc1 and act; training passes distinct tensors to keep them.
    /// </summary>
    public void Forward(INeuralNetOps be, Activation activation, Tensor x, EncoderWorkspace ws, Tensor mid, Tensor fc1, Tensor act, Tensor output)
    {
        Ln1.Forward(be, x, ws.Tmp);
        Attn.Forward(be, ws.Tmp, null, ws, ws.Tmp2);
        be.Add(x, ws.Tmp2, mid);
        Ln2.Forward(be, mid, ws.Tmp);
        Fc1.Forward(be, ws.Tmp, fc1);
        Activations.Apply(be, activation, fc1, act);
        Fc2.Forward(be, act, ws.Tmp2);
        be.Add(mid, ws.Tmp2, output);
    }

    public void Dispose()
    {
        Attn.Dispose();
        Fc1.Dispose();
        Fc2.Dispose();
        Ln1.Dispose();
        Ln2.Dispose();
    }
}

/// <summary>
/// Where one <see cref="ClipVisionTower.Forward"/> writes. Inference aliases the residual stream
/// into one tensor and shares one workspace across layers; training gives every layer its own
/// tensors so that the backward pass can read them.
/// </summary>
internal sealed class ClipForwardBuffers
{
    /// <summary>Extracted patches [B·T, C·P·P], a zero row at each class token.</summary>
    public required Tensor Patches { get; init; }

    /// <summary>Patch embeddings + class token + positions [B·T, W] (the input of <c>pre_layrnorm</c>).</summary>
    public required Tensor Embedded { get; init; }

    /// <summary>The residual stream entering layer l (l &lt; L) and leaving the encoder (l = L), each [B·T, W].</summary>
    public required Tensor[] Residual { get; init; }

    /// <summary>Per layer: the attention tensors and the LayerNorm / branch scratch.</summary>
    public required EncoderWorkspace[] Attention { get; init; }

    /// <summary>Per layer: the residual stream after the attention branch [B·T, W].</summary>
    public required Tensor[] Mid { get; init; }

    /// <summary>Per layer: the MLP pre-activation [B·T, I].</summary>
    public required Tensor[] Fc1 { get; init; }

    /// <summary>Per layer: the MLP activation [B·T, I].</summary>
    public required Tensor[] Act { get; init; }

    /// <summary>The encoder output at the class tokens [B, W] (the input of <c>post_layernorm</c>).</summary>
    public required Tensor Cls { get; init; }

    /// <summary><c>post_layernorm</c> output [B, W].</summary>
    public required Tensor Pooled { get; init; }

    /// <summary>Projected image embeddings [B, E]; null skips the projection.</summary>
    public required Tensor? Embeds { get; init; }

    /// <summary>
    /// The inference plan: the residual stream lives in <paramref name="hidden"/> throughout,
    /// every layer uses <paramref name="ws"/>, and the class tokens are gathered into
    /// <paramref name="pooled"/> and normalised in place.
    /// </summary>
    public static ClipForwardBuffers Inference(int layers, Tensor patches, Tensor hidden, EncoderWorkspace ws, Tensor pooled, Tensor? embeds) => new()
    {
        Patches = patches, Embedded = hidden, Residual = [.. Enumerable.Repeat(hidden, layers + 1)],
        Attention = [.. Enumerable.Repeat(ws, layers)], Mid = [.. Enumerable.Repeat(hidden, layers)],
        Fc1 = [.. Enumerable.Repeat(ws.Mlp, layers)], Act = [.. Enumerable.Repeat(ws.Mlp, layers)],
        Cls = pooled, Pooled = pooled, Embeds = embeds,
    };
}

/// <summary>
/// The weights of a CLIP ViT image encoder and its one forward pass, shared by inference
/// (<see cref="ClipVisionModel"/>) and training (<see cref="Training.ClipVisionTraining"/>): patch embedding
/// as a GEMM over extracted patches, class token and positions, <c>pre_layrnorm</c>, pre-LN blocks,
/// <c>post_layernorm</c> on the class token, optional bias-free projection. Does not own the tensors.
/// </summary>
internal sealed class ClipVisionTower(ClipVisionConfig config, Tensor patchWeight, Norm preNorm, ClipVisionBlock[] blocks, Norm postNorm, Tensor? projection)
{
    public ClipVisionConfig Config { get; } = config;
    public Tensor PatchWeight { get; } = patchWeight;
    public Norm PreNorm { get; } = preNorm;
    public ClipVisionBlock[] Blocks { get; } = blocks;
    public Norm PostNorm { get; } = postNorm;
    public Tensor? Projection { get; } = projection;

    /// <summary>Images B of <paramref name="pixelValues"/>, after checking it is [B, C, S, S].</summary>
    public int BatchOf(Tensor pixelValues)
    {
        var c = Config;
        if (pixelValues.Rank != 4 || pixelValues.Shape[1] != c.NumChannels || pixelValues.Shape[2] != c.ImageSize || pixelValues.Shape[3] != c.ImageSize)
            throw new BadInputException(
                $"pixel_values has shape [{string.Join(", ", pixelValues.Shape.ToArray())}], expected [B, {c.NumChannels}, {c.ImageSize}, {c.ImageSize}]");
        return pixelValues.Shape[0];
    }

    /// <summary>Row index of each image's class token in the [B·T, W] residual stream.</summary>
    public int[] ClassRows(int batch)
    {
        var rows = new int[batch];
        for (int i = 0; i < batch; i++) rows[i] = i * Config.Tokens;
        return rows;
    }

    /// <summary>
    /// Runs the tower on normalised <paramref name="pixelValues"/> [B, C, S, S] into
    /// <paramref name="o"/>. <paramref name="positions"/> [T, W] holds the position embeddings with
    /// the class embedding added to row 0 (the class token's patch row is zero).
    /// </summary>
    public void Forward(INeuralNetOps be, Tensor pixelValues, Tensor positions, ClipForwardBuffers o)
    {
        var c = Config;
        int b = BatchOf(pixelValues);
        be.Patchify(pixelValues, c.PatchSize, 1, o.Patches);
        be.Gemm(o.Patches, false, PatchWeight, true, o.Embedded);
        be.AddRowVector(o.Embedded, positions, o.Embedded);
        PreNorm.Forward(be, o.Embedded, o.Residual[0]);
        for (int l = 0; l < Blocks.Length; l++)
            Blocks[l].Forward(be, c.HiddenAct, o.Residual[l], o.Attention[l], o.Mid[l], o.Fc1[l], o.Act[l], o.Residual[l + 1]);
        be.GatherRows(o.Residual[^1], ClassRows(b), o.Cls);
        PostNorm.Forward(be, o.Cls, o.Pooled);
        if (Projection is not null && o.Embeds is not null) be.Gemm(o.Pooled, false, Projection, true, o.Embeds);
    }
}
