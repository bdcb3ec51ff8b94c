#!/usr/bin/python3
"""Recorded outputs of the CLIP vision tower for ClipVisionReferenceTests, made with PyTorch alone.

transformers is not installable here, so the forward below is written in torch following
transformers' modeling_clip.py statement by statement (CLIPVisionEmbeddings with the bias-free patch
Conv2d, class token and learned positions; pre_layrnorm; CLIPEncoderLayer with eager attention and no
mask; CLIPVisionTransformer's pooling of token 0 through post_layernorm; CLIPVisionModelWithProjection's
bias-free visual_projection) and, for the open_clip case, open_clip's VisionTransformer (conv1, ln_pre,
resblocks over nn.MultiheadAttention, ln_post over all tokens then token-0 pooling, x @ proj).
The safetensors files are written by hand (json header + raw little-endian bytes).

Per case it writes <case>/config.json (HF cases only), model.safetensors, input.safetensors
(pixel_values F32 [B, C, S, S]) and expected.safetensors (last_hidden_state [B, T, W], the encoder
output before post_layernorm as transformers returns it, pooler_output, image_embeds).

Usage (Debian: apt install python3-torch; run from this directory):
    python3 make_clip_vision_fixtures.py
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_reference import act_fn, layer_norm, linear, write_safetensors  # noqa: E402

torch.set_grad_enabled(False)
torch.set_num_threads(1)


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    W, I, E, C, P = cfg["hidden_size"], cfg["intermediate_size"], cfg["projection_dim"], cfg["num_channels"], cfg["patch_size"]
    T = (cfg["image_size"] // P) ** 2 + 1
    n = lambda *shape: torch.randn(shape, generator=g, dtype=torch.float32)
    v = "vision_model."
    w = {v + "embeddings.class_embedding": 0.5 * n(W),
         v + "embeddings.patch_embedding.weight": 0.2 * n(W, C, P, P),
         v + "embeddings.position_embedding.weight": 0.3 * n(T, W),
         v + "pre_layrnorm.weight": 1 + 0.1 * n(W),
         v + "pre_layrnorm.bias": 0.1 * n(W)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"{v}encoder.layers.{l}."
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            w[p + f"self_attn.{proj}.weight"] = 0.25 * n(W, W)
            w[p + f"self_attn.{proj}.bias"] = 0.1 * n(W)
        w[p + "layer_norm1.weight"] = 1 + 0.1 * n(W)
        w[p + "layer_norm1.bias"] = 0.1 * n(W)
        w[p + "mlp.fc1.weight"] = 0.25 * n(I, W)
        w[p + "mlp.fc1.bias"] = 0.1 * n(I)
        w[p + "mlp.fc2.weight"] = 0.2 * n(W, I)
        w[p + "mlp.fc2.bias"] = 0.1 * n(W)
        w[p + "layer_norm2.weight"] = 1 + 0.1 * n(W)
        w[p + "layer_norm2.bias"] = 0.1 * n(W)
    w[v + "post_layernorm.weight"] = 1 + 0.1 * n(W)
    w[v + "post_layernorm.bias"] = 0.1 * n(W)
    w["visual_projection.weight"] = 0.2 * n(E, W)
    return w


def hf_vision_forward(cfg, w, pixel_values):
    """transformers CLIPVisionModelWithProjection.forward, eager attention."""
    W, H, P = cfg["hidden_size"], cfg["num_attention_heads"], cfg["patch_size"]
    D, eps = W // H, cfg["layer_norm_eps"]
    v = "vision_model."
    bsz = pixel_values.shape[0]
    # CLIPVisionEmbeddings
    patch_embeds = torch.nn.functional.conv2d(pixel_values, w[v + "embeddings.patch_embedding.weight"], stride=P)
    patch_embeds = patch_embeds.flatten(2).transpose(1, 2)
    class_embeds = w[v + "embeddings.class_embedding"].expand(bsz, 1, -1)
    embeddings = torch.cat([class_embeds, patch_embeds], dim=1)
    position_ids = torch.arange(embeddings.shape[1])[None, :]
    embeddings = embeddings + w[v + "embeddings.position_embedding.weight"][position_ids]
    hidden_states = layer_norm(embeddings, w, v + "pre_layrnorm", eps)
    seq_len = hidden_states.shape[1]
    act = act_fn(cfg["hidden_act"])
    for l in range(cfg["num_hidden_layers"]):
        p = f"{v}encoder.layers.{l}."
        residual = hidden_states
        hidden_states = layer_norm(hidden_states, w, p + "layer_norm1", eps)
        q = linear(hidden_states, w, p + "self_attn.q_proj").view(bsz, seq_len, H, D).transpose(1, 2)
        k = linear(hidden_states, w, p + "self_attn.k_proj").view(bsz, seq_len, H, D).transpose(1, 2)
        vv = linear(hidden_states, w, p + "self_attn.v_proj").view(bsz, seq_len, H, D).transpose(1, 2)
        attn_weights = torch.softmax(torch.matmul(q, k.transpose(2, 3)) * D ** -0.5, dim=-1)
        attn_output = torch.matmul(attn_weights, vv).transpose(1, 2).reshape(bsz, seq_len, W)
        hidden_states = residual + linear(attn_output, w, p + "self_attn.out_proj")
        residual = hidden_states
        hidden_states = layer_norm(hidden_states, w, p + "layer_norm2", eps)
        hidden_states = residual + linear(act(linear(hidden_states, w, p + "mlp.fc1")), w, p + "mlp.fc2")
    last_hidden_state = hidden_states
    pooled_output = layer_norm(last_hidden_state[:, 0, :], w, v + "post_layernorm", eps)
    image_embeds = torch.nn.functional.linear(pooled_output, w["visual_projection.weight"])
    return last_hidden_state, pooled_output, image_embeds


def to_open_clip(cfg, w):
    v = "vision_model."
    o = {"visual.class_embedding": w[v + "embeddings.class_embedding"],
         "visual.conv1.weight": w[v + "embeddings.patch_embedding.weight"],
         "visual.positional_embedding": w[v + "embeddings.position_embedding.weight"],
         "visual.ln_pre.weight": w[v + "pre_layrnorm.weight"], "visual.ln_pre.bias": w[v + "pre_layrnorm.bias"]}
    for l in range(cfg["num_hidden_layers"]):
        p, q = f"{v}encoder.layers.{l}.", f"visual.transformer.resblocks.{l}."
        o[q + "attn.in_proj_weight"] = torch.cat([w[p + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        o[q + "attn.in_proj_bias"] = torch.cat([w[p + f"self_attn.{x}_proj.bias"] for x in "qkv"])
        o[q + "attn.out_proj.weight"] = w[p + "self_attn.out_proj.weight"]
        o[q + "attn.out_proj.bias"] = w[p + "self_attn.out_proj.bias"]
        for a, b in (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            o[q + b + ".weight"] = w[p + a + ".weight"]
            o[q + b + ".bias"] = w[p + a + ".bias"]
    o["visual.ln_post.weight"] = w[v + "post_layernorm.weight"]
    o["visual.ln_post.bias"] = w[v + "post_layernorm.bias"]
    o["visual.proj"] = w["visual_projection.weight"].t().contiguous()
    return o


def open_clip_vision_forward(cfg, o, x):
    """open_clip VisionTransformer.forward (batch_first, no attn_pool, final_ln_after_pool False, tok pooling)."""
    W, H, P, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["patch_size"], cfg["layer_norm_eps"]
    x = torch.nn.functional.conv2d(x, o["visual.conv1.weight"], stride=P)
    x = x.reshape(x.shape[0], x.shape[1], -1).permute(0, 2, 1)
    x = torch.cat([o["visual.class_embedding"].view(1, 1, -1).expand(x.shape[0], -1, -1).to(x.dtype), x], dim=1)
    x = x + o["visual.positional_embedding"].to(x.dtype)
    x = layer_norm(x, o, "visual.ln_pre", eps)
    act = act_fn(cfg["hidden_act"])
    for l in range(cfg["num_hidden_layers"]):
        q = f"visual.transformer.resblocks.{l}."
        mha = torch.nn.MultiheadAttention(W, H, batch_first=True)
        mha.in_proj_weight.copy_(o[q + "attn.in_proj_weight"])
        mha.in_proj_bias.copy_(o[q + "attn.in_proj_bias"])
        mha.out_proj.weight.copy_(o[q + "attn.out_proj.weight"])
        mha.out_proj.bias.copy_(o[q + "attn.out_proj.bias"])
        y = layer_norm(x, o, q + "ln_1", eps)
        x = x + mha(y, y, y, need_weights=False)[0]
        y = layer_norm(x, o, q + "ln_2", eps)
        x = x + linear(act(linear(y, o, q + "mlp.c_fc")), o, q + "mlp.c_proj")
    encoder_out = x
    x = layer_norm(x, o, "visual.ln_post", eps)
    pooled = x[:, 0]
    return encoder_out, pooled, pooled @ o["visual.proj"]


def config_json(cfg):
    return {"architectures": ["CLIPVisionModelWithProjection"], "model_type": "clip_vision_model", **cfg}


def write_case(name, cfg, w, pixels, hf):
    os.makedirs(name, exist_ok=True)
    if hf:
        with open(os.path.join(name, "config.json"), "w") as f:
            json.dump(config_json(cfg), f, indent=2)
        write_safetensors(os.path.join(name, "model.safetensors"), w)
        last, pooled, embeds = hf_vision_forward(cfg, w, pixels)
    else:
        o = to_open_clip(cfg, w)
        write_safetensors(os.path.join(name, "model.safetensors"), o)
        last, pooled, embeds = open_clip_vision_forward(cfg, o, pixels)
    write_safetensors(os.path.join(name, "input.safetensors"), {"pixel_values": pixels})
    write_safetensors(os.path.join(name, "expected.safetensors"),
                      {"last_hidden_state": last, "pooler_output": pooled, "image_embeds": embeds})


def base_cfg(**kw):
    cfg = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "num_channels": 3, "image_size": 16, "patch_size": 4, "hidden_act": "quick_gelu",
           "layer_norm_eps": 1e-5, "projection_dim": 16}
    cfg.update(kw)
    return cfg


def main():
    g = torch.Generator().manual_seed(100)
    cfg = base_cfg()
    write_case("hf_quick_gelu", cfg, random_weights(cfg, 1), torch.randn((3, 3, 16, 16), generator=g), hf=True)

    cfg = base_cfg(hidden_act="gelu", image_size=20, patch_size=5, num_hidden_layers=3, layer_norm_eps=1e-6)
    write_case("hf_gelu_odd_grid", cfg, random_weights(cfg, 2), torch.randn((2, 3, 20, 20), generator=g), hf=True)

    # open_clip names, no config.json: width 64 → one head of 64 (the C# loader infers it from shapes).
    cfg = base_cfg(hidden_size=64, num_attention_heads=1, intermediate_size=128, projection_dim=24)
    write_case("open_clip_no_config", cfg, random_weights(cfg, 3), torch.randn((2, 3, 16, 16), generator=g), hf=False)

    with open("versions.json", "w") as f:
        json.dump({"torch": torch.__version__, "script": os.path.basename(__file__)}, f, indent=2)


if __name__ == "__main__":
    main()
