#!/usr/bin/python3
"""Recorded outputs of RoBERTa for sequence classification for RobertaReferenceTests, made with PyTorch alone.

transformers is not installable here, so the forward below is written in torch following
transformers' modeling_roberta.py statement by statement: RobertaEmbeddings (word + token_type +
positions from create_position_ids_from_input_ids, i.e. cumsum of the non-pad mask offset by
padding_idx; LayerNorm), RobertaSelfAttention (eager, the additive extended mask
(1 - mask) * finfo.min), RobertaSelfOutput / RobertaOutput (post-LN residuals), RobertaIntermediate,
and RobertaClassificationHead (token 0 → dense → tanh → out_proj). The safetensors files are written
by hand (json header + raw little-endian bytes).

Per case it writes <case>/config.json, model.safetensors, input.safetensors (input_ids, attention_mask
I64 [B, S]) and expected.safetensors (last_hidden_state [B, S, W], logits [B, labels]).

Usage (Debian: apt install python3-torch; run from this directory):
    python3 make_roberta_fixtures.py
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from torch_reference import act_fn, layer_norm, linear, write_safetensors  # noqa: E402

torch.set_grad_enabled(False)
torch.set_num_threads(1)

PAD = 1


def random_weights(cfg, seed):
    g = torch.Generator().manual_seed(seed)
    W, I = cfg["hidden_size"], cfg["intermediate_size"]
    n = lambda *shape: torch.randn(shape, generator=g, dtype=torch.float32)
    r = "roberta."
    w = {r + "embeddings.word_embeddings.weight": 0.5 * n(cfg["vocab_size"], W),
         r + "embeddings.position_embeddings.weight": 0.3 * n(cfg["max_position_embeddings"], W),
         r + "embeddings.token_type_embeddings.weight": 0.2 * n(cfg["type_vocab_size"], W)}

    def norm(name):
        w[name + ".weight"] = 1 + 0.1 * n(W)
        w[name + ".bias"] = 0.1 * n(W)

    norm(r + "embeddings.LayerNorm")
    for l in range(cfg["num_hidden_layers"]):
        p = f"{r}encoder.layer.{l}."
        for name in ("attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"):
            w[p + name + ".weight"] = 0.25 * n(W, W)
            w[p + name + ".bias"] = 0.1 * n(W)
        norm(p + "attention.output.LayerNorm")
        w[p + "intermediate.dense.weight"] = 0.25 * n(I, W)
        w[p + "intermediate.dense.bias"] = 0.1 * n(I)
        w[p + "output.dense.weight"] = 0.2 * n(W, I)
        w[p + "output.dense.bias"] = 0.1 * n(W)
        norm(p + "output.LayerNorm")
    w["classifier.dense.weight"] = 0.25 * n(W, W)
    w["classifier.dense.bias"] = 0.1 * n(W)
    w["classifier.out_proj.weight"] = 0.3 * n(cfg["num_labels"], W)
    w["classifier.out_proj.bias"] = 0.1 * n(cfg["num_labels"])
    return w


def roberta_forward(cfg, w, input_ids, attention_mask):
    """transformers RobertaForSequenceClassification.forward, eval mode, eager attention."""
    W, H, eps = cfg["hidden_size"], cfg["num_attention_heads"], cfg["layer_norm_eps"]
    D = W // H
    bsz, seq_len = input_ids.shape
    r = "roberta."
    # create_position_ids_from_input_ids
    m = input_ids.ne(PAD).int()
    position_ids = (torch.cumsum(m, dim=1).type_as(m) * m).long() + PAD
    token_type_ids = torch.zeros_like(input_ids)
    embeddings = w[r + "embeddings.word_embeddings.weight"][input_ids] + \
        w[r + "embeddings.token_type_embeddings.weight"][token_type_ids] + \
        w[r + "embeddings.position_embeddings.weight"][position_ids]
    hidden_states = layer_norm(embeddings, w, r + "embeddings.LayerNorm", eps)
    # get_extended_attention_mask
    extended = (1.0 - attention_mask[:, None, None, :].to(torch.float32)) * torch.finfo(torch.float32).min
    act = act_fn(cfg["hidden_act"])
    for l in range(cfg["num_hidden_layers"]):
        p = f"{r}encoder.layer.{l}."
        q = linear(hidden_states, w, p + "attention.self.query").view(bsz, seq_len, H, D).permute(0, 2, 1, 3)
        k = linear(hidden_states, w, p + "attention.self.key").view(bsz, seq_len, H, D).permute(0, 2, 1, 3)
        v = linear(hidden_states, w, p + "attention.self.value").view(bsz, seq_len, H, D).permute(0, 2, 1, 3)
        scores = torch.matmul(q, k.transpose(-1, -2)) / D ** 0.5 + extended
        probs = torch.softmax(scores, dim=-1)
        context = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous().view(bsz, seq_len, W)
        attention_output = layer_norm(linear(context, w, p + "attention.output.dense") + hidden_states, w,
                                      p + "attention.output.LayerNorm", eps)
        intermediate = act(linear(attention_output, w, p + "intermediate.dense"))
        hidden_states = layer_norm(linear(intermediate, w, p + "output.dense") + attention_output, w,
                                   p + "output.LayerNorm", eps)
    x = torch.tanh(linear(hidden_states[:, 0, :], w, "classifier.dense"))
    logits = linear(x, w, "classifier.out_proj")
    return hidden_states, logits


def config_json(cfg):
    return {"architectures": ["RobertaForSequenceClassification"], "model_type": "roberta",
            "pad_token_id": PAD, "bos_token_id": 0, "eos_token_id": 2,
            "id2label": {str(i): f"L{i}" for i in range(cfg["num_labels"])},
            **{k: v for k, v in cfg.items() if k != "num_labels"}}


def write_case(name, cfg, w, ids):
    os.makedirs(name, exist_ok=True)
    ids_t = torch.tensor(ids, dtype=torch.int64)
    mask_t = ids_t.ne(PAD).to(torch.int64)
    with open(os.path.join(name, "config.json"), "w") as f:
        json.dump(config_json(cfg), f, indent=2)
    write_safetensors(os.path.join(name, "model.safetensors"), w)
    last, logits = roberta_forward(cfg, w, ids_t, mask_t)
    write_safetensors(os.path.join(name, "input.safetensors"), {"input_ids": ids_t, "attention_mask": mask_t})
    write_safetensors(os.path.join(name, "expected.safetensors"), {"last_hidden_state": last, "logits": logits})


def base_cfg(**kw):
    cfg = {"vocab_size": 60, "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 4,
           "intermediate_size": 64, "hidden_act": "gelu", "layer_norm_eps": 1e-5, "max_position_embeddings": 20,
           "type_vocab_size": 1, "num_labels": 3}
    cfg.update(kw)
    return cfg


def main():
    # <s> = 0, </s> = 2, <pad> = 1: a full row, two padded rows, and a pad-only tail of length 5.
    ids = [[0, 5, 17, 33, 9, 41, 2],
           [0, 12, 7, 58, 2, 1, 1],
           [0, 44, 2, 1, 1, 1, 1]]
    cfg = base_cfg()
    write_case("gelu_padded", cfg, random_weights(cfg, 1), ids)
    cfg = base_cfg(hidden_act="quick_gelu", num_hidden_layers=3, num_attention_heads=2, layer_norm_eps=1e-12, num_labels=2)
    write_case("quick_gelu_three_layers", cfg, random_weights(cfg, 2), ids)

    with open("versions.json", "w") as f:
        json.dump({"torch": torch.__version__, "script": os.path.basename(__file__)}, f, indent=2)


if __name__ == "__main__":
    main()
