#!/usr/bin/env python3
"""Reference fixtures for the forward-pass parity tests, produced by Hugging Face transformers.

Builds the tiny random checkpoints the C# tests use (CLIP vision tower with quick_gelu and gelu,
RoBERTa for sequence classification with gelu and quick_gelu), runs them in float32 on the CPU
(TF32 off, eval mode, eager attention) and writes, per case, a directory

    <out>/<case>/config.json          (save_pretrained)
    <out>/<case>/model.safetensors    (save_pretrained, safe_serialization=True)
    <out>/<case>/input.safetensors    pixel_values F32 [B,3,S,S]  |  input_ids, attention_mask I64 [B,S]
    <out>/<case>/expected.safetensors last_hidden_state, pooler_output, image_embeds  |  last_hidden_state, logits
    <out>/<case>/versions.json        torch / transformers versions and the attention implementation

Commit the case directories under tests/Engine.Tests/data/reference/ together with a test that runs
`taskmerge forward`'s engine on every case and requires a relative error (max |a-b| / max |b|) of at
most 1e-4 on every output (none is committed yet: no machine with transformers has been available).

Usage (needs torch, transformers >= 4.40, safetensors):
    python make_hf_fixtures.py [--out tests/Engine.Tests/data/reference] [--device cpu|cuda]
"""

import argparse
import json
import os

import torch
import transformers
from safetensors.torch import save_file
from transformers import (CLIPVisionConfig, CLIPVisionModelWithProjection, RobertaConfig,
                          RobertaForSequenceClassification)

# The same padded batch as RobertaParityTests.PaddedBatch: <s> = 0, </s> = 2, <pad> = 1 (mask 0).
ROBERTA_IDS = [
    [0, 5, 17, 33, 9, 41, 2],
    [0, 12, 7, 58, 2, 1, 1],
    [0, 44, 2, 1, 1, 1, 1],
]


def randomize(model: torch.nn.Module, seed: int) -> None:
    """N(0, 0.2²)-ish weights like the C# tests' TinyModels (HF's own init is too small to exercise
    the nonlinearities): LayerNorm weights 1 + 0.1·N, biases 0.1·N, everything else 0.25·N."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if "norm" in name.lower() and name.endswith("weight"):
                p.copy_(1.0 + 0.1 * noise)
            elif name.endswith("bias") or name.endswith("class_embedding"):
                p.copy_(0.1 * noise if name.endswith("bias") else 0.5 * noise)
            else:
                p.copy_(0.25 * noise)


def build(cls, config, seed):
    config._attn_implementation = "eager"  # the classic matmul → softmax path, as documented in modeling_*.py
    torch.manual_seed(seed)
    model = cls(config)
    randomize(model, seed)
    return model.eval()


def clip_case(out: str, name: str, act: str, seed: int, device: str) -> None:
    config = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              num_channels=3, image_size=16, patch_size=8, projection_dim=16, hidden_act=act,
                              layer_norm_eps=1e-5, attention_dropout=0.0)
    model = build(CLIPVisionModelWithProjection, config, seed)
    d = os.path.join(out, name)
    model.save_pretrained(d, safe_serialization=True)
    g = torch.Generator().manual_seed(seed + 1000)
    pixels = torch.randn(3, 3, 16, 16, generator=g, dtype=torch.float32)
    model = model.to(device)
    with torch.no_grad():
        vision = model.vision_model(pixel_values=pixels.to(device))
        full = model(pixel_values=pixels.to(device))
    # CLIPVisionModelWithProjection's output has no pooler_output; it is vision_model's (post_layernorm of the CLS token).
    assert torch.equal(vision.last_hidden_state, full.last_hidden_state)
    save_file({"pixel_values": pixels.contiguous()}, os.path.join(d, "input.safetensors"), metadata={"format": "pt"})
    save_file({
        "last_hidden_state": vision.last_hidden_state.float().cpu().contiguous(),
        "pooler_output": vision.pooler_output.float().cpu().contiguous(),
        "image_embeds": full.image_embeds.float().cpu().contiguous(),
    }, os.path.join(d, "expected.safetensors"), metadata={"format": "pt"})
    write_versions(d, model)


def roberta_case(out: str, name: str, act: str, seed: int, device: str) -> None:
    config = RobertaConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                           hidden_act=act, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                           max_position_embeddings=20, type_vocab_size=1, layer_norm_eps=1e-5,
                           pad_token_id=1, bos_token_id=0, eos_token_id=2, num_labels=3)
    model = build(RobertaForSequenceClassification, config, seed)
    d = os.path.join(out, name)
    model.save_pretrained(d, safe_serialization=True)
    ids = torch.tensor(ROBERTA_IDS, dtype=torch.int64)
    mask = (ids != config.pad_token_id).to(torch.int64)
    model = model.to(device)
    with torch.no_grad():
        hidden = model.roberta(input_ids=ids.to(device), attention_mask=mask.to(device)).last_hidden_state
        logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
    save_file({"input_ids": ids, "attention_mask": mask}, os.path.join(d, "input.safetensors"), metadata={"format": "pt"})
    save_file({
        "last_hidden_state": hidden.float().cpu().contiguous(),
        "logits": logits.float().cpu().contiguous(),
    }, os.path.join(d, "expected.safetensors"), metadata={"format": "pt"})
    write_versions(d, model)


def write_versions(d: str, model) -> None:
    with open(os.path.join(d, "versions.json"), "w") as f:
        json.dump({
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "attn_implementation": getattr(model.config, "_attn_implementation", None),
            "device": str(next(model.parameters()).device),
        }, f, indent=2)


def main() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=here)
    ap.add_argument("--device", default="cpu", help="cpu (exact reference) or cuda (TF32 is switched off)")
    args = ap.parse_args()
    # cuDNN convolutions (the patch embedding) default to TF32 on Ampere/Hopper; matmuls too on old torch.
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_default_dtype(torch.float32)
    clip_case(args.out, "clip_quick_gelu", "quick_gelu", 1, args.device)
    clip_case(args.out, "clip_gelu", "gelu", 2, args.device)
    roberta_case(args.out, "roberta_gelu", "gelu", 3, args.device)
    roberta_case(args.out, "roberta_quick_gelu", "quick_gelu", 4, args.device)
    print(f"fixtures written under {args.out}")


if __name__ == "__main__":
    main()
