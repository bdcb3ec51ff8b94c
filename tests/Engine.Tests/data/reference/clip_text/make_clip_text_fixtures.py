#!/usr/bin/python3
"""Recorded outputs of the CLIP text tower for ClipTextReferenceTests, made with PyTorch alone.

transformers is not installable here, so the forward below is written in torch following
transformers' modeling_clip.py statement by statement (CLIPTextEmbeddings, CLIPAttention with the
4-d causal mask built by torch.full(finfo.min).triu(1), CLIPMLP, CLIPEncoderLayer, CLIPTextTransformer's
final_layer_norm and EOS pooling, CLIPTextModelWithProjection's bias-free text_projection) and, for the
open_clip case, open_clip's TextTransformer (fused in_proj, ln_final, text.argmax pooling,
x @ text_projection). The safetensors files are written by hand (json header + raw little-endian bytes).

Per case it writes <case>/config.json (HF cases only), model.safetensors, input.safetensors
(input_ids, attention_mask I64 [B, T]) and expected.safetensors (last_hidden_state [B, T, W] without a
padding mask, pooler_output, text_embeds, and pooler_output_masked: the pooled output when the padding
mask is passed as well, as FusionBench does).

Usage (Debian: apt install python3-torch; run from this directory):
    python3 make_clip_text_fixtures.py
"""

import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_reference import act_fn, layer_norm, linear, write_safetensors  # noqa: E402

