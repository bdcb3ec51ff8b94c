#!/usr/bin/python3
"""Recorded RI adaptation (ri.md §1.2) of one expert for RiTrainerTests, made with PyTorch alone.

The CLIP vision tower is ../clip_vision/make_clip_vision_fixtures.py's transformers-following forward
(CLIPVisionModelWithProjection); every tensor of the tower is a trainable parameter starting at the
expert θ0 + τ0. Each step takes the whole auxiliary set as one batch (so the batch order is irrelevant)
and minimises

    L = KL(h0(f(θ0+τ0)(x)) ‖ h0(f(θ)(x))) + α/(N−1)·Σ_{j≠0} KL(hj(f(θ0)(x)) ‖ hj(f(θ)(x)))

with h(z) = softmax(normalize(z)·Wᵀ) (heads already hold the logit scale), KL as
F.kl_div(log q, p, reduction="batchmean"), and torch.optim.AdamW with a constant learning rate.

Writes pretrained/, expert/ (config.json + model.safetensors), heads.safetensors (head_0..head_2
[C, E]), aux.safetensors (pixel_values [B, 3, S, S]) and expected.safetensors (loss [K] before each
update, task_loss [K], adapted weights by HF name after K steps), plus options.json.

Usage (Debian: apt install python3-torch; run from this directory):
    python3 make_ri_fixture.py
"""

import json
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "clip_vision"))
import make_clip_vision_fixtures as cv  # noqa: E402
from torch_reference import write_safetensors  # noqa: E402

torch.set_grad_enabled(True)
torch.set_num_threads(1)

OPTIONS = {"lr": 2e-3, "weight_decay": 1e-4, "betas": [0.9, 0.999], "eps": 1e-8, "alpha": 1.0, "steps": 5}


def head_logits(z, head):
    return torch.nn.functional.normalize(z, dim=-1) @ head.t()


def main():
    cfg = cv.base_cfg(num_hidden_layers=1)
    pre = cv.random_weights(cfg, 5)
    g = torch.Generator().manual_seed(6)
    expert = {k: v + 0.08 * torch.randn(v.shape, generator=g) for k, v in pre.items()}
    heads = [2.0 * torch.randn((6, cfg["projection_dim"]), generator=g) for _ in range(3)]
    pixels = torch.randn((8, 3, cfg["image_size"], cfg["image_size"]), generator=g)

    for name, w in (("pretrained", pre), ("expert", expert)):
        os.makedirs(name, exist_ok=True)
        with open(os.path.join(name, "config.json"), "w") as f:
            json.dump(cv.config_json(cfg), f, indent=2)
        write_safetensors(os.path.join(name, "model.safetensors"), w)
    write_safetensors("heads.safetensors", {f"head_{j}": h for j, h in enumerate(heads)})
    write_safetensors("aux.safetensors", {"pixel_values": pixels})

    with torch.no_grad():
        z_pre = cv.hf_vision_forward(cfg, pre, pixels)[2]
        z_exp = cv.hf_vision_forward(cfg, expert, pixels)[2]
        targets = [torch.softmax(head_logits(z_exp if j == 0 else z_pre, h), dim=-1) for j, h in enumerate(heads)]

    params = {k: v.clone().requires_grad_(True) for k, v in expert.items()}
    opt = torch.optim.AdamW(list(params.values()), lr=OPTIONS["lr"], betas=tuple(OPTIONS["betas"]), eps=OPTIONS["eps"],
                            weight_decay=OPTIONS["weight_decay"])
    beta = OPTIONS["alpha"] / (len(heads) - 1)
    losses, task_losses = [], []
    for _ in range(OPTIONS["steps"]):
        opt.zero_grad()
        z = cv.hf_vision_forward(cfg, params, pixels)[2]
        kls = [torch.nn.functional.kl_div(torch.log_softmax(head_logits(z, h), dim=-1), p, reduction="batchmean")
               for h, p in zip(heads, targets)]
        loss = kls[0] + beta * sum(kls[1:])
        loss.backward()
        opt.step()
        losses.append(loss.item())
        task_losses.append(kls[0].item())

    expected = {"loss": torch.tensor(losses, dtype=torch.float32), "task_loss": torch.tensor(task_losses, dtype=torch.float32)}
    expected.update({k: v.detach() for k, v in params.items()})
    write_safetensors("expected.safetensors", expected)
    with open("options.json", "w") as f:
        json.dump({**OPTIONS, "torch": torch.__version__, "script": os.path.basename(__file__)}, f, indent=2)


if __name__ == "__main__":
    main()