torch.set_grad_enabled(False)
torch.set_num_threads(1)


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    W, I, V, P, E = cfg["hidden_size"], cfg["intermediate_size"], cfg["vocab_size"], cfg["max_position_embeddings"], cfg["projection_dim"]
    n = lambda *shape: torch.randn(shape, generator=g, dtype=torch.float32)
    w = {"text_model.embeddings.token_embedding.weight": 0.5 * n(V, W),
         "text_model.embeddings.position_embedding.weight": 0.3 * n(P, W)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"text_model.encoder.layers.{l}."
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
    w["text_model.final_layer_norm.weight"] = 1 + 0.1 * n(W)
    w["text_model.final_layer_norm.bias"] = 0.1 * n(W)
    w["text_projection.weight"] = 0.2 * n(E, W)
    w["logit_scale"] = torch.tensor(math.log(1 / 0.07), dtype=torch.float32)
    return w


def hf_text_forward(cfg, w, input_ids, attention_mask=None):
    """transformers CLIPTextModelWithProjection.forward, eager attention."""
    W, H = cfg["hidden_size"], cfg["num_attention_heads"]
    D, eps = W // H, cfg["layer_norm_eps"]
    bsz, seq_len = input_ids.shape
    # CLIPTextEmbeddings
    position_ids = torch.arange(cfg["max_position_embeddings"])[None, :seq_len]
    hidden_states = w["text_model.embeddings.token_embedding.weight"][input_ids] + \
        w["text_model.embeddings.position_embedding.weight"][position_ids]
    # _create_4d_causal_attention_mask
    causal = torch.full((seq_len, seq_len), torch.finfo(torch.float32).min).triu(1)[None, None].expand(bsz, 1, seq_len, seq_len)
    mask = None
    if attention_mask is not None:  # _prepare_4d_attention_mask
        inverted = 1.0 - attention_mask[:, None, None, :].expand(bsz, 1, seq_len, seq_len).to(torch.float32)
        mask = inverted.masked_fill(inverted.to(torch.bool), torch.finfo(torch.float32).min)
    act = act_fn(cfg["hidden_act"])
    for l in range(cfg["num_hidden_layers"]):
        p = f"text_model.encoder.layers.{l}."
        residual = hidden_states
        hidden_states = layer_norm(hidden_states, w, p + "layer_norm1", eps)
        # CLIPAttention
        q = linear(hidden_states, w, p + "self_attn.q_proj").view(bsz, seq_len, H, D).transpose(1, 2)
        k = linear(hidden_states, w, p + "self_attn.k_proj").view(bsz, seq_len, H, D).transpose(1, 2)
        v = linear(hidden_states, w, p + "self_attn.v_proj").view(bsz, seq_len, H, D).transpose(1, 2)
        attn_weights = torch.matmul(q, k.transpose(2, 3)) * D ** -0.5
        attn_weights = attn_weights + causal
        if mask is not None:
            attn_weights = attn_weights + mask
        attn_weights = torch.softmax(attn_weights, dim=-1)
        attn_output = torch.matmul(attn_weights, v).transpose(1, 2).reshape(bsz, seq_len, W)
        hidden_states = residual + linear(attn_output, w, p + "self_attn.out_proj")
        residual = hidden_states
        hidden_states = layer_norm(hidden_states, w, p + "layer_norm2", eps)
        hidden_states = linear(act(linear(hidden_states, w, p + "mlp.fc1")), w, p + "mlp.fc2")
        hidden_states = residual + hidden_states
    last_hidden_state = layer_norm(hidden_states, w, "text_model.final_layer_norm", eps)
    if cfg["eos_token_id"] == 2:
        index = input_ids.to(torch.int).argmax(dim=-1)
    else:
        index = (input_ids.to(torch.int) == cfg["eos_token_id"]).int().argmax(dim=-1)
    pooled_output = last_hidden_state[torch.arange(bsz), index]
    text_embeds = torch.nn.functional.linear(pooled_output, w["text_projection.weight"])
    return last_hidden_state, pooled_output, text_embeds


def to_open_clip(cfg, w):
    o = {"token_embedding.weight": w["text_model.embeddings.token_embedding.weight"],
         "positional_embedding": w["text_model.embeddings.position_embedding.weight"]}
    for l in range(cfg["num_hidden_layers"]):
        p, q = f"text_model.encoder.layers.{l}.", f"transformer.resblocks.{l}."
        o[q + "attn.in_proj_weight"] = torch.cat([w[p + f"self_attn.{x}_proj.weight"] for x in "qkv"])
        o[q + "attn.in_proj_bias"] = torch.cat([w[p + f"self_attn.{x}_proj.bias"] for x in "qkv"])
        o[q + "attn.out_proj.weight"] = w[p + "self_attn.out_proj.weight"]
        o[q + "attn.out_proj.bias"] = w[p + "self_attn.out_proj.bias"]
        for a, b in (("layer_norm1", "ln_1"), ("layer_norm2", "ln_2"), ("mlp.fc1", "mlp.c_fc"), ("mlp.fc2", "mlp.c_proj")):
            o[q + b + ".weight"] = w[p + a + ".weight"]
            o[q + b + ".bias"] = w[p + a + ".bias"]
    o["ln_final.weight"] = w["text_model.final_layer_norm.weight"]
    o["ln_final.bias"] = w["text_model.final_layer_norm.bias"]
    o["text_projection"] = w["text_projection.weight"].t().contiguous()
    o["logit_scale"] = w["logit_scale"]
    return o


def open_clip_text_forward(cfg, o, text):
    """open_clip TextTransformer.forward (batch_first, causal attn_mask, argmax pooling) via nn.MultiheadAttention."""
    W, H, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    seq_len = text.shape[1]
    x = o["token_embedding.weight"][text] + o["positional_embedding"][:seq_len]
    attn_mask = torch.empty(seq_len, seq_len).fill_(float("-inf")).triu_(1)
    act = act_fn(cfg["hidden_act"])
    for l in range(cfg["num_hidden_layers"]):
        q = f"transformer.resblocks.{l}."
        mha = torch.nn.MultiheadAttention(W, H, batch_first=True)
        mha.in_proj_weight.copy_(o[q + "attn.in_proj_weight"])
        mha.in_proj_bias.copy_(o[q + "attn.in_proj_bias"])
        mha.out_proj.weight.copy_(o[q + "attn.out_proj.weight"])
        mha.out_proj.bias.copy_(o[q + "attn.out_proj.bias"])
        y = layer_norm(x, o, q + "ln_1", eps)
        x = x + mha(y, y, y, need_weights=False, attn_mask=attn_mask)[0]
        y = layer_norm(x, o, q + "ln_2", eps)
        x = x + linear(act(linear(y, o, q + "mlp.c_fc")), o, q + "mlp.c_proj")
    x = layer_norm(x, o, "ln_final", eps)
    pooled = x[torch.arange(x.shape[0]), text.argmax(dim=-1)]
    return x, pooled, pooled @ o["text_projection"]


def config_json(cfg):
    return {"architectures": ["CLIPTextModelWithProjection"], "model_type": "clip_text_model", **cfg}


def write_case(name, cfg, w, ids, mask, hf):
    os.makedirs(name, exist_ok=True)
    ids_t, mask_t = torch.tensor(ids, dtype=torch.int64), torch.tensor(mask, dtype=torch.int64)
    if hf:
        with open(os.path.join(name, "config.json"), "w") as f:
            json.dump(config_json(cfg), f, indent=2)
        write_safetensors(os.path.join(name, "model.safetensors"), w)
        last, pooled, embeds = hf_text_forward(cfg, w, ids_t)
        _, pooled_masked, _ = hf_text_forward(cfg, w, ids_t, mask_t)
    else:
        o = to_open_clip(cfg, w)
        write_safetensors(os.path.join(name, "model.safetensors"), o)
        last, pooled, embeds = open_clip_text_forward(cfg, o, ids_t)
        pooled_masked = pooled
    write_safetensors(os.path.join(name, "input.safetensors"), {"input_ids": ids_t, "attention_mask": mask_t})
    write_safetensors(os.path.join(name, "expected.safetensors"), {
        "last_hidden_state": last, "pooler_output": pooled, "text_embeds": embeds, "pooler_output_masked": pooled_masked})


def base_cfg(**kw):
    cfg = {"vocab_size": 50, "hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
           "max_position_embeddings": 12, "hidden_act": "quick_gelu", "layer_norm_eps": 1e-5, "projection_dim": 16,
           "bos_token_id": 48, "eos_token_id": 2, "pad_token_id": 1}
    cfg.update(kw)
    return cfg


def main():
    # BOS 48, EOS 49 (the largest id, as in CLIP's vocabulary). Rows: padded with EOS (HF's openai pad
    # token), padded with 0 (open_clip), full length, and a lone BOS/EOS pair.
    ids = [[48, 5, 17, 33, 49, 49, 49, 49, 49, 49],
           [48, 12, 7, 40, 9, 22, 49, 0, 0, 0],
           [48, 3, 4, 5, 6, 7, 8, 9, 10, 49],
           [48, 49, 0, 0, 0, 0, 0, 0, 0, 0]]
    mask = [[1 if j <= r.index(49) else 0 for j in range(len(r))] for r in ids]
    cfg = base_cfg()
    write_case("hf_quick_gelu_legacy_eos", cfg, random_weights(cfg, 1), ids, mask, hf=True)

    # New-style eos_token_id 49 with ids above it (added tokens 50, 51): first-EOS pooling, not argmax.
    cfg = base_cfg(vocab_size=52, hidden_act="gelu", eos_token_id=49)
    ids2 = [[48, 50, 17, 49, 51, 0, 0, 0],
            [48, 12, 51, 40, 9, 22, 49, 0],
            [48, 3, 49, 50, 50, 50, 50, 50]]
    mask2 = [[1 if j <= r.index(49) else 0 for j in range(len(r))] for r in ids2]
    write_case("hf_gelu_eos_token_id", cfg, random_weights(cfg, 2), ids2, mask2, hf=True)

    # open_clip names, no config.json: width 64 → one head of 64 (the C# loader infers it), argmax pooling.
    cfg = base_cfg(hidden_size=64, num_attention_heads=1, intermediate_size=128, projection_dim=24)
    write_case("open_clip_no_config", cfg, random_weights(cfg, 3), ids, mask, hf=False)

    with open("versions.json", "w") as f:
        json.dump({"torch": torch.__version__, "script": os.path.basename(__file__)}, f, indent=2)


if __name__ == "__main__":
    main()
